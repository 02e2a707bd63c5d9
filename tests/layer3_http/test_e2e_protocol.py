"""The protocol rules end to end: a real server process and real clients.

One server (``apps/testapp.py`` under ``python -m layer3_http``) serves the
whole module; clients are ``http.client``, ``urllib``, raw sockets and,
when installed, curl. Each test checks what went over the wire: framing
headers, connection reuse, order of answers, and the connection's end.
"""

from __future__ import annotations

import email.utils
import json
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest
from http_support import RawClient, Server, http_server, request_bytes
from prod_apps.prod_support import get, get_json
from support import EXAMPLES, running

CURL = "/usr/bin/curl" if os.path.exists("/usr/bin/curl") else None
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed at /usr/bin/curl")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with http_server("--min-fork", "2", "--static-header", "X-Served-By: layer3") as running_:
        yield running_


def local_port(client: RawClient) -> int:
    return int(client.sock.getsockname()[1])


# -- keep-alive and pipelining ---------------------------------------------------


def test_keep_alive_reuses_one_connection_for_several_requests(server: Server) -> None:
    conn = server.connection()
    try:
        pids = set()
        for index in range(5):
            conn.request("GET", f"/echo?n={index}")
            response = conn.getresponse()
            assert response.status == 200
            assert response.getheader("Connection") is None
            pids.add(json.loads(response.read())["pid"])
            assert conn.sock is not None
            port = conn.sock.getsockname()[1]
            if index == 0:
                first_port = port
            assert port == first_port  # the same TCP connection every time
        assert len(pids) == 1  # served by one worker, which kept the connection
    finally:
        conn.close()


def test_pipelined_requests_are_answered_in_order(server: Server) -> None:
    with server.raw() as client:
        client.send(*(request_bytes(target=f"/echo?n={n}") for n in range(6)),
                    request_bytes("POST", "/echo?n=6", headers=[("Host", "t"),
                                  ("Content-Length", "4")], body=b"body"),
                    request_bytes(target="/echo?n=7"))
        answers = [json.loads(client.read_response().body) for _ in range(8)]
        assert [answer["query"] for answer in answers] == [f"?n={n}" for n in range(8)]
        assert answers[6]["body"] == "body"


def test_pipelined_requests_in_one_segment_each_cut_anywhere(server: Server) -> None:
    stream = b"".join(request_bytes(target=f"/echo?n={n}") for n in range(3))
    with server.raw() as client:
        for start in range(0, len(stream), 7):  # tiny pieces, cutting lines anywhere
            client.send(stream[start:start + 7])
        queries = [json.loads(client.read_response().body)["query"] for _ in range(3)]
    assert queries == ["?n=0", "?n=1", "?n=2"]


def test_client_connection_close_is_honoured(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes(headers=[("Host", "t"), ("Connection", "close")]),
                    request_bytes(target="/echo"))  # must never be answered
        response = client.read_response()
        assert response.status == 200 and response.body == b"hello\n"
        assert response.header("Connection") == "close"
        assert client.closed_by_server()


def test_handler_close_after_finish_sends_connection_close(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes(target="/close"))
        response = client.read_response()
        assert response.header("Connection") == "close"
        assert client.closed_by_server()


def test_absolute_form_target(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes(target="http://example.org:8080/echo?q=1",
                                  headers=[("Host", "example.org:8080")]))
        answer = json.loads(client.read_response().body)
    assert (answer["path"], answer["query"]) == ("echo", "?q=1")


def test_options_asterisk_reaches_the_handler(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes("OPTIONS", "*"), request_bytes())
        assert client.read_response().status == 404  # the app routes on the path: None
        assert client.read_response().body == b"hello\n"


# -- framing of responses ------------------------------------------------------------


def test_small_response_has_content_length_date_and_static_header(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes())
        response = client.read_response()
    assert response.header("Content-Length") == "6"
    assert response.header("Transfer-Encoding") is None
    assert response.header("X-Served-By") == "layer3"
    date = response.header("Date")
    assert date is not None and email.utils.parsedate_to_datetime(date).tzname() == "UTC"
    assert response.raw_head.endswith(b"\r\n\r\n")


def test_small_response_leaves_in_one_segment(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes())
        first = client.sock.recv(65536)  # head and body written at once
    assert first.startswith(b"HTTP/1.1 200 OK\r\n") and first.endswith(b"\r\n\r\nhello\n")


