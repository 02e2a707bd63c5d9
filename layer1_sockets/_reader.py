"""The read side of a buffered socket: one loop behind every read and drain call.

`Reader.collect` is the whole algorithm, shared by `read`, `read_nb`,
`drain`, `drain_nb`, `read_call` and `drain_call`:

1. If the buffer holds a complete result (the terminator within `maxlen`,
   or `maxlen` bytes), or EOF was seen, the result is ready.
2. Otherwise receive once from the transport and go back to 1.
3. If receiving would block, a non-blocking call returns what it has
   (`None` when it has nothing); a blocking call waits and goes back to 2.

`Reader.read_now`, behind `read_nb`, takes one shortcut first: with nothing
buffered and no terminator, the bytes of one short receive are the result
as they are (they never enter the buffer).

Draining is the same loop, except that bytes which cannot be part of the
result's end are dropped at once, so draining gigabytes keeps memory flat.

Invariants:

* The first receive error is kept and raised by every later read (sticky).
* ``starved`` is set while a partial result sits in the buffer waiting for
  more input; `poll` does not count such a buffer as readable (it would
  wake up at once, again and again, for bytes that do not help).
* A non-blocking call gathers at most ``_GATHER_LIMIT`` bytes, so a fast
  peer cannot keep it busy (or growing) without end.
* A non-blocking call stops after a short receive from a plain socket
  (fewer bytes than asked for: the kernel had no more at that moment)
  instead of asking again only to hear "would block". That saves one
  system call per request on a keep-alive connection; bytes that arrive
  just after are read by the next call, as they would be anyway.
"""

from __future__ import annotations

from collections.abc import Callable

from ._buffers import InputBuffer
from ._tls import TLSTransport
from ._transport import PlainTransport

__all__ = ["Reader", "terminator_byte"]

_RECV_SIZE = 64 * 1024  # bytes asked of the kernel at once
_GATHER_LIMIT = 1 << 20  # a non-blocking read returns after gathering this much


def terminator_byte(maxlen: int | None, terminator: bytes | None) -> int | None:
    """Check the read arguments; return the terminator as an int (or `None`).

    Raises:
        ValueError: `maxlen` is not a positive int or `None`, or `terminator`
            is not a single byte.
    """
    if maxlen is not None and (not isinstance(maxlen, int) or maxlen < 1):
        raise ValueError(f"maxlen must be a positive int or None, not {maxlen!r}")
    if terminator is None:
        return None
    if not isinstance(terminator, bytes | bytearray) or len(terminator) != 1:
        raise ValueError(f"terminator must be a single byte such as b'\\n', not {terminator!r}")
    return terminator[0]


class Reader:
    """Input buffer, EOF and error state of one connection."""

    __slots__ = ("buffer", "eof", "error", "starved", "transport")

    def __init__(self, transport: PlainTransport | TLSTransport) -> None:
        self.transport = transport
        self.buffer = InputBuffer()
        self.eof = False
        self.starved = False
        self.error: OSError | None = None

    # --8<-- [start:ready]
    def ready(self) -> bool:
        """Would a read return now without asking the kernel?"""
        fresh = len(self.buffer) > 0 and not self.starved
        return fresh or self.eof or self.error is not None or self.transport.pending() > 0
    # --8<-- [end:ready]

    # --8<-- [start:collect]
    def collect(self, wait: Callable[[], object] | None, maxlen: int | None,
                terminator: int | None, discard: bool) -> int | None:
        """Gather one result.

        Returns:
            The result's length (it stays at the head of the buffer) or,
            when discarding, the number of bytes dropped. `None` when there
            is nothing and `wait` is `None`.
        """
        if self.error is not None:
            raise self.error
        dropped = gathered = 0
        drained = False  # the last receive was short: the kernel had nothing more
        while True:
            limit = None if maxlen is None else maxlen - dropped
            count = self.buffer.complete(limit, terminator)
            if count is not None or self.eof:
                count = len(self.buffer) if count is None else count
                return dropped + self.buffer.drop(count) if discard else count
            if discard:
                dropped += self.buffer.drop(len(self.buffer))
            can_receive = wait is not None or (gathered < _GATHER_LIMIT and not drained)
            received = self.fill() if can_receive else None
            if received is not None:
                gathered += received
                drained = received < _RECV_SIZE and self.transport.short_recv_drains
                continue
            self.starved = True
            if wait is None:
                return (dropped if discard else len(self.buffer)) or None
            wait()
    # --8<-- [end:collect]

    # --8<-- [start:read-now]
    def read_now(self, maxlen: int | None, terminator: int | None) -> bytes | None:
        """The result of a non-blocking read: bytes, `b""` at EOF, `None` if nothing came.

        Fast path: with nothing buffered and no terminator to look for, one
        short receive from a plain socket is the whole answer (see
        `collect`), so it is returned as the kernel gave it, without the
        trip into the buffer and out again. Anything else is buffered and
        `collect` goes on from there.
        """
        if terminator is None and not len(self.buffer) and not self.eof:
            if self.error is not None:
                raise self.error
            data = self._receive()
            if data is None:
                self.starved = True
                return None
            size = len(data)
            if not size:
                self.eof = True
                return b""
            if ((maxlen is None or size <= maxlen) and size < _RECV_SIZE
                    and self.transport.short_recv_drains):
                return data
            self.absorb(data)
        count = self.collect(None, maxlen, terminator, discard=False)
        return None if count is None else self.take(count)
    # --8<-- [end:read-now]

    # --8<-- [start:fill]
    def fill(self) -> int | None:
        """Receive once into the buffer; bytes received, 0 at EOF, `None`: would block."""
        data = self._receive()
        if data is None:
            return None
        if not data:
            self.eof = True
            return 0
        self.absorb(data)
        return len(data)

    def _receive(self) -> bytes | None:
        """Receive once from the transport; a failure is kept (sticky) and raised."""
        try:
            return self.transport.recv(_RECV_SIZE)
        except OSError as error:
            self.error = error
            raise

    def absorb(self, data: bytes, eof: bool = False) -> None:
        """Add input that arrived (also from outside `fill`, such as TLS leftovers)."""
        if data:
            self.buffer.append(data)
            self.starved = False
        self.eof = self.eof or eof
    # --8<-- [end:fill]

    def unread(self, data: bytes) -> None:
        """Push `data` back to the front of the buffer; it is fresh input for `poll`."""
        if data:
            self.buffer.unread(data)
            self.starved = False

    def take(self, count: int) -> bytes:
        """Remove and return the first `count` buffered bytes."""
        return self.buffer.take(count)
