"""The write side of a buffered socket: the output queue and when to send it.

`Writer.output` is behind every write and flush call. Data is queued first
(all arguments are checked before any is queued), then sent by one rule:

* a flush is owed (``flush*`` was called and not yet completed): send
  everything queued;
* otherwise send while at least one whole block (64 KiB) is queued, and
  keep the smaller tail for later, so small writes gather into large sends.

One shortcut: a flush of one small piece (less than a block) with nothing
queued is offered to the kernel straight from the caller's bytes, and only
what the kernel does not take is queued; the common small response thus
goes out in one ``send()`` without being copied into the queue first.

When the kernel takes nothing, a non-blocking call returns; a blocking one
waits and goes on. A flush that could not complete stays owed, and later
calls continue it.

Corking: on TCP the socket runs with ``TCP_NODELAY``, so whatever one
``send()`` hands over leaves at once, a small last segment included. When
a whole block or more goes out in several sends, the socket is corked
(``TCP_CORK``) for the length of that loop: the kernel then builds full
segments across send boundaries, and uncorking at the end sends the last
partial one at once. The socket is never left corked when a call returns
or waits: a corked socket whose peer offers a window smaller than one
segment (a slow reader; on loopback a segment is 64 KiB) would send
nothing until the kernel's persist timer fires, so a blocked writer
uncorks first and lets the kernel send what fits.

Invariant: the first send error is kept and raised by every later write
(sticky); after ``finish`` every write raises `SocketFinishedError`.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from ._buffers import OutputQueue, as_view
from ._errors import SocketFinishedError
from ._tls import TLSTransport
from ._transport import PlainTransport

__all__ = ["BLOCK", "Writer"]

BLOCK = 64 * 1024  # without a flush, less than this stays queued
_SEND_LIMIT = 1 << 20  # bytes offered to one send()
_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)


class Writer:
    """Output queue, flush and error state of one connection."""

    __slots__ = ("corked", "error", "finished", "flush_owed", "queue", "sock", "tcp",
                 "transport")

    def __init__(self, sock: socket.socket, transport: PlainTransport | TLSTransport) -> None:
        self.sock = sock
        self.transport = transport
        self.tcp = sock.family in (socket.AF_INET, socket.AF_INET6)
        self.queue = OutputQueue()
        self.flush_owed = self.corked = self.finished = False
        self.error: OSError | None = None

    def queued(self) -> int:
        """Bytes not yet taken by the kernel (plain text plus encrypted backlog)."""
        return len(self.queue) + self.transport.backlog

    def check(self) -> None:
        """Raise if writing is not possible now (finished, or a sticky error)."""
        if self.finished:
            raise SocketFinishedError("cannot write after finish()")
        if self.error is not None:
            raise self.error

    # --8<-- [start:output]
    def output(self, wait: Callable[[], object] | None, data: tuple[object, ...],
               flush: bool) -> int:
        """Queue `data`, send by the rule above; return the bytes still queued."""
        self.check()
        # `bytes`, the common case, are flat bytes already: no need for the checks of `as_view`.
        views = [memoryview(item) if type(item) is bytes else as_view(item) for item in data]
        if flush and len(views) == 1 and views[0].nbytes < BLOCK and not self.queued():
            views = self._send_direct(views[0])  # fast path: one small flush, nothing queued
            if not views and not self.transport.backlog:
                self.flush_owed = False
                return 0  # all sent: the flush is done
        for view in views:
            self.queue.append(view)
        if flush:
            self.flush_owed = True
        self.send(wait)
        return self.queued()

    def _send_direct(self, view: memoryview) -> list[memoryview]:
        """Offer `view` to the kernel straight from the caller's bytes; return what is left.

        The common small response: with nothing queued, one send from the
        caller's own buffer ends the flush, without copying the bytes into
        the queue and out again. Less than a block needs no cork (see
        `send`), so this is what `send` would do, minus the queue.
        """
        try:
            sent = self.transport.send(view)
        except OSError as error:
            self.error = error
            raise
        return [view[sent:]] if sent < view.nbytes else []
    # --8<-- [end:output]

    # --8<-- [start:send]
    def send(self, wait: Callable[[], object] | None) -> None:
        """Send while the rule says so, calling `wait` when blocked (return if `None`)."""
        try:
            while self.queued() > (0 if self.flush_owed else BLOCK - 1):
                if self.queued() >= BLOCK:
                    self.cork(True)
                if self.queue:
                    progress = self.queue.send_head(self.transport.send, _SEND_LIMIT) > 0
                else:
                    progress = self.transport.push()
                if not progress:
                    self.cork(False)  # never wait corked (see the module docstring)
                    if wait is None:
                        return
                    wait()
            self.flush_owed = False
        except OSError as error:
            self.error = error
            raise
        finally:
            self.cork(False)

    def continue_flush(self) -> None:
        """Continue an owed flush without blocking; a failure waits for the next write."""
        if self.flush_owed and self.error is None:
            try:
                self.send(None)
            except OSError:
                pass  # kept in self.error: the next write raises it

    def cork(self, on: bool) -> None:
        """Cork or uncork a TCP socket (nothing elsewhere)."""
        if self.corked != on and self.tcp and _TCP_CORK is not None:
            try:
                self.sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, int(on))
            except OSError:
                return
            self.corked = on
    # --8<-- [end:send]

    def drop(self) -> None:
        """Forget everything queued (the socket is being closed or reset)."""
        self.queue.clear()
        self.flush_owed = False
