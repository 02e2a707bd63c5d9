"""Timed reads and writes on one connection: the only place that waits.

`Wire` wraps the connection's `layer1_sockets.BufferedSocket` and gives the
HTTP layer reads and writes that never wait longer than the options allow.
It uses the buffered socket's ``*_call`` forms: each time an operation
would block, the socket calls one of the wait functions here, which polls
with the time that is left and raises when it runs out. No signals and no
threads are involved; the only signal-based limit, `response_timeout`, is
the layer 2 watchdog around the whole request.

Writing has a second job. A client may send its whole request body before
it reads any of the response. If the handler answers first, the response
fills the socket buffers, the client stops reading, the server's write
blocks, and both sides wait for ever. So while a write is blocked, the wait
function also watches the socket for input and, when the request body is
pending, lets the body reader (`BodyPump`, the request input) take what has
arrived. The client can then finish sending and start reading.

Invariants: every wait is bounded by `stall_timeout` (or, for the request
head, by the idle and header deadlines the caller passes); a stall while
reading raises `ClientError` 408 (the request is late), a stall while
writing raises `TimeoutError` (the client does not take the response).

Moonbridge: the ``unblock`` and ``consume`` helpers inside
``generate_handler``.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import time
from collections.abc import Sequence
from typing import Protocol

from layer1_sockets import BufferedSocket, poll, wait_ready

from ._errors import ClientError
from ._options import Options
from ._proxy import canonical_address

__all__ = ["BodyPump", "Wire"]

_SENDFILE_BLOCK = 1 << 20
_READ_BLOCK = 65536


class BodyPump(Protocol):
    """What a blocked write asks the request body reader."""

    def wants_input(self) -> bool:
        """Whether request body is pending and may be read now."""
        ...

    def read_available(self) -> None:
        """Read and process the body bytes that have arrived, without blocking."""
        ...


class Wire:
    """The connection's socket with deadlines on every wait.

    Args:
        sock: The connection.
        options: The limits and timeouts.

    Attributes:
        sock: The buffered socket.
        pump: The body reader that blocked writes feed, or `None`.
    """

    def __init__(self, sock: BufferedSocket, options: Options) -> None:
        self.sock = sock
        self.options = options
        self.pump: BodyPump | None = None

    @functools.cached_property
    def peer_address(self) -> str | None:
        """The peer's IP address in canonical text form; `None` on a Unix socket."""
        packed = self.sock.remote_ip4 or self.sock.remote_ip6
        return None if packed is None else canonical_address(str(ipaddress.ip_address(packed)))

    # -- writing -------------------------------------------------------------

    def write(self, parts: Sequence[bytes], flush: bool) -> None:
        """Queue `parts` (sending whole blocks), and with `flush` send everything.

        Raises:
            TimeoutError: The client took nothing for `stall_timeout` seconds.
            OSError: The connection failed.
        """
        if flush:
            self.sock.flush_call(self._wait_writable, *parts)
        elif parts:
            self.sock.write_call(self._wait_writable, *parts)

    def _wait_writable(self, sock: BufferedSocket, mode: str) -> None:
        """The wait of a blocked write: read pending body meanwhile, give up on a stall."""
        pump = self.pump
        reading = pump is not None and pump.wants_input()
        if not poll([sock] if reading else [], [sock], self.options.stall_timeout):
            raise TimeoutError(
                f"the client took no response data for {self.options.stall_timeout} s")
        if reading and pump is not None:
            pump.read_available()

    def sendfile(self, fd: int, offset: int, count: int) -> None:
        """Send `count` bytes of the file `fd` from `offset` after what is queued.

        Uses ``os.sendfile`` (the kernel copies, the bytes never enter
        Python) unless the connection is TLS; then it reads and writes.

        Raises:
            TimeoutError, OSError: As `write`; `OSError` also when the file
                ends before `count` bytes.
        """
        self.sock.flush_call(self._wait_writable)
        if self.sock.tls:
            self._copy_file(fd, offset, count)
            return
        out = self.sock.fileno()
        while count > 0:
            try:
                sent = os.sendfile(out, fd, offset, min(count, _SENDFILE_BLOCK))
            except (BlockingIOError, InterruptedError):
                self._wait_writable(self.sock, "w")
                continue
            if sent == 0:
                raise OSError(f"the file ended {count} bytes early")
            offset += sent
            count -= sent

    def _copy_file(self, fd: int, offset: int, count: int) -> None:
        while count > 0:
            block = os.pread(fd, min(count, _READ_BLOCK), offset)
            if not block:
                raise OSError(f"the file ended {count} bytes early")
            self.sock.write_call(self._wait_writable, block)
            offset += len(block)
            count -= len(block)
        self.sock.flush_call(self._wait_writable)

    # -- reading -------------------------------------------------------------

    def read(self, maxlen: int, terminator: bytes | None = None) -> bytes:
        """Read like `BufferedSocket.read`; each wait is bounded by `stall_timeout`.

        Raises:
            ClientError: 408 when the client sent nothing for `stall_timeout`.
            OSError: The connection failed.
        """
        return self.sock.read_call(self._wait_readable, maxlen, terminator)

    def _wait_readable(self, sock: BufferedSocket, mode: str) -> None:
        self.wait_readable()

    def wait_readable(self) -> None:
        """Wait until input (or EOF) arrives, at most `stall_timeout`.

        Raises:
            ClientError: 408 when the client sent nothing for `stall_timeout`.
        """
        if not wait_ready(self.sock, "r", self.options.stall_timeout):
            raise ClientError(
                408, f"the client sent nothing for {self.options.stall_timeout} s")

    def read_nb(self, maxlen: int, terminator: bytes | None = None) -> bytes | None:
        """Read what has arrived, up to the limits; `None` if nothing has."""
        return self.sock.read_nb(maxlen, terminator)

    def wait_input(self, deadline: float | None, also: int | None = None) -> bool:
        """Wait until input arrives or `deadline` (monotonic seconds) passes.

        Args:
            deadline: When to give up; `None` waits without limit.
            also: Another descriptor whose readability ends the wait too
                (layer 2's `stop_fd`).

        Returns:
            `True` if input (or EOF) is there, or `also` is readable;
            `False` once the deadline passed.
        """
        readers: list[BufferedSocket | int] = [self.sock] if also is None else [self.sock, also]
        if deadline is None:
            return poll(readers, [], None)
        left = deadline - time.monotonic()
        return left > 0 and poll(readers, [], left)

    # -- ending ----------------------------------------------------------------

    def close_gently(self) -> None:
        """End the connection so that the last response is not lost.

        Flushes, half-closes (the client sees the end), discards what the
        client still sends until it closes too or `drain_timeout` passes,
        then closes (a "lingering close"). Closing with unread input makes
        the kernel send a reset, and a reset can destroy the response in the
        client's buffers before it has been read. A failure ends in a reset.
        """
        sock = self.sock
        if sock.closed:
            return
        options = self.options
        try:
            sock.flush_call(self._wait_writable)
            sock.finish()
            deadline = None if options.drain_timeout is None else (
                time.monotonic() + options.drain_timeout)
            while True:
                count = sock.drain_nb(_READ_BLOCK)
                if count == 0 or (count is None and not self.wait_input(deadline)):
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
            sock.close()
        except (OSError, ValueError):
            sock.reset()
