"""Keep-alive parking in HTTP: an idle kept-alive connection costs no worker.

The server is ``python -m layer3_http apps/parking_app.py --workers 2
--stats -d``: two workers, a log line for every change of the pool's
counts and for every control message (``PARK``, ``CONNECT 0``). The app
answers every request with the worker's PID and the client's port, so a
test sees which worker served a request and that requests shared one TCP
connection.

Between two requests on a keep-alive connection, a worker waits
``park_linger`` (20 ms) for the next one, then hands the connection back
to the master (layer 2's `park`), which gives it to any idle worker when
the next request head has arrived. These tests prove it from the outside:
more keep-alive clients than workers are all served, again and again;
keep-alive, pipelining and request bodies (``Content-Length``,
``Expect: 100-continue``, a body much larger than what the master holds)
work across parking; ``--park-linger none`` brings back the old
behaviour (an idle connection pins its worker until ``idle_timeout``);
HTTPS connections never move; the master's 408 for a head that does not
complete is the worker's 408; and 200 idle connections do not slow a new
client down. Waits are on log lines and sockets, each bounded; the bounds
are generous (the machine is shared), lower bounds only where a deadline
guarantees them.
"""

from __future__ import annotations

import http.client
import json
import re
import selectors
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trustme
from http_support import APPS, RawClient, Server, http_server, request_bytes
from prod_apps.prod_support import get_json

APP = APPS / "parking_app.py"
READY = re.compile(rb"pool 0: stats total=2 idle=2 busy=0 ")
PARK = re.compile(rb"pool 0 worker (\d+): PARK$")
TIMEOUT = 20.0
SLACK = 8.0  # generous upper bounds: the machine is shared
PROMPT = 5.0  # "at once", on a loaded machine


# --- helpers -----------------------------------------------------------------

@contextmanager
def parking(*arguments: str) -> Iterator[Server]:
    """A server with two workers, stats and debug logs; yielded once both are idle."""
    with http_server("--workers", "2", "--stats", "-d", *arguments, app=APP) as server:
        server.program.wait_for_line(READY, TIMEOUT)
        yield server


def mark(server: Server) -> int:
    """The index of the next log line."""
    server.program.drain_output()
    return len(server.program.lines)


def logged(server: Server, pattern: bytes | re.Pattern[bytes], start: int) -> list[bytes]:
    """The lines from index `start` on that match."""
    server.program.drain_output()
    return [line for line in server.program.lines[start:] if re.search(pattern, line)]


def parked(server: Server, start: int) -> int:
    """Wait until a worker parked a connection and both workers are idle; return its PID."""
    match = server.program.wait_for_line(PARK, TIMEOUT, start)
    index = server.program.lines.index(match.string, start)
    server.program.wait_for_line(READY, TIMEOUT, index)
    return int(match.group(1))


def answer(response: http.client.HTTPResponse) -> dict[str, Any]:
    assert response.status == 200, response.status
    return dict(json.loads(response.read()))


def get(conn: http.client.HTTPConnection, path: str) -> dict[str, Any]:
    conn.request("GET", path)
    return answer(conn.getresponse())


def raw_answer(client: RawClient) -> dict[str, Any]:
    response = client.read_response()
    assert response.status == 200, response
    return dict(json.loads(response.body))


def readable(socks: list[socket.socket], timeout: float) -> bool:
    """Whether any of the sockets turns readable within `timeout` seconds."""
    with selectors.DefaultSelector() as selector:
        for sock in socks:
            selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def no_trouble(server: Server) -> None:
    """No error or traceback in the log, and no worker lost."""
    assert not logged(server, rb"ERROR|Traceback", 0), server.program.output()
    assert server.worker_exits() == []


# --- more clients than workers --------------------------------------------------

def test_sixteen_keep_alive_clients_on_two_workers_are_all_served_twice() -> None:
    with parking() as server:
        conns = [server.connection() for _ in range(16)]
        ports: list[list[int]] = [[] for _ in conns]
        for round_ in range(2):
            started = time.monotonic()
            for number, conn in enumerate(conns):
                conn.request("GET", f"/round{round_}/client{number}")
            for number, conn in enumerate(conns):
                reply = answer(conn.getresponse())
                assert reply["path"] == f"/round{round_}/client{number}"
                ports[number].append(reply["port"])
            assert time.monotonic() - started < SLACK
        for conn, seen in zip(conns, ports, strict=True):
            assert seen == [conn.sock.getsockname()[1]] * 2  # the same connection both times
            conn.close()
        no_trouble(server)


