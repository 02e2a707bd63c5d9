"""Every error status end to end, and what happens to the connection and the worker.

A request the server refuses gets the right status with
``Connection: close``, and then the connection really ends. A handler that
raises gets the client a 500 (or a reset, once its response began), its
traceback goes to the log, and the same worker serves the next connection.
The server here runs one worker (``--workers 1``), so "the same PID before
and after" proves the worker survived.
"""

from __future__ import annotations

import re
import select
import socket
import time
from collections.abc import Iterator

import pytest
from http_support import RawClient, Server, http_server, request_bytes
from prod_apps.prod_support import get, get_json

BODY_LIMIT = 100_000


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with http_server("--workers", "1", "--request-body-size-limit", str(BODY_LIMIT),
                     "--request-header-size-limit", "8192") as running_:
        yield running_


@pytest.fixture(scope="module")
def impatient() -> Iterator[Server]:
    """A server with one-second timeouts (the tests wait for events, not for time)."""
    with http_server("--workers", "1", "--idle-timeout", "1", "--request-header-timeout", "1",
                     "--stall-timeout", "1", "--response-timeout", "3") as running_:
        yield running_


def worker_pid(server: Server) -> int:
    return int(get_json(server.port, "/pid")["pid"])


def refused(server: Server, data: bytes, shut: bool = False) -> tuple[int, RawClient]:
    """Send raw bytes; return the status of the answer (the client is still open)."""
    client = server.raw()
    client.send(data)
    if shut:
        client.sock.shutdown(socket.SHUT_WR)
    response = client.read_response()
    assert response.header("Connection") == "close", response.raw_head
    assert response.body == f"{response.status} {response.reason}\n".encode()
    return response.status, client


def assert_refused(server: Server, data: bytes, status: int, shut: bool = False) -> None:
    got, client = refused(server, data, shut)
    with client:
        assert got == status
        assert client.closed_by_server()


HOST = ("Host", "t")
BAD_REQUESTS = {
    "bare LF ending a line": b"GET / HTTP/1.1\nHost: t\r\n\r\n",
    "bare CR in a line": b"GET / HTTP/1.1\r\nHost: t\rX: y\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n  folded\r\n\r\n",
    "space before colon": b"GET / HTTP/1.1\r\nHost : t\r\n\r\n",
    "no Host in 1.1": b"GET / HTTP/1.1\r\n\r\n",
    "two Hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "NUL in a value": b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x00b\r\n\r\n",
    "control in a value": b"GET / HTTP/1.1\r\nHost: t\r\nX: a\x01b\r\n\r\n",
    "malformed request line": b"GET  / HTTP/1.1\r\nHost: t\r\n\r\n",
    "malformed version": b"GET / HTTP/one\r\nHost: t\r\n\r\n",
    "method not a token": b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n",
    "fragment in target": b"GET /a#b HTTP/1.1\r\nHost: t\r\n\r\n",
    "Content-Length not digits": request_bytes("POST", "/echo", headers=[
        HOST, ("Content-Length", "1x")]),
    "negative Content-Length": request_bytes("POST", "/echo", headers=[
        HOST, ("Content-Length", "-1")]),
    "Content-Lengths disagree": request_bytes("POST", "/echo", headers=[
        HOST, ("Content-Length", "1"), ("Content-Length", "2")], body=b"ab"),
    "chunked not last": request_bytes("POST", "/echo", headers=[
        HOST, ("Transfer-Encoding", "chunked, gzip")]),
    "bad chunk size": request_bytes("POST", "/echo", headers=[
        HOST, ("Transfer-Encoding", "chunked")], body=b"5x\r\nhello\r\n0\r\n\r\n"),
    "chunk data without CRLF": request_bytes("POST", "/echo", headers=[
        HOST, ("Transfer-Encoding", "chunked")], body=b"5\r\nhelloXX0\r\n\r\n"),
    "Transfer-Encoding in HTTP/1.0": request_bytes("POST", "/echo", "HTTP/1.0", headers=[
        ("Transfer-Encoding", "chunked")], body=b"0\r\n\r\n"),
}


