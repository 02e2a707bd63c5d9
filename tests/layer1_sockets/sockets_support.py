"""Support for the layer 1 tests: connected pairs of every kind, two I/O styles.

`connected(kind, directory)` yields a connected pair of `BufferedSocket`s
over TCP/IPv4, TCP/IPv6, a Unix socket, or TLS over TCP (certificates made
at test time with `trustme`). `Blocking` and `NonBlocking` do the same
logical read or send with the blocking calls or with the ``*_nb`` calls and
`poll`, so one test body checks both paths. Nothing sleeps: every wait is a
`poll` or a thread join with a bound.
"""

from __future__ import annotations

import functools
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import pytest
import trustme

from layer1_sockets import BufferedSocket, localconnect, locallisten, poll, tcpconnect, tcplisten

TIMEOUT = 20.0  # generous bound on every wait (the machine is shared)
KINDS = ["tcp4", "tcp6", "unix", "tls"]
TCP_KINDS = ["tcp4", "tcp6", "tls"]

T = TypeVar("T")


@functools.cache
def ipv6_available() -> bool:
    """Can we listen on ::1?"""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def skip_without(kind: str) -> None:
    if kind == "tcp6" and not ipv6_available():
        pytest.skip("::1 is not available")


@dataclass(frozen=True)
class TLSContexts:
    """A test CA with a server context (cert for localhost) and a client context."""

    ca: trustme.CA
    server: ssl.SSLContext
    client: ssl.SSLContext


@functools.cache
def tls_contexts() -> TLSContexts:
    ca = trustme.CA()
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client)
    return TLSContexts(ca, server, client)


class Background(Generic[T]):
    """Run a function in a thread; `result()` joins (bounded) and re-raises."""

    def __init__(self, function: Callable[[], T]) -> None:
        self._function = function
        self._value: list[T] = []
        self._error: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value.append(self._function())
        except BaseException as error:  # handed to the test thread
            self._error.append(error)

    def result(self, timeout: float = TIMEOUT) -> T:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "background work did not finish in time"
        if self._error:
            raise self._error[0]
        return self._value[0]


def handshake(client: BufferedSocket, server: BufferedSocket) -> None:
    """Run both sides of a TLS handshake (the server side in a thread)."""
    contexts = tls_contexts()
    other = Background(lambda: server.starttls(contexts.server, server_side=True))
    client.starttls(contexts.client, server_hostname="localhost")
    other.result()


@contextmanager
def connected(kind: str, directory: Path) -> Iterator[tuple[BufferedSocket, BufferedSocket]]:
    """Yield (client, server) connected by `kind`; both are reset at the end."""
    skip_without(kind)
    if kind == "unix":
        path = str(directory / "pair.sock")
        with locallisten(path) as listener:
            client = localconnect(path)
            server = listener.accept()
    else:
        host = "::1" if kind == "tcp6" else "127.0.0.1"
        with tcplisten(host, 0) as listener:
            client = tcpconnect(host, listener.port or 0)
            server = listener.accept()
    try:
        if kind == "tls":
            handshake(client, server)
        yield client, server
    finally:
        client.reset()
        server.reset()


def expected_read(data: bytes, position: int, maxlen: int | None,
                  terminator: bytes | None) -> bytes:
    """What a blocking read returns at `position` when `data` is all there is."""
    end = len(data) if maxlen is None else min(len(data), position + maxlen)
    if terminator is not None:
        found = data.find(terminator, position, end)
        if found >= 0:
            end = found + 1
    return data[position:end]


def wait_readable(sock: BufferedSocket | socket.socket | int) -> None:
    assert poll([sock], [], TIMEOUT), "peer did not become readable in time"


def wait_writable(sock: BufferedSocket) -> None:
    assert poll([], [sock], TIMEOUT), "socket did not become writable in time"


class Blocking:
    """Logical operations done with the blocking calls."""

    name = "blocking"

    def recv(self, sock: BufferedSocket, maxlen: int | None = None,
             terminator: bytes | None = None) -> bytes:
        return sock.read(maxlen, terminator)

    def drain(self, sock: BufferedSocket, maxlen: int | None = None,
              terminator: bytes | None = None) -> int:
        return sock.drain(maxlen, terminator)

    def send(self, sock: BufferedSocket, *data: bytes) -> None:
        sock.flush(*data)


class NonBlocking:
    """The same logical operations done with ``*_nb`` calls and `poll`."""

    name = "nonblocking"

    def recv(self, sock: BufferedSocket, maxlen: int | None = None,
             terminator: bytes | None = None) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            piece = sock.read_nb(None if maxlen is None else maxlen - total, terminator)
            if piece is None:
                wait_readable(sock)
                continue
            if not piece:
                return b"".join(parts)
            if terminator is not None:
                assert terminator not in piece[:-1], "read_nb went past the terminator"
            parts.append(piece)
            total += len(piece)
            assert maxlen is None or total <= maxlen, "read_nb went past maxlen"
            if (terminator is not None and piece.endswith(terminator)) or total == maxlen:
                return b"".join(parts)

    def drain(self, sock: BufferedSocket, maxlen: int | None = None,
              terminator: bytes | None = None) -> int:
        # drain_nb's count does not say whether it stopped at a terminator
        # or ran out of input, so this logical form takes only maxlen.
        assert terminator is None
        total = 0
        while True:
            count = sock.drain_nb(None if maxlen is None else maxlen - total)
            if count is None:
                wait_readable(sock)
                continue
            total += count
            if count == 0 or total == maxlen:
                return total

    def send(self, sock: BufferedSocket, *data: bytes) -> None:
        left = sock.flush_nb(*data)
        while left:
            wait_writable(sock)
            left = sock.flush_nb()
