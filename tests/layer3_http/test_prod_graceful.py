"""A graceful stop closes idle keep-alive connections at once and finishes requests under way.

Without the stop notice of layer 2 a worker waiting for the next request
of a keep-alive client counts as busy, so ``SIGTERM`` would wait for the
whole graceful timeout and then kill it. Here the server runs with a
deadline of 120 s and must exit long before it: the idle client sees a
clean end of the connection (no reset, no response), the client whose
request is under way still gets its answer.
"""

from __future__ import annotations

import re
import signal
import socket
import sys
import time
from pathlib import Path

from http_support import RawClient, request_bytes
from support import running

APP = Path(__file__).resolve().parents[1] / "prod_apps" / "http_app.py"
STATS = re.compile(rb"pool 0: stats total=2 idle=2 ")


def client(port: int) -> RawClient:
    return RawClient(socket.create_connection(("127.0.0.1", port), timeout=20))


def test_idle_keep_alive_closes_at_once_and_a_request_in_flight_is_answered() -> None:
    argv = [sys.executable, "-m", "layer3_http", str(APP), "--listen", "127.0.0.1:0",
            "--workers", "2", "-s", "-g", "120"]
    with running(argv) as program:
        port = program.wait_for_port()
        program.wait_for_line(STATS)
        with client(port) as idle, client(port) as busy:
            idle.send(request_bytes("POST", "/echo", headers=[("Host", "t"),
                                                               ("Content-Length", "2")],
                                    body=b"hi"))
            assert idle.read_response().body == b"hi"  # now idle, kept alive
            busy.send(request_bytes("POST", "/echo", headers=[
                ("Host", "t"), ("Content-Length", "5"), ("Expect", "100-continue")]))
            assert busy.read_head().status == 100  # the handler waits for the body
            started = time.monotonic()
            program.proc.send_signal(signal.SIGTERM)
            program.wait_for_line(rb"graceful stop \(SIGTERM\)")
            assert idle.sock.recv(100) == b""  # a clean close: EOF, no reset, no bytes
            busy.send(b"hello")
            response = busy.read_response()
            assert (response.status, response.body) == (200, b"hello")
            assert busy.closed_by_server()
        assert program.stop(signal.SIGTERM, timeout=60) == 0
        assert time.monotonic() - started < 60  # the deadline is 120 s
        assert "killed by signal" not in program.output()