def test_fifty_requests_on_one_keep_alive_connection() -> None:
    with parking() as server:
        conn = server.connection()
        replies = [get(conn, f"/n{number}") for number in range(50)]
        local_port = conn.sock.getsockname()[1]
        assert [reply["path"] for reply in replies] == [f"/n{number}" for number in range(50)]
        assert {reply["port"] for reply in replies} == {local_port}  # one TCP connection
        conn.close()
        no_trouble(server)


def test_pipelined_requests_are_answered_in_order_by_one_worker() -> None:
    with parking() as server, server.raw() as client:
        start = mark(server)
        client.send(*(request_bytes(target=f"/p{number}") for number in range(4)))
        replies = [raw_answer(client) for _ in range(4)]
        assert [reply["path"] for reply in replies] == ["/p0", "/p1", "/p2", "/p3"]
        assert len({reply["pid"] for reply in replies}) == 1  # never parked in between
        assert parked(server, start) == replies[0]["pid"]  # parked after the last one
        assert len(logged(server, PARK, start)) == 1


def test_a_waiting_client_cuts_a_long_linger_short() -> None:
    with parking("--park-linger", "10") as server:
        first, second, third = (server.connection() for _ in range(3))
        pids = {get(first, "/a")["pid"], get(second, "/b")["pid"]}  # both linger 10 s
        assert len(pids) == 2
        started = time.monotonic()
        assert get(third, "/c")["pid"] in pids  # one of them parked at once
        assert time.monotonic() - started < PROMPT
        assert get(first, "/a2")["path"] == "/a2" and get(second, "/b2")["path"] == "/b2"
        for conn in (first, second, third):
            conn.close()


def test_without_parking_an_idle_connection_pins_its_worker() -> None:
    idle = 1.5
    with parking("--park-linger", "none", "--idle-timeout", str(idle)) as server:
        first, second, third = (server.raw() for _ in range(3))
        began = time.monotonic()  # before the first request: its worker's wait starts later
        first.send(request_bytes(target="/first"))
        assert raw_answer(first)["path"] == "/first"
        second.send(request_bytes(target="/second"))
        assert raw_answer(second)["path"] == "/second"
        third.send(request_bytes(target="/third"))
        assert not readable([third.sock], 0)
        assert raw_answer(third)["path"] == "/third"  # once idle_timeout freed a worker
        waited = time.monotonic() - began
        assert idle * 0.95 <= waited < idle + SLACK
        assert first.closed_by_server()  # the first idle connection went, quietly
        assert not logged(server, PARK, 0)
        for client in (first, second, third):
            client.sock.close()


# --- request bodies --------------------------------------------------------------

def expect_continue(client: RawClient, body: bytes, target: str) -> dict[str, Any]:
    """A POST that waits for 100 Continue before it sends its body."""
    client.send(request_bytes("POST", target, headers=(
        ("Host", "test"), ("Content-Length", str(len(body))), ("Expect", "100-continue"))))
    interim = client.read_head()
    assert interim.status == 100, interim
    client.send(body)
    return raw_answer(client)


def post(client: RawClient, body: bytes, target: str) -> dict[str, Any]:
    """A POST with its head and body in one send."""
    client.send(request_bytes("POST", target, headers=(
        ("Host", "test"), ("Content-Length", str(len(body)))), body=body))
    return raw_answer(client)


def test_request_bodies_on_new_and_resumed_connections() -> None:
    small = bytes(range(256)) * 4
    large = bytes(range(256)) * 800  # 200 KiB: far more than the master holds
    with parking() as server, server.raw() as client:
        start = mark(server)
        assert post(client, small, "/new")["body"].encode("latin-1") == small
        parked(server, start)
        start = mark(server)
        assert expect_continue(client, small, "/continue")["body"].encode("latin-1") == small
        parked(server, start)
        start = mark(server)
        assert post(client, large, "/large")["body"].encode("latin-1") == large
        parked(server, start)
        assert expect_continue(client, large, "/large")["body"].encode("latin-1") == large
        with server.raw() as fresh:
            assert expect_continue(fresh, small, "/first")["body"].encode("latin-1") == small
        no_trouble(server)


