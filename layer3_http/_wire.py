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

A client that is slow to take a response must not hold the worker
either. When a write would block, the response goes on into a memory file
instead (up to `write_completion_limit`), and a static file's rest is
remembered rather than waited for; once the response is complete,
`hand_over_tail` gives the connection and that file to layer 2
(`send_rest`), and the master finishes sending while the worker serves
the next request. The lingering close at the end of a connection goes to
the master the same way (`layer2_prefork.linger`).

Invariants: every wait is bounded by `stall_timeout` (or, for the request
head, by the idle and header deadlines the caller passes) and, with
`minimum_rate`, by the average rate since the request's first wait; a stall
while reading raises `ClientError` 408 (the request is late), a stall while
writing raises `TimeoutError` (the client does not take the response);
bytes go out in the order they were written, whether from the socket's
queue, the memory file or the static file.

Moonbridge: the ``unblock`` and ``consume`` helpers inside
``generate_handler``.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Sequence
from typing import Protocol

from layer1_sockets import BufferedSocket, poll, wait_ready
from layer2_prefork import linger, send_rest

from ._errors import ClientError
from ._options import Options
from ._proxy import canonical_address, socket_address

__all__ = ["BodyPump", "Wire"]

_SENDFILE_BLOCK = 1 << 20
_READ_BLOCK = 65536
LINGER_BYTES = 1 << 26
"""The most bytes a lingering close discards (within `drain_timeout`) before closing anyway."""