def test_large_response_without_length_is_chunked(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes(target="/big?size=300000"))
        response = client.read_response()
    assert response.chunked and response.header("Content-Length") is None
    assert len(response.body) == 300000
    assert response.body[:512] == bytes(range(256)) * 2
    assert response.chunk_sizes[-1] == 0 and all(size > 0 for size in response.chunk_sizes[:-1])


def test_flushed_pieces_are_separate_chunks(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes(target="/chunks?count=4&size=3"))
        response = client.read_response()
    assert response.chunk_sizes == [3, 3, 3, 3, 0]
    assert response.body == b"000111222333"


def test_declared_content_length_is_used(server: Server) -> None:
    status, headers, body = get(server.port, "/big?size=200000&length=1")
    assert status == 200 and headers["Content-Length"] == "200000" and len(body) == 200000
    assert "Transfer-Encoding" not in headers


def test_head_has_the_get_headers_and_no_body(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes("HEAD", "/hello"), request_bytes("GET", "/hello"))
        head = client.read_response(head_request=True)
        get = client.read_response()
    assert head.status == get.status == 200
    assert head.header("Content-Length") == get.header("Content-Length") == "6"
    assert get.body == b"hello\n"  # nothing of the HEAD response leaked into this one


def test_head_of_a_large_response_sends_no_body(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes("HEAD", "/big?size=100000"), request_bytes())
        head = client.read_response(head_request=True)
        assert head.status == 200
        assert client.read_response().body == b"hello\n"


@pytest.mark.parametrize(("code", "length"), [(204, None), (304, None), (205, "0")])
def test_bodyless_statuses(server: Server, code: int, length: str | None) -> None:
    with server.raw() as client:
        client.send(request_bytes(target=f"/status?code={code}"), request_bytes())
        response = client.read_response()
        assert response.status == code
        assert response.header("Content-Length") == length
        assert response.header("Transfer-Encoding") is None
        assert client.read_response().body == b"hello\n"  # no stray body bytes before it


def test_data_for_a_bodyless_status_is_a_handler_error(server: Server) -> None:
    status, _, _ = get(server.port, "/status?code=204&data=x")
    assert status == 500


def test_informational_response_then_final(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes(target="/informational"))
        early = client.read_head()
        assert early.status == 103 and early.header("Link") == "</style.css>; rel=preload"
        final = client.read_response()
    assert final.status == 200 and final.body == b"hello\n"


# -- chunked upload, 100-continue -------------------------------------------------------


def test_chunked_upload_with_http_client(server: Server) -> None:
    pieces = [b"a" * 1000, b"b" * 70000, b"c"]
    conn = server.connection()
    try:
        conn.request("POST", "/stream-body", body=iter(pieces), encode_chunked=True,
                     headers={"Transfer-Encoding": "chunked"})
        answer = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert answer["bytes"] == 71001
    assert answer["largest"] <= 16384  # maximum_input_chunk_size


def test_chunked_upload_raw_with_extensions_and_trailer(server: Server) -> None:
    body = b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n"
    with server.raw() as client:
        client.send(request_bytes("POST", "/echo", headers=[
            ("Host", "t"), ("Transfer-Encoding", "chunked")], body=body), request_bytes())
        assert json.loads(client.read_response().body)["body"] == "hello world"
        assert client.read_response().body == b"hello\n"


def test_expect_100_continue_is_answered_when_the_body_is_needed(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes("POST", "/echo", headers=[
            ("Host", "t"), ("Content-Length", "5"), ("Expect", "100-continue")]))
        interim = client.read_head()
        assert interim.status == 100 and interim.headers == []
        client.send(b"12345")
        final = client.read_response()
    assert final.status == 200 and json.loads(final.body)["body"] == "12345"


def test_expect_100_continue_not_sent_when_the_body_is_not_wanted(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes("POST", "/ignore-body", headers=[
            ("Host", "t"), ("Content-Length", "5"), ("Content-Type", "text/plain"),
            ("Expect", "100-continue")]))
        response = client.read_response()
        assert response.status == 200  # no 100 before it
        assert response.header("Connection") == "close"  # the body was never invited
        assert client.closed_by_server()