# --- HTTPS ------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("parking-tls")
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(str(paths["cert"]), append=True)
    leaf.private_key_pem.write_to_path(str(paths["key"]))
    return paths


def test_https_keep_alive_works_and_is_never_parked(tls_files: dict[str, Path]) -> None:
    context = ssl.create_default_context(cafile=str(tls_files["ca"]))
    with parking("--certfile", str(tls_files["cert"]), "--keyfile", str(tls_files["key"])) \
            as server:
        conns = [http.client.HTTPSConnection("localhost", server.port, timeout=TIMEOUT,
                                             context=context) for _ in range(2)]
        replies: list[list[dict[str, Any]]] = [[], []]
        for round_ in range(3):
            for conn, seen in zip(conns, replies, strict=True):
                seen.append(get(conn, f"/secure{round_}"))
            # A pause far longer than the 20 ms linger, in which nothing comes.
            assert not readable([conn.sock for conn in conns], 0.25)
        for conn, seen in zip(conns, replies, strict=True):
            assert {reply["port"] for reply in seen} == {conn.sock.getsockname()[1]}
            assert len({reply["pid"] for reply in seen}) == 1  # its worker kept it
            conn.close()
        assert replies[0][0]["pid"] != replies[1][0]["pid"]  # each connection pins a worker
        assert not logged(server, PARK, 0)


# --- the master's 408 --------------------------------------------------------

def without_date(head: bytes) -> list[bytes]:
    return [line for line in head.split(b"\r\n") if not line.lower().startswith(b"date:")]


def test_the_masters_408_is_the_workers_408() -> None:
    head_timeout = 1.0
    partial = b"GET /slow HTTP/1.1\r\nHost: test\r\n"
    with parking("--request-header-timeout", str(head_timeout)) as server:
        start = mark(server)
        with server.raw() as held:  # a new connection: its head is held in the master
            began = time.monotonic()
            held.send(partial)
            from_master = held.read_to_end()
            assert time.monotonic() - began >= head_timeout * 0.95
        server.program.wait_for_line(
            rb"pool 0: a held request did not complete within 1 s; closed", TIMEOUT, start)
        start = mark(server)
        with server.raw() as served:  # after a request, the partial head is in the worker
            served.send(request_bytes(target="/first"), partial)
            assert raw_answer(served)["path"] == "/first"
            from_worker = served.read_to_end()
        server.program.wait_for_line(rb"worker \d+: layer3_http: .*did not arrive in time",
                                     TIMEOUT, start)
    master_head, _, master_body = from_master.partition(b"\r\n\r\n")
    worker_head, _, worker_body = from_worker.partition(b"\r\n\r\n")
    assert master_head.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert without_date(master_head) == without_date(worker_head)
    assert master_body == worker_body == b"408 Request Timeout\n"
    fields = [line.lower() for line in without_date(master_head)]
    assert b"connection: close" in fields
    assert b"content-type: text/plain; charset=utf-8" in fields


# --- many idle connections -----------------------------------------------------

def test_two_hundred_idle_keep_alive_connections_do_not_slow_a_new_client() -> None:
    with parking() as server:
        idle = [server.raw() for _ in range(200)]
        try:
            for number, client in enumerate(idle):
                client.send(request_bytes(target=f"/idle{number}"))
            for number, client in enumerate(idle):
                assert raw_answer(client)["path"] == f"/idle{number}"
            for _ in range(3):
                started = time.monotonic()
                assert get_json(server.port, "/new")["path"] == "/new"
                assert time.monotonic() - started < PROMPT
            for number, client in enumerate(idle[::20]):  # parked ones resume
                client.send(request_bytes(target=f"/again{number}"))
                assert raw_answer(client)["path"] == f"/again{number}"
        finally:
            for client in idle:
                client.sock.close()
        no_trouble(server)