class _Spill(Exception):
    """Raised by a blocked write's wait: go on into the memory file instead of waiting."""


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
        self.spill: int | None = None
        """The memory file the response goes on into while the client is slow."""
        self.spilled = 0
        self.tail_file: tuple[int, int, int] | None = None
        """(a copy of the file's descriptor, offset, count) still to send of a static file."""
        self.rate_start: float | None = None
        """The first wait of the current request (the minimum rate counts from it)."""
        self.moved = 0
        """Bytes read or written for the current request (for the minimum rate)."""

    def begin_request(self) -> None:
        """A new request: the minimum rate counts afresh, a response may spill again."""
        self.rate_start = None
        self.moved = 0
        self.spilled = 0

    def _wait_time(self, what: str) -> float | None:
        """How long the next wait may last: `stall_timeout`, cut by the minimum rate.

        Raises:
            TimeoutError: The client is already below the minimum rate.
        """
        stall = self.options.stall_timeout
        rate = self.options.minimum_rate
        if rate is None or stall is None:
            return stall
        now = time.monotonic()
        if self.rate_start is None:
            self.rate_start = now
        moved = self.moved - (self.sock.queued if what == "w" else 0)
        left = self.rate_start + stall + moved / rate - now
        if left <= 0:
            raise TimeoutError(f"the client moved {moved} bytes in {now - self.rate_start:.1f} s,"
                               f" below the minimum rate of {rate} bytes/s")
        return min(stall, left)

    @functools.cached_property
    def peer_address(self) -> str | None:
        """The peer's IP address in canonical text form; `None` on a Unix socket."""
        address = socket_address(self.sock)
        return None if address is None else canonical_address(address)

    # -- writing -------------------------------------------------------------

    def write(self, parts: Sequence[bytes], flush: bool) -> None:
        """Queue `parts` (sending whole blocks), and with `flush` send everything.

        Raises:
            TimeoutError: The client took nothing for `stall_timeout` seconds.
            OSError: The connection failed.
        """
        if self.spill is not None or self.tail_file is not None:
            self._spill_parts(parts)
            return
        self.moved += sum(len(part) for part in parts)
        try:
            if flush:
                self.sock.flush_call(self._wait_writable, *parts)
            elif parts:
                self.sock.write_call(self._wait_writable, *parts)
        except _Spill:
            self._start_spill()

    def _may_spill(self) -> bool:
        """Whether a blocked write may go on into the memory file.

        Not while request body is pending: a client that sends its whole
        body before it reads is served by reading while the write waits.
        """
        pump = self.pump
        return (self.options.write_completion_limit > 0 and not self.sock.tls
                and self.spilled >= 0 and not (pump is not None and pump.wants_input()))

    def _wait_writable(self, sock: BufferedSocket, mode: str) -> None:
        """The wait of a blocked write: read pending body meanwhile, give up on a stall.

        Raises:
            _Spill: The write should go on into the memory file instead.
        """
        if self._may_spill():
            raise _Spill
        pump = self.pump
        reading = pump is not None and pump.wants_input()
        timeout = self._wait_time("w")
        if not poll([sock] if reading else [], [sock], timeout):
            raise TimeoutError(f"the client took no response data for {timeout} s")
        if reading and pump is not None:
            pump.read_available()

    # -- the tail of a slow response -----------------------------------------

    def _start_spill(self) -> None:
        """Move what the socket still has queued into a new memory file."""
        self.spill = os.memfd_create("response", os.MFD_CLOEXEC)
        self.spilled = 0
        self._append(self.sock.take_output())

    def _append(self, data: bytes | memoryview) -> None:
        assert self.spill is not None
        view = memoryview(data)
        while view:
            written = os.write(self.spill, view)
            view = view[written:]
            self.spilled += written

    def _spill_parts(self, parts: Sequence[bytes]) -> None:
        """Go on into the memory file; past the limit, send it all here and stop spilling."""
        if self.tail_file is not None:
            self._spill_tail_file()
        for part in parts:
            self._append(part)
        if self.spilled > self.options.write_completion_limit:
            self._send_spill_here()

    def _spill_tail_file(self) -> None:
        """More output after a static file's rest: copy that rest into the memory file first."""
        assert self.tail_file is not None
        fd, offset, count = self.tail_file
        self.tail_file = None
        if self.spill is None:
            self.spill, self.spilled = os.memfd_create("response", os.MFD_CLOEXEC), 0
        try:
            while count > 0:
                block = os.pread(fd, min(count, _READ_BLOCK), offset)
                if not block:
                    raise OSError(f"the file ended {count} bytes early")
                self._append(block)
                offset += len(block)
                count -= len(block)
        finally:
            os.close(fd)

    def _send_spill_here(self) -> None:
        """Send the memory file from this worker (the limit was passed, or no master took it)."""
        spill, size = self.spill, self.spilled
        assert spill is not None
        self.spill, self.spilled = None, -1  # -1: no more spilling for this response
        try:
            self._send_file(spill, 0, size)
        finally:
            os.close(spill)

    def has_tail(self) -> bool:
        """Whether part of the response waits in a memory file or a static file."""
        return self.spill is not None or self.tail_file is not None

    def hand_over_tail(self, keep_alive: bool) -> bool:
        """Give the rest of a complete response, and the connection, to the master.

        Returns:
            Whether the master took them (the connection is no longer ours);
            `False` if there is no tail, or layer 2 cannot take it: then the
            tail is sent here and the connection stays.
        """
        if not self.has_tail():
            return False
        options = self.options
        if self.tail_file is not None:
            fd, offset, count = self.tail_file
            self.tail_file = None
        else:
            assert self.spill is not None
            fd, offset, count = self.spill, 0, self.spilled
            self.spill = None
        try:
            taken = send_rest(self.sock, fd, offset, count, keep_alive=keep_alive,
                              stall=options.stall_timeout, linger_timeout=options.drain_timeout,
                              linger_limit=LINGER_BYTES)
            if not taken:
                self._send_file(fd, offset, count)
        finally:
            os.close(fd)
        self.spilled = 0
        return taken

    def drop_tail(self) -> None:
        """Forget a tail (the connection failed or was reset)."""
        if self.spill is not None:
            os.close(self.spill)
        if self.tail_file is not None:
            os.close(self.tail_file[0])
        self.spill, self.tail_file, self.spilled = None, None, 0

    def sendfile(self, fd: int, offset: int, count: int) -> None:
        """Send `count` bytes of the file `fd` from `offset` after what is queued.

        Uses ``os.sendfile`` (the kernel copies, the bytes never enter
        Python) unless the connection is TLS; then it reads and writes.

        Raises:
            TimeoutError, OSError: As `write`; `OSError` also when the file
                ends before `count` bytes.
        """
        if self.tail_file is not None:
            self._spill_tail_file()  # a second file after a first: both go into the memory file
        if self.spill is not None:
            self.tail_file = (os.dup(fd), offset, count)  # copied in if more output follows
            return
        try:
            self.sock.flush_call(self._wait_writable)
        except _Spill:
            self._start_spill()
            self.tail_file = (os.dup(fd), offset, count)
            self._spill_tail_file()
            return
        if self.sock.tls:
            self._copy_file(fd, offset, count)
            return
        self._send_file(fd, offset, count, may_hand_over=True)

    def _send_file(self, fd: int, offset: int, count: int, may_hand_over: bool = False) -> None:
        """Send `count` bytes of `fd` with `sendfile`, waiting as a blocked write does."""
        out = self.sock.fileno()
        while count > 0:
            try:
                sent = os.sendfile(out, fd, offset, min(count, _SENDFILE_BLOCK))
            except (BlockingIOError, InterruptedError):
                if may_hand_over and self.options.write_completion_limit > 0:
                    self.tail_file = (os.dup(fd), offset, count)  # the master may finish it
                    return
                timeout = self._wait_time("w")
                if not poll([], [self.sock], timeout):
                    raise TimeoutError(
                        f"the client took no response data for {timeout} s") from None
                continue
            if sent == 0:
                raise OSError(f"the file ended {count} bytes early")
            offset += sent
            count -= sent
            self.moved += sent

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
        data = self.sock.read_call(self._wait_readable, maxlen, terminator)
        self.moved += len(data)
        return data

    def _wait_readable(self, sock: BufferedSocket, mode: str) -> None:
        self.wait_readable()

    def wait_readable(self) -> None:
        """Wait until input (or EOF) arrives, at most `stall_timeout` (and the minimum rate).

        Raises:
            ClientError: 408 when the client sent nothing for `stall_timeout`,
                or is below `minimum_rate`.
        """
        try:
            timeout = self._wait_time("r")
        except TimeoutError as error:
            raise ClientError(408, str(error)) from None
        if not wait_ready(self.sock, "r", timeout):
            raise ClientError(408, f"the client sent nothing for {timeout} s")

    def read_nb(self, maxlen: int, terminator: bytes | None = None) -> bytes | None:
        """Read what has arrived, up to the limits; `None` if nothing has."""
        data = self.sock.read_nb(maxlen, terminator)
        if data:
            self.moved += len(data)
        return data

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
            self.drop_tail()
            return
        options = self.options
        try:
            if self.hand_over_tail(keep_alive=False):
                return
            sock.flush_nb()
            if sock.queued and not sock.tls and options.write_completion_limit > 0:
                self._start_spill()  # the client is slow: the master finishes for us
                if self.hand_over_tail(keep_alive=False):
                    return
            self.spilled = -1
            sock.flush_call(self._wait_writable)
            if linger(sock, options.drain_timeout, LINGER_BYTES):
                return
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
            self.drop_tail()
            sock.reset()