@pytest.mark.parametrize("data", BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_malformed_requests_get_400_and_the_connection_closes(server: Server,
                                                              data: bytes) -> None:
    assert_refused(server, data, 400)


def test_body_cut_short_gets_400(server: Server) -> None:
    data = request_bytes("POST", "/echo", headers=[HOST, ("Content-Length", "10")], body=b"abc")
    assert_refused(server, data, 400, shut=True)


def test_head_cut_short_gets_400(server: Server) -> None:
    assert_refused(server, b"GET / HTTP/1.1\r\nHost: t\r\n", 400, shut=True)


def test_content_length_past_the_limit_gets_413_before_the_handler(server: Server) -> None:
    data = request_bytes("POST", "/echo", headers=[HOST, ("Content-Length", str(BODY_LIMIT + 1))])
    assert_refused(server, data, 413)  # answered without sending the body


def test_chunked_body_past_the_limit_gets_413(server: Server) -> None:
    piece = b"%x\r\n" % 60000 + b"x" * 60000 + b"\r\n"
    data = request_bytes("POST", "/echo", headers=[HOST, ("Transfer-Encoding", "chunked")],
                         body=piece * 2 + b"0\r\n\r\n")
    assert_refused(server, data, 413)


def test_request_line_past_8192_bytes_gets_414(server: Server) -> None:
    assert_refused(server, request_bytes(target="/" + "a" * 9000), 414)


def test_head_past_the_size_limit_gets_431(server: Server) -> None:
    headers = [HOST, *((f"X-Filler-{n}", "v" * 100) for n in range(90))]  # about 10 KB
    assert_refused(server, request_bytes(headers=headers), 431)


def test_too_many_header_fields_get_431(server: Server) -> None:
    headers = [HOST, *((f"X-{n}", "v") for n in range(120))]
    assert_refused(server, request_bytes(headers=headers), 431)


def test_unknown_expectation_gets_417(server: Server) -> None:
    assert_refused(server, request_bytes(headers=[HOST, ("Expect", "teapot")]), 417)


@pytest.mark.parametrize("data", [
    request_bytes("POST", "/echo", headers=[HOST, ("Transfer-Encoding", "gzip, chunked")]),
    b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
], ids=["gzip coding", "CONNECT"])
def test_unimplemented_gets_501(server: Server, data: bytes) -> None:
    assert_refused(server, data, 501)


@pytest.mark.parametrize("version", ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9"])
def test_other_versions_get_505(server: Server, version: str) -> None:
    assert_refused(server, request_bytes(version=version), 505)


def test_refused_requests_do_not_cost_the_worker(server: Server) -> None:
    before = worker_pid(server)
    for data in list(BAD_REQUESTS.values())[:5]:
        assert_refused(server, data, 400)
    assert worker_pid(server) == before
    assert server.worker_exits() == []


# -- handler failures -------------------------------------------------------------------


def test_handler_exception_gives_500_the_log_a_traceback_and_the_worker_lives(
        server: Server) -> None:
    before = worker_pid(server)
    mark = len(server.program.lines)
    with server.raw() as client:
        client.send(request_bytes(target="/fail"), request_bytes(target="/hello"))
        response = client.read_response()
        assert response.status == 500 and response.header("Connection") == "close"
        assert client.closed_by_server()  # the pipelined /hello is not served
    server.program.wait_for_line(rb"RuntimeError: this handler fails on purpose", start=mark)
    assert any(b"the handler raised; answered 500" in line for line in server.program.lines[mark:])
    assert worker_pid(server) == before  # the next connection, the same living worker
    assert server.worker_exits() == []


def test_handler_exception_after_the_response_began_resets(server: Server) -> None:
    before = worker_pid(server)
    with server.raw() as client:
        client.send(request_bytes(target="/fail-late"))
        head = client.read_head()
        assert head.status == 200 and head.header("Transfer-Encoding") == "chunked"
        try:
            rest = client.read_to_end()
        except ConnectionResetError:
            rest = b""
        assert not rest.endswith(b"0\r\n\r\n")  # the response never looks complete
    assert worker_pid(server) == before


def test_handler_exception_after_a_complete_response_keeps_the_response(server: Server) -> None:
    before = worker_pid(server)
    with server.raw() as client:
        client.send(request_bytes(target="/fail-finished"))
        assert client.read_response().body == b"hello\n"
        assert client.closed_by_server()  # closed, gently: the response arrived whole
    assert worker_pid(server) == before


@pytest.mark.parametrize("route", ["/no-status", "/length-mismatch"])
def test_handler_misuse_gives_500(server: Server, route: str) -> None:
    status, headers, _ = get(server.port, route)
    assert status == 500 and headers["Connection"] == "close"


def test_a_handler_returning_false_retires_its_worker(server: Server) -> None:
    before = worker_pid(server)
    mark = len(server.program.lines)
    assert get_json(server.port, "/retire")["pid"] == before
    server.program.wait_for_line(rf"worker {before} exited with status 0".encode(), start=mark)
    assert worker_pid(server) != before


# -- timeouts ---------------------------------------------------------------------------------


def test_request_head_timeout_gets_408(impatient: Server) -> None:
    start = time.monotonic()
    got, client = refused(impatient, b"GET /hello HTTP/1.1\r\nHost: t\r\n")  # no blank line
    with client:
        assert got == 408
        assert client.closed_by_server()
    assert time.monotonic() - start < 15


def readable(sock: socket.socket, timeout: float) -> bool:
    return bool(select.select([sock], [], [], timeout)[0])


def test_slowly_sent_head_is_bounded_by_the_head_timeout(impatient: Server) -> None:
    with impatient.raw() as client:
        client.send(b"GET /hello HTTP/1.1\r\nHost: t\r\n")
        for _ in range(200):  # a line every 0.2 s: never stalled, never complete
            if readable(client.sock, 0.2):
                break
            client.send(b"X-Slow: y\r\n")
        response = client.read_response()
        assert response.status == 408


def test_idle_connection_is_closed_without_a_response(impatient: Server) -> None:
    with impatient.raw() as client:
        client.send(request_bytes())
        assert client.read_response().status == 200
        assert client.closed_by_server()  # after idle_timeout, no 408 on an idle connection


def test_stalled_body_gets_408(impatient: Server) -> None:
    data = request_bytes("POST", "/echo", headers=[HOST, ("Content-Length", "10")], body=b"abc")
    got, client = refused(impatient, data)
    with client:
        assert got == 408
        assert client.closed_by_server()


def test_response_timeout_kills_a_hanging_worker_which_is_replaced(impatient: Server) -> None:
    before = worker_pid(impatient)
    mark = len(impatient.program.lines)
    with impatient.raw() as client:
        client.send(request_bytes(target="/hang"))
        assert client.closed_by_server()  # the watchdog ended the worker, and the connection
    impatient.program.wait_for_line(rf"worker {before} was killed by signal 14".encode(),
                                    start=mark)
    assert worker_pid(impatient) != before


def test_client_that_never_reads_is_cut_off(impatient: Server) -> None:
    before = worker_pid(impatient)
    with impatient.raw() as client:
        client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.send(request_bytes(target="/big?size=50000000"))
        mark = len(impatient.program.lines)
        impatient.program.wait_for_line(rb"connection failed: TimeoutError", start=mark)
    assert worker_pid(impatient) == before
    assert re.search(rb"took no response data", b"\n".join(impatient.program.lines[mark:]))

