"""Request bodies end to end: forms, streams, unread bodies, and the write deadlock.

The server reads a body only as the handler asks: whole (``request.body``),
streamed, parsed as a form, or not at all; a body nobody read is drained
after the response (so the connection can be reused) or the connection is
closed. And while a response is being written, the server keeps reading
the request body, so a client that sends everything before it reads
anything does not deadlock with a handler that answers first.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from http_support import RawClient, Server, http_server, request_bytes
from prod_apps.prod_support import get

HOST = ("Host", "t")
BOUNDARY = "----b0undary"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with http_server("--min-fork", "2", "--maximum-input-chunk-size", "4096",
                     "--drain-size-limit", "4000000") as running_:
        yield running_


def multipart(*parts: tuple[str, str | None, bytes], final_crlf: bool = True) -> bytes:
    """A multipart/form-data body from (name, filename, content) parts."""
    out = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f"; filename={filename}"  # unquoted, as some clients send it
        out += (f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n".encode()
                + (b"Content-Type: text/plain\r\n" if filename else b"") + b"\r\n"
                + content + b"\r\n")
    return out + f"--{BOUNDARY}--".encode() + (b"\r\n" if final_crlf else b"")


def post(server: Server, route: str, body: bytes, content_type: str) -> tuple[int, bytes]:
    status, _, answer = get(server.port, route, method="POST", body=body,
                                   headers={"Content-Type": content_type})
    return status, answer


# -- forms ---------------------------------------------------------------------------


def test_urlencoded_form(server: Server) -> None:
    status, answer = post(server, "/form", b"a=1&b=x+y%21&a=%E2%82%AC&c",
                          "application/x-www-form-urlencoded")
    assert status == 200
    assert json.loads(answer)["params"] == {"a": ["1", "€"], "b": ["x y!"], "c": [""]}


@pytest.mark.parametrize("final_crlf", [True, False])
def test_multipart_form_with_a_file_and_fields(server: Server, final_crlf: bool) -> None:
    body = multipart(("title", None, b"Hello"), ("doc", "notes.txt", b"line 1\r\nline 2"),
                     ("title", None, b"Again"), final_crlf=final_crlf)
    status, answer = post(server, "/form", body, f"multipart/form-data; boundary={BOUNDARY}")
    assert status == 200
    fields = json.loads(answer)
    assert fields["params"] == {"title": ["Hello", "Again"], "doc": ["line 1\r\nline 2"]}
    assert fields["metadata"]["doc"] == [["notes.txt", "text/plain"]]
    assert fields["metadata"]["title"] == [[None, None], [None, None]]


def test_multipart_without_its_final_delimiter_gets_400(server: Server) -> None:
    body = multipart(("a", None, b"x"))[: -len(BOUNDARY) - 6]
    status, _ = post(server, "/form", body, f"multipart/form-data; boundary={BOUNDARY}")
    assert status == 400


def test_multipart_without_a_boundary_gets_400(server: Server) -> None:
    status, _ = post(server, "/form", b"--x\r\n", "multipart/form-data")
    assert status == 400


def test_empty_multipart_body_is_an_empty_form(server: Server) -> None:
    status, answer = post(server, "/form", b"", f"multipart/form-data; boundary={BOUNDARY}")
    assert status == 200 and json.loads(answer)["params"] == {}


def test_stream_post_param_call_order(server: Server, tmp_path: object) -> None:
    content = bytes(range(256)) * 100  # 25600 bytes: several 4096-byte pieces
    body = multipart(("note", None, b"kept"), ("file", "data.bin", content))
    status, _, answer = get(server.port, f"/upload?dir={tmp_path}", method="POST", body=body,
                                   headers={"Content-Type": f"multipart/form-data; boundary="
                                            f"{BOUNDARY}"})
    assert status == 200
    report = json.loads(answer)
    assert report["calls"] == ["first", "more", "end"]
    assert report["bytes"] == len(content) and report["file_name"] == "data.bin"
    assert report["fields"] == {"note": "kept"}  # streamed fields are not collected
    with open(f"{tmp_path}/upload.bin", "rb") as saved:
        assert saved.read() == content


def test_stream_post_param_empty_file(server: Server, tmp_path: object) -> None:
    body = multipart(("file", "empty.txt", b""))
    _, _, answer = get(server.port, f"/upload?dir={tmp_path}", method="POST", body=body,
                              headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    report = json.loads(answer)
    assert report["calls"] == ["first", "end"] and report["bytes"] == 0


def test_stream_request_body_pieces_respect_the_input_chunk_size(server: Server) -> None:
    status, answer = post(server, "/stream-body", b"z" * 100_000, "application/octet-stream")
    report = json.loads(answer)
    assert status == 200 and report["bytes"] == 100_000
    assert report["largest"] == 4096 and report["smallest"] > 0


# -- unread bodies -------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json", "text/plain", None])
def test_unread_body_is_drained_and_the_connection_reused(server: Server,
                                                          content_type: str | None) -> None:
    headers = [HOST, ("Content-Length", "200000")]
    if content_type:
        headers.append(("Content-Type", content_type))
    with server.raw() as client:
        client.send(request_bytes("POST", "/ignore-body", headers=headers, body=b"q" * 200_000),
                    request_bytes(target="/echo"))
        first = client.read_response()
        assert first.status == 200 and first.header("Connection") is None
        second = json.loads(client.read_response().body)
        assert second["path"] == "echo"  # the unread body did not leak into the next request


def test_unread_chunked_body_is_drained(server: Server) -> None:
    chunk = b"%x\r\n" % 5000 + b"c" * 5000 + b"\r\n"
    with server.raw() as client:
        client.send(request_bytes("POST", "/ignore-body", headers=[
            HOST, ("Transfer-Encoding", "chunked")], body=chunk * 10 + b"0\r\n\r\n"),
            request_bytes())
        assert client.read_response().status == 200
        assert client.read_response().body == b"hello\n"


def test_unread_body_past_the_drain_limit_closes_the_connection(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes("POST", "/ignore-body", headers=[
            HOST, ("Content-Length", "20000000"), ("Content-Type", "text/plain")]))
        assert client.read_response().status == 200
        try:
            client.send(b"u" * 8_000_000)  # more than drain_size_limit: the server gives up
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert client.closed_by_server()


def test_monologue_answers_without_inviting_the_body(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes("POST", "/monologue", headers=[
            HOST, ("Content-Length", "1000000"), ("Expect", "100-continue")]))
        response = client.read_response()
        assert response.status == 200 and response.body == b"hello\n"
        assert response.header("Connection") == "close"
        assert client.closed_by_server()


def test_monologue_with_a_body_on_its_way(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes("POST", "/monologue", headers=[
            HOST, ("Content-Length", "100000")], body=b"m" * 100_000))
        response = client.read_response()
        assert response.header("Connection") == "close" and response.body == b"hello\n"
        assert client.closed_by_server()


def test_defer_reading_streams_the_answer_while_the_body_arrives(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes("POST", "/defer-echo", headers=[
            HOST, ("Transfer-Encoding", "chunked")]))
        head = client.read_head()  # the answer begins before any body byte was sent
        assert head.status == 200 and head.header("Transfer-Encoding") == "chunked"
        for word in (b"ping", b"pong!"):
            client.send(b"%x\r\n%s\r\n" % (len(word), word))
            assert client.read_until(b"\r\n") == b"%x\r\n" % len(word)
            assert client.read_exactly(len(word) + 2) == word + b"\r\n"
        client.send(b"0\r\n\r\n")
        assert client.read_until(b"0\r\n\r\n") == b"0\r\n\r\n"
        client.send(request_bytes())
        assert client.read_response().body == b"hello\n"


# -- the write deadlock ------------------------------------------------------------------------


SIZE = 32 * 1024 * 1024  # far beyond what the socket buffers hold in both directions


def test_client_sending_its_whole_body_before_reading_does_not_deadlock(server: Server) -> None:
    """The handler answers 32 MB without reading the 32 MB request body first."""
    block = b"d" * 65536
    with server.raw(timeout=30) as client:
        client.send(request_bytes("POST", f"/big?size={SIZE}", headers=[
            HOST, ("Content-Length", str(SIZE)), ("Content-Type", "application/octet-stream")]))
        for _ in range(SIZE // len(block)):
            client.sock.sendall(block)  # blocks for ever (30 s: fails) unless the server reads
        response = client.read_response()
        assert response.status == 200 and len(response.body) == SIZE
        assert response.body[-256:] == bytes(range(256))
        client.send(request_bytes())  # the body was consumed: the connection is reusable
        assert client.read_response().body == b"hello\n"


def test_pipelined_request_after_a_body_read_during_the_write(server: Server) -> None:
    """The body is read while the 32 MB answer is blocked, and not one byte past it.

    How much of the body is still unread when the answer is complete depends
    on the kernels' buffer sizes and on scheduling: when it fits the drain
    limit the pipelined request is answered, otherwise the server closes the
    connection after the complete answer. Both are correct; what must never
    happen is an answer to body bytes or a wrong answer to the pipelined request.
    """
    size = 8 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        client = RawClient(sock)
        client.send(request_bytes("POST", f"/big?size={SIZE}", headers=[
            HOST, ("Content-Length", str(size))]))
        sock.sendall(b"e" * size + request_bytes(target="/echo?after=1"))
        assert len(client.read_response().body) == SIZE
        try:
            answer = client.read_response()
        except EOFError:
            assert client.buffer == b""  # closed cleanly after the complete answer
            return
        assert json.loads(answer.body)["query"] == "?after=1"
