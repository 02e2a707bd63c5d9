"""Helpers for the layer 3 end-to-end tests: start a server, talk raw HTTP to it.

Servers are real processes (``python -m layer3_http APP --listen
127.0.0.1:0 ...``) started with `support.running`, so the master and every
worker are killed and reaped by PID when the test ends. Raw clients are
plain sockets with a timeout on every call (no wait is unbounded); the
small response reader here frames bodies by Content-Length, chunked
coding, or the end of the connection, so tests see exactly what the
server sent.
One request with `http.client` on a new connection is
`prod_apps.prod_support.get` (or `get_json`), with the server's port.
"""

from __future__ import annotations

import http.client
import re
import socket
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from support import Program, running

APPS = Path(__file__).resolve().parent / "apps"
TEST_APP = APPS / "testapp.py"
TIMEOUT = 20.0
EXIT_LINE = re.compile(rb"worker (\d+) (?:exited|was killed)")


@dataclass
class Server:
    """A running HTTP server: its program and its port."""

    program: Program
    port: int

    def connection(self, timeout: float = TIMEOUT) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def raw(self, timeout: float = TIMEOUT) -> RawClient:
        return RawClient(socket.create_connection(("127.0.0.1", self.port), timeout=timeout))

    def worker_exits(self) -> list[bytes]:
        """Log lines saying a worker ended (so far)."""
        self.program.drain_output()
        return [line for line in self.program.lines if EXIT_LINE.search(line)]


@contextmanager
def http_server(*args: str, app: Path | str = TEST_APP) -> Iterator[Server]:
    """Run ``python -m layer3_http APP --listen 127.0.0.1:0 ARGS``; yield the server."""
    target = [] if str(app) == "" else [str(app)]
    argv = [sys.executable, "-m", "layer3_http", *target, "--listen", "127.0.0.1:0", *args]
    with running(argv) as program:
        yield Server(program, program.wait_for_port())


@dataclass
class Response:
    """A response as read from the wire."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    raw_head: bytes = b""
    chunked: bool = False
    chunk_sizes: list[int] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return values[0] if values else None


class RawClient:
    """A socket with a reader for HTTP responses; every call bounded by its timeout."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, *data: bytes) -> None:
        self.sock.sendall(b"".join(data))

    def _fill(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            if not self._fill():
                raise EOFError(f"connection closed before {marker!r}; got {self.buffer!r}")
        index = self.buffer.index(marker) + len(marker)
        result, self.buffer = self.buffer[:index], self.buffer[index:]
        return result

    def read_exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            if not self._fill():
                raise EOFError(f"connection closed with {len(self.buffer)} of {count} bytes")
        result, self.buffer = self.buffer[:count], self.buffer[count:]
        return result

    def read_head(self) -> Response:
        head = self.read_until(b"\r\n\r\n")
        lines = head[:-4].decode("latin-1").split("\r\n")
        version, code, reason = [*lines[0].split(" ", 2), ""][:3]
        assert version == "HTTP/1.1", lines[0]
        headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
        return Response(int(code), reason, headers, raw_head=head)  # type: ignore[arg-type]

    def read_response(self, head_request: bool = False) -> Response:
        """Read one final response (skipping 1xx ones) with its body."""
        response = self.read_head()
        while 100 <= response.status < 200:
            response = self.read_head()
        if head_request or response.status in (204, 304):
            return response
        length = response.header("Content-Length")
        if response.header("Transfer-Encoding") == "chunked":
            response.chunked = True
            response.body = self._read_chunked(response.chunk_sizes)
        elif length is not None:
            response.body = self.read_exactly(int(length))
        else:
            response.body = self.read_to_end()
        return response

    def _read_chunked(self, sizes: list[int]) -> bytes:
        pieces: list[bytes] = []
        while True:
            size = int(self.read_until(b"\r\n")[:-2], 16)
            sizes.append(size)
            if size == 0:
                assert self.read_until(b"\r\n") == b"\r\n"
                return b"".join(pieces)
            pieces.append(self.read_exactly(size))
            assert self.read_exactly(2) == b"\r\n"

    def read_to_end(self) -> bytes:
        while self._fill():
            pass
        result, self.buffer = self.buffer, b""
        return result

    def closed_by_server(self) -> bool:
        """True if the server ended the connection (EOF or reset) with nothing more sent."""
        try:
            return not self.buffer and not self._fill()
        except ConnectionResetError:
            return True


def request_bytes(method: str = "GET", target: str = "/hello", version: str = "HTTP/1.1",
                  headers: Sequence[tuple[str, str]] = (("Host", "test"),),
                  body: bytes = b"") -> bytes:
    """A request as bytes, exactly as given (no header added)."""
    lines = [f"{method} {target} {version}", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