@needs_curl
def test_curl_upload_with_expect_100_continue(server: Server, tmp_path: object) -> None:
    data = bytes(range(256)) * 8000  # 2 MB: curl sends Expect: 100-continue
    result = subprocess.run(
        [CURL or "curl", "-sS", "--max-time", "20", "-H", "Expect: 100-continue",
         "--data-binary", "@-", "-H", "Content-Type: application/octet-stream",
         f"http://127.0.0.1:{server.port}/stream-body"],
        input=data, capture_output=True, timeout=30, check=True)
    assert json.loads(result.stdout)["bytes"] == len(data)


@needs_curl
def test_curl_keeps_the_connection_alive(server: Server) -> None:
    url = f"http://127.0.0.1:{server.port}"
    result = subprocess.run([CURL or "curl", "-sS", "-v", "--max-time", "20", f"{url}/hello",
                             f"{url}/chunks?count=3&size=5"],
                            capture_output=True, timeout=30, check=True)
    assert result.stdout == b"hello\n" + b"00000" + b"11111" + b"22222"
    assert b"Re-using existing connection" in result.stderr


# -- HTTP/1.0 -----------------------------------------------------------------------------


def test_http10_without_keep_alive_is_closed(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes(version="HTTP/1.0", headers=[]))
        response = client.read_response()
        assert response.status == 200 and response.body == b"hello\n"
        assert response.header("Content-Length") == "6"
        assert response.header("Connection") == "close"
        assert client.closed_by_server()


def test_http10_keep_alive_when_asked(server: Server) -> None:
    with server.raw() as client:
        for _ in range(3):
            client.send(request_bytes(version="HTTP/1.0", headers=[("Connection", "keep-alive")]))
            response = client.read_response()
            assert response.header("Connection") == "keep-alive"
            assert response.body == b"hello\n"


def test_http10_gets_no_chunked_body_but_a_close_delimited_one(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes(target="/chunks?count=3&size=4", version="HTTP/1.0",
                                  headers=[("Connection", "keep-alive")]))
        response = client.read_response()
        assert response.header("Transfer-Encoding") is None
        assert response.header("Content-Length") is None
        assert response.header("Connection") == "close"
        assert response.body == b"000011112222"  # read up to the close


def test_http10_gets_no_informational_response(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes(target="/informational", version="HTTP/1.0", headers=[]))
        response = client.read_head()
    assert response.status == 200


def test_urllib_http10_style_and_http11_clients_agree(server: Server) -> None:
    url = f"http://127.0.0.1:{server.port}/echo?x=1"
    with urllib.request.urlopen(url, data=b"posted", timeout=20) as answer:
        echoed = json.loads(answer.read())
    assert echoed["method"] == "POST" and echoed["body"] == "posted"
    assert echoed["query"] == "?x=1"


# -- response header checks -----------------------------------------------------------------


def test_response_header_injection_is_refused(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes(target="/inject"))
        response = client.read_response()
    assert response.body == b"refused: ValueError"
    assert response.header("X-Injected") is None and response.header("X-Test") is None


@pytest.mark.parametrize("value", ["a%0D%0AX-Injected:%20yes", "a%0Ab", "a%00b"])
def test_response_header_injection_raised_gives_500(server: Server, value: str) -> None:
    with server.raw() as client:
        client.send(request_bytes(target=f"/inject?raise=1&value={value}"))
        response = client.read_response()
        assert response.status == 500 and response.header("X-Injected") is None
        assert client.closed_by_server()


# -- the example ------------------------------------------------------------------------------


def test_echo_example_under_the_command_line() -> None:
    app = EXAMPLES / "layer3/echo_app.py"
    with http_server(app=app) as echo:
        answer = get_json(echo.port, "/some/path?a=1&a=2", method="POST", body=b"hello",
                           headers={"X-Demo": "yes"})
    assert answer["method"] == "POST" and answer["path"] == "some/path"
    assert answer["query"] == "?a=1&a=2" and answer["get_params"] == {"a": ["1", "2"]}
    assert answer["headers"]["x-demo"] == ["yes"]
    assert answer["body"] == "hello" and answer["body_length"] == 5


def test_echo_example_run_directly() -> None:
    app = EXAMPLES / "layer3/echo_app.py"
    with running([sys.executable, str(app)]) as program:
        port = program.wait_for_port()
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            client = RawClient(sock)
            client.send(request_bytes(target="/x?y=z"))
            answer = json.loads(client.read_response().body)
    assert answer["path"] == "x" and answer["get_params"] == {"y": ["z"]}
