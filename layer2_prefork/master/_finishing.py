"""What the master finishes for a worker: the rest of a response, and the lingering close.

Two waits on a client do not need a worker process at all, and a worker
hands both to the master so that it is free for the next request at once:

* **the lingering close** (`L`). After the last response on a connection,
  the server half-closes it and must keep reading (and discarding) until
  the client closes too, or a reset could destroy the response in the
  client's buffers (RFC 9112 §9.6). On a real network that is a round trip
  or more per connection; a client that never closes would hold a worker
  until `drain_timeout`. The master drains it instead, into one scratch
  buffer, until the end of stream, the byte limit or the deadline;
* **write completion** (`S`). A response whose rest is in a file (a
  static file, or a memory file holding what a handler wrote) but that the
  client takes slowly: the master sends it with `os.sendfile` as the
  socket takes it, within a stall limit per wait, then parks the connection
  (keep-alive) or lingers and closes it.

This is the "lingering close" and "write completion" of Apache's event
MPM, done by our single-threaded master. Nothing here blocks, and the
deadlines sit in a heap.

Invariants: each connection is in exactly one place (here, held, or
closed); what is read is never kept (constant memory per connection: the
scratch buffer is shared); every entry has a deadline unless its caller
said "no limit".
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import os
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from .._protocol import AFTER_PARK, NO_LIMIT

SEND_BLOCK = 1 << 20
"""The most bytes one `sendfile` call sends (the loop's other work goes on)."""

_scratch = bytearray(65536)


@dataclass(slots=True, eq=False)
class Lingering:
    """A half-closed connection drained until the client's end."""

    sock: socket.socket
    deadline: float
    left: int
    """Bytes it may still discard before it is closed anyway."""


@dataclass(slots=True, eq=False)
class Sending:
    """A connection with the rest of a response to send from a file."""

    sock: socket.socket
    source: int
    offset: int
    count: int
    stall: float | None
    deadline: float
    then_park: bool
    linger: float | None
    linger_bytes: int
    park: Callable[[socket.socket], None]


Entry = Lingering | Sending


class _Read(Enum):
    """How a read of what a client sends ended (`_read_away`)."""

    WAIT = "nothing more has arrived"
    END = "end of stream"
    FAILED = "the connection failed"
    OVER = "past the byte budget"


def _read_away(sock: socket.socket, budget: int) -> tuple[_Read, int]:
    """Read and discard what has arrived, into the one scratch buffer; return how, and the
    bytes of `budget` left."""
    while True:
        try:
            count = sock.recv_into(_scratch)
        except (BlockingIOError, InterruptedError):
            return _Read.WAIT, budget
        except OSError:
            return _Read.FAILED, budget
        if count == 0:
            return _Read.END, budget
        budget -= count
        if budget < 0:
            return _Read.OVER, budget


def _seconds(milliseconds: int) -> float | None:
    return None if milliseconds == NO_LIMIT else milliseconds / 1000


class Finishing:
    """Every connection the master finishes, with their deadlines.

    Args:
        selector: The master's selector.
        capacity: The most connections to take (descriptors are finite); past
            it a lingering connection is closed at once.
    """

    def __init__(self, selector: selectors.BaseSelector, capacity: int) -> None:
        self.selector = selector
        self.capacity = capacity
        self.entries: dict[int, Entry] = {}
        self.deadlines: list[tuple[float, int, Entry]] = []
        self.order = itertools.count()
        self.sending = 0
        """How many of the entries are write completions (the rest linger)."""

    def __len__(self) -> int:
        return len(self.entries)

    # --- lingering close -----------------------------------------------

    def linger(self, sock: socket.socket, seconds: float | None, limit: int,
               now: float) -> None:
        """Drain a half-closed connection until the client closes, then close it."""
        deadline = math.inf if seconds is None else now + seconds
        if len(self.entries) >= self.capacity or deadline <= now:
            sock.close()
            return
        entry = Lingering(sock, deadline, limit)
        with contextlib.suppress(OSError):
            sock.setblocking(False)
        if self._drain(entry):
            self._watch(entry, selectors.EVENT_READ)

    # --8<-- [start:drain]
    def _drain(self, entry: Lingering) -> bool:
        """Discard what arrived; close at the end or past the limit; True: watch on."""
        outcome, entry.left = _read_away(entry.sock, entry.left)
        if outcome is _Read.WAIT:
            return True
        self._close(entry)
        return False
    # --8<-- [end:drain]

    # --- write completion ----------------------------------------------

    def send(self, sock: socket.socket, source: int, fields: tuple[int, ...], now: float,
             park: Callable[[socket.socket], None]) -> None:
        """Send `count` bytes of `source` from `offset`, then park or linger and close.

        Args:
            sock: The connection.
            source: A file descriptor (a file, or a memory file); closed when done.
            fields: `offset, count, stall, linger, linger_bytes, after` as in
                `_protocol.SEND` (times in milliseconds).
            now: The time.
            park: Called with the connection when it is to be held for its
                next request.
        """
        offset, count, stall, linger, linger_bytes, after = fields
        entry = Sending(sock, source, offset, count, _seconds(stall), math.inf,
                        after == AFTER_PARK, _seconds(linger), linger_bytes, park)
        with contextlib.suppress(OSError):
            sock.setblocking(False)
        self._restart_stall(entry, now)
        if self._push(entry, now):
            # a connection that closes afterwards is read too (and what comes discarded),
            # so a client that sends before it reads cannot make both sides wait
            reading = 0 if entry.then_park else selectors.EVENT_READ
            self._watch(entry, selectors.EVENT_WRITE | reading)

    def _restart_stall(self, entry: Sending, now: float) -> None:
        entry.deadline = math.inf if entry.stall is None else now + entry.stall

    def _push(self, entry: Sending, now: float) -> bool:
        """Send what the socket takes; when done, hand on; True: watch on."""
        sent_any = False
        while entry.count > 0:
            try:
                sent = os.sendfile(entry.sock.fileno(), entry.source, entry.offset,
                                   min(entry.count, SEND_BLOCK))
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                sent = 0
            if sent == 0:  # the client is gone, or the file ended early
                self._close(entry)
                return False
            entry.offset += sent
            entry.count -= sent
            sent_any = True
        if entry.count > 0:
            if sent_any:
                self._restart_stall(entry, now)
            return True
        self._forget(entry)
        os.close(entry.source)
        entry.source = -1
        if entry.then_park:
            entry.park(entry.sock)
            return False
        try:
            entry.sock.shutdown(socket.SHUT_WR)
        except OSError:
            entry.sock.close()
            return False
        self.linger(entry.sock, entry.linger, entry.linger_bytes, now)
        return False

    def _discard(self, entry: Sending) -> bool:
        """Discard what a client that is to be closed sends meanwhile; False: it is closed."""
        outcome, entry.linger_bytes = _read_away(entry.sock, entry.linger_bytes)
        if outcome is _Read.END:  # it half-closed: stop reading, go on sending
            with contextlib.suppress(KeyError, ValueError):
                self.selector.modify(entry.sock, selectors.EVENT_WRITE,
                                     lambda: self._ready(entry))
        elif outcome is not _Read.WAIT:
            self._close(entry)
            return False
        return True

    # --- bookkeeping ---------------------------------------------------

    def _watch(self, entry: Entry, events: int) -> None:
        self.entries[entry.sock.fileno()] = entry
        self.sending += isinstance(entry, Sending)
        self.selector.register(entry.sock, events, lambda: self._ready(entry))
        if not math.isinf(entry.deadline):
            heapq.heappush(self.deadlines, (entry.deadline, next(self.order), entry))

    def _ready(self, entry: Entry) -> None:
        if self.entries.get(entry.sock.fileno()) is not entry:
            return
        if isinstance(entry, Lingering):
            self._drain(entry)
            return
        before = entry.deadline
        if not entry.then_park and not self._discard(entry):
            return
        self._push(entry, time.monotonic())
        if self.entries.get(entry.sock.fileno()) is entry and entry.deadline != before \
                and not math.isinf(entry.deadline):
            heapq.heappush(self.deadlines, (entry.deadline, next(self.order), entry))

    def _forget(self, entry: Entry) -> None:
        if self.entries.get(entry.sock.fileno()) is entry:
            del self.entries[entry.sock.fileno()]
            self.sending -= isinstance(entry, Sending)
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(entry.sock)

    def _close(self, entry: Entry) -> None:
        self._forget(entry)
        if isinstance(entry, Sending) and entry.source >= 0:
            os.close(entry.source)
            entry.source = -1
        entry.sock.close()

    def expire(self, now: float) -> None:
        """Close every connection whose deadline has passed."""
        while self.deadlines and self.deadlines[0][0] <= now:
            deadline, _, entry = heapq.heappop(self.deadlines)
            if self.entries.get(entry.sock.fileno()) is entry and entry.deadline == deadline:
                self._close(entry)

    def next_deadline(self) -> float:
        """The earliest deadline (`inf`: none)."""
        while self.deadlines:
            deadline, _, entry = self.deadlines[0]
            if self.entries.get(entry.sock.fileno()) is entry and entry.deadline == deadline:
                return deadline
            heapq.heappop(self.deadlines)
        return math.inf

    def close_all(self) -> None:
        """Close everything (a fast stop, or the end of the master)."""
        for entry in list(self.entries.values()):
            self._close(entry)
        self.deadlines.clear()

    def close_in_child(self) -> None:
        """In a new worker: close the master's copies."""
        for entry in self.entries.values():
            entry.sock.close()
            if isinstance(entry, Sending) and entry.source >= 0:
                os.close(entry.source)
