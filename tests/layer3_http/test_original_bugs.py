"""One end-to-end test per known bug of the original HTTP module, fixed here.

DESIGN.md lists the bugs; the parser-level ones are also covered without
sockets in ``test_head.py``, ``test_chunked.py`` and ``test_multipart.py``.
Here each one is shown on a running server with real clients, together
with the worker it used to kill staying alive (``--workers 1``: the PID
stays the same). ``tcpconnect`` leaking its socket is a layer 1 matter and
tested there.
"""

from __future__ import annotations

import json
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest
from http_support import APPS, Server, http_server, request_bytes
from prod_apps.prod_support import get, get_json
from support import ROOT

HOST = ("Host", "t")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with http_server("--workers", "1") as running_:
        yield running_


def pid(server: Server) -> int:
    return int(get_json(server.port, "/pid")["pid"])


def test_final_zero_chunk_is_accepted(server: Server) -> None:
    """The original rejected the final ``0`` chunk, so every chunked body failed."""
    with server.raw() as client:
        client.send(request_bytes("POST", "/echo", headers=[
            HOST, ("Transfer-Encoding", "chunked")], body=b"3\r\nabc\r\n0\r\n\r\n"),
            request_bytes())
        assert json.loads(client.read_response().body)["body"] == "abc"
        assert client.read_response().body == b"hello\n"


def test_head_arriving_in_many_pieces_does_not_crash_the_worker(server: Server) -> None:
    """1.1.1 crashed the worker when a head came in several pieces."""
    before = pid(server)
    with server.raw() as client:
        client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in request_bytes(target="/echo?split=1"):
            client.send(bytes([byte]))
        assert json.loads(client.read_response().body)["query"] == "?split=1"
    assert pid(server) == before


def test_client_connection_close_is_honoured(server: Server) -> None:
    """The original kept the connection open after a client's ``Connection: close``."""
    with server.raw() as client:
        client.send(request_bytes(headers=[HOST, ("Connection", "close")]))
        response = client.read_response()
        assert response.header("Connection") == "close"
        assert client.closed_by_server()


def test_handler_error_is_answered_500_and_the_worker_lives(server: Server) -> None:
    """The original reset the connection and killed the worker."""
    before = pid(server)
    status, headers, body = get(server.port, "/fail")
    assert (status, body) == (500, b"500 Internal Server Error\n")
    assert headers["Connection"] == "close"
    assert pid(server) == before and server.worker_exits() == []


@pytest.mark.parametrize("content_type", ["application/json", "text/csv; charset=utf-8",
                                          "image/png", "nonsense"])
def test_unknown_post_content_type_is_not_415(server: Server, content_type: str) -> None:
    """The original answered 415 and killed the worker."""
    before = pid(server)
    with server.raw() as client:
        client.send(request_bytes("POST", "/form", headers=[
            HOST, ("Content-Type", content_type), ("Content-Length", "7")], body=b'{"a":1}'),
            request_bytes())
        response = client.read_response()
        assert response.status == 200 and json.loads(response.body)["params"] == {}
        assert client.read_response().body == b"hello\n"  # the connection lives on too
    assert pid(server) == before


def test_header_values_with_commas_stay_one_value(server: Server) -> None:
    """The original split every header value at its commas in ``request.headers``."""
    with server.raw() as client:
        client.send(request_bytes(target="/headers?name=x-date", headers=[
            HOST, ("X-Date", "Tue, 15 Nov 1994 08:12:31 GMT"), ("X-Date", 'b, "c, d"')]))
        tables = json.loads(client.read_response().body)
    assert tables["headers"] == ["Tue, 15 Nov 1994 08:12:31 GMT", 'b, "c, d"']
    assert tables["csv_table"] == ["Tue", "15 Nov 1994 08:12:31 GMT", "b", '"c, d"']
    assert tables["csv_string"] == 'Tue, 15 Nov 1994 08:12:31 GMT, b, "c, d"'
    assert tables["value"] is False  # sent on two lines


def test_single_header_line_with_commas_has_one_value(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes(target="/headers?name=accept", headers=[
            HOST, ("Accept", "text/html, */*")]))
        tables = json.loads(client.read_response().body)
    assert tables["value"] == "text/html, */*"
    assert tables["flags"] == ["*/*", "text/html"]


def test_response_headers_are_checked_for_cr_and_lf(server: Server) -> None:
    """The original sent whatever the handler gave it: header injection."""
    with server.raw() as client:
        client.send(request_bytes(target="/inject?value=x%0D%0ASet-Cookie:%20evil=1"))
        response = client.read_response()
    assert response.body == b"refused: ValueError"
    assert response.header("Set-Cookie") is None


def test_content_length_together_with_chunked_is_rejected(server: Server) -> None:
    """The original accepted both, a request smuggling hole."""
    with server.raw() as client:
        client.send(request_bytes("POST", "/echo", headers=[
            HOST, ("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
            body=b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n"))
        response = client.read_response()
        assert response.status == 400 and response.header("Connection") == "close"
        assert client.closed_by_server()  # /smuggled is never seen


def test_negative_content_length_is_rejected(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes("POST", "/echo", headers=[HOST, ("Content-Length", "-5")]))
        assert client.read_response().status == 400
        assert client.closed_by_server()


def test_unquoted_multipart_filename_is_kept(server: Server) -> None:
    """The original dropped ``filename=notes.txt`` (without quotes)."""
    body = (b"--xx\r\nContent-Disposition: form-data; name=doc; filename=notes.txt\r\n\r\n"
            b"text\r\n--xx--\r\n")
    status, _, answer = get(server.port, "/form", method="POST", body=body,
                                   headers={"Content-Type": "multipart/form-data; boundary=xx"})
    assert status == 200 and json.loads(answer)["metadata"]["doc"] == [["notes.txt", None]]


def test_final_multipart_delimiter_without_crlf_is_accepted(server: Server) -> None:
    body = b"--xx\r\nContent-Disposition: form-data; name=a\r\n\r\nvalue\r\n--xx--"
    status, _, answer = get(server.port, "/form", method="POST", body=body,
                                   headers={"Content-Type": "multipart/form-data; boundary=xx"})
    assert status == 200 and json.loads(answer)["params"] == {"a": ["value"]}


def test_http10_is_served_not_refused_with_505(server: Server) -> None:
    """The original answered every HTTP/1.0 request with 505."""
    with server.raw() as client:
        client.send(request_bytes(version="HTTP/1.0", headers=[]))
        assert client.read_response().body == b"hello\n"


@pytest.mark.skipif(resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 2048,
                    reason="the hard descriptor limit is below 2048")
def test_connections_above_descriptor_1024_are_served() -> None:
    """The original's ``select()`` failed for descriptors above 1024."""
    with http_server(app=APPS / "many_fds.py") as many, many.raw() as client:
        client.send(request_bytes(), request_bytes())
        assert int(client.read_response().body) > 1024
        assert int(client.read_response().body) > 1024  # keep-alive: polled again


@pytest.mark.parametrize("sizes", [["--min-fork", "5", "--max-fork", "2"],
                                   ["--pre-fork", "-1"], ["--workers", "0"]])
def test_pool_sizes_are_validated_before_anything_forks(sizes: list[str]) -> None:
    """The original accepted any pool size."""
    result = subprocess.run([sys.executable, "-m", "layer3_http", str(APPS / "testapp.py"),
                             "--listen", "127.0.0.1:0", *sizes], capture_output=True,
                            timeout=30, cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
    assert result.returncode == 1 and b"must be" in result.stderr
    assert b"forked worker" not in result.stderr
