"""The connections the master holds: watched until their request arrives, then queued.

Two kinds of connection wait in the master instead of in a worker:

* new connections whose request had not fully arrived when a worker
  accepted them (`H`, with the bytes the worker read), and, during a
  graceful stop, the connections the master takes from the backlogs;
* parked connections, handed back by a worker (`P`) between two
  requests of a keep-alive connection.

`Holding` registers each with the master's selector and reads what the
client sends into the connection's own buffer. When the pool's filter says
the bytes are complete (or they reach `max_bytes`, or the client half-closed
after sending something), the connection moves to its pool's `pending` list,
and the master loop puts it into the pool's queue together with the bytes
(`C`), for whichever worker is idle first. A connection that ends without a
byte, or stays silent past `idle_timeout`, is closed; one whose request does
not complete within `request_timeout` gets the filter's `timeout_response`,
then is closed. Deadlines sit in a heap, so a thousand idle connections cost
nothing per loop.

Memory is bounded twice: the bytes held in all (`byte_limit`) and the
bytes held for one client address (`peer_limit`; Unix socket peers, often
a proxy in front, share no address and are exempt). A connection whose
next bytes would pass either bound gets the filter's `overload_response`
(layer 3: 503) and is closed; new clients are still accepted and served.
Each read hands the filter only the offset of the new bytes, so a slow
head is scanned once, not once per byte.

During a graceful stop (`stop_idle`), parked connections that sent
nothing are closed at once, as a worker closes a keep-alive connection
waiting for its next request; new connections and requests under way are
still served (the graceful deadline bounds them).

Invariants: a held socket is in exactly one place (watched here, queued in
`pending`, or closed); the master's copy is its only descriptor, so
closing it ends the connection; nothing here blocks.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import selectors
import socket
import time
from dataclasses import dataclass, field

from .._config import ANY_BYTE, DispatchFilter
from .._logging import logger
from ._pool_runtime import PoolRuntime

READ_SIZE = 65536
BYTE_LIMIT = 256 << 20
"""The most bytes of requests the master holds in all (256 MiB)."""
PEER_LIMIT = 32 << 20
"""The most bytes of requests the master holds for one client address (32 MiB)."""


@dataclass(slots=True, eq=False)
class Held:
    """One connection the master watches."""

    sock: socket.socket
    pool: PoolRuntime
    listener: int
    parked: bool
    """Whether a worker handed it back (it has served a request), or it is new."""
    since: float
    """When it was accepted or parked."""
    data: bytearray = field(default_factory=bytearray)
    first_byte: float | None = None
    peer: str | None = None
    """The client's address (`None` for a Unix socket peer, which has no limit of its own)."""

    @property
    def filter(self) -> DispatchFilter:
        """The pool's dispatch filter (`ANY_BYTE` for a pool without one)."""
        return self.pool.spec.dispatch_filter or ANY_BYTE

    def deadline(self) -> float:
        """When the master gives up on it (`inf`: never)."""
        rules = self.filter
        if self.first_byte is None:
            limit, start = rules.idle_timeout, self.since
        else:
            limit, start = rules.request_timeout, self.first_byte
        return math.inf if limit is None else start + limit


class Holding:
    """Every connection the master holds, with their deadlines.

    Args:
        selector: The master's selector; held sockets are registered with a
            callable as their data.
        capacity: The most connections to hold at once (descriptors are finite).
    """

    def __init__(self, selector: selectors.BaseSelector, capacity: int,
                 byte_limit: int = BYTE_LIMIT, peer_limit: int = PEER_LIMIT) -> None:
        self.selector = selector
        self.capacity = capacity
        self.byte_limit = byte_limit
        self.peer_limit = peer_limit
        self.bytes_held = 0
        self.by_peer: dict[str, int] = {}
        self.watched: dict[int, Held] = {}
        self.deadlines: list[tuple[float, int, Held]] = []
        self.order = itertools.count()
        self.stopping = False
        self.parked = 0
        """How many of the watched connections are parked (the rest are new)."""

    def __len__(self) -> int:
        return len(self.watched)

    def full(self) -> bool:
        """Whether to stop accepting (the rest waits in the kernel's backlog)."""
        return len(self.watched) >= self.capacity

    def add(self, sock: socket.socket, pool: PoolRuntime, listener: int, parked: bool,
            now: float, data: bytes = b"") -> None:
        """Hold a new or parked connection: read what is there, then watch it.

        Args:
            sock: The connection.
            pool: Its pool.
            listener: The index of the listener it came from.
            parked: Whether a worker parked it (`P`); else it is new.
            now: The time.
            data: What a worker already read of it (`H`).
        """
        try:
            sock.setblocking(False)
        except OSError:
            sock.close()
            return
        held = Held(sock, pool, listener, parked, now, first_byte=now if data else None,
                    peer=_peer(sock))
        self.watched[sock.fileno()] = held
        self.parked += parked
        if data and not self._take(held, data):
            return
        if data and (len(data) >= held.filter.max_bytes or held.filter.arrived(data, 0)):
            self._queue(held)  # a pipelined request that came along whole
            return
        if self._read(held, now):
            if self.stopping and held.parked and not held.data:
                self._close(held, b"")
                return
            self.selector.register(sock, selectors.EVENT_READ, lambda: self._on_readable(held))
            self._push_deadline(held)

    def _on_readable(self, held: Held) -> None:
        if held.sock.fileno() in self.watched and self._read(held, time.monotonic()):
            self._push_deadline(held)

    def _read(self, held: Held, now: float) -> bool:
        """Read once; queue or close the connection when it is done; True: watch on."""
        rules = held.filter
        try:
            data = held.sock.recv(min(READ_SIZE, rules.max_bytes - len(held.data)))
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            data = b""  # reset by the client
        if not data:
            if held.data:
                self._queue(held)  # a half-closed client: the handler answers what came
            else:
                self._close(held, b"")
            return False
        if held.first_byte is None:
            held.first_byte = now
        start = len(held.data)
        if not self._take(held, data):
            return False
        if len(held.data) >= rules.max_bytes or rules.arrived(bytes(held.data), start):
            self._queue(held)
            return False
        return True

    def _take(self, held: Held, data: bytes) -> bool:
        """Add bytes to a held connection, within the memory bounds; False: it was closed."""
        size = len(data)
        peer_bytes = self.by_peer.get(held.peer, 0) if held.peer is not None else 0
        if self.bytes_held + size > self.byte_limit or peer_bytes + size > self.peer_limit:
            logger.info("pool %d: held requests fill the master's memory bound (%s); closing"
                        " a connection", held.pool.index,
                        "all clients" if self.bytes_held + size > self.byte_limit
                        else f"client {held.peer}")
            self._close(held, held.filter.overload_response)
            return False
        held.data += data
        self.bytes_held += size
        if held.peer is not None:
            self.by_peer[held.peer] = peer_bytes + size
        return True

    def _queue(self, held: Held) -> None:
        self._forget(held)
        held.pool.pending.append((held.listener, held.sock, bytes(held.data)))

    def _close(self, held: Held, response: bytes) -> None:
        self._forget(held)
        if response:
            with contextlib.suppress(OSError):
                held.sock.send(response)
        held.sock.close()

    def _forget(self, held: Held) -> None:
        if self.watched.get(held.sock.fileno()) is held:
            self.parked -= held.parked
        if self.watched.pop(held.sock.fileno(), None) is held and held.data:
            self.bytes_held -= len(held.data)
            if held.peer is not None:
                left = self.by_peer.pop(held.peer, 0) - len(held.data)
                if left > 0:
                    self.by_peer[held.peer] = left
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(held.sock)

    # --- deadlines -----------------------------------------------------

    def _push_deadline(self, held: Held) -> None:
        deadline = held.deadline()
        if not math.isinf(deadline):
            heapq.heappush(self.deadlines, (deadline, next(self.order), held))

    def expire(self, now: float) -> None:
        """Close every held connection whose deadline has passed."""
        while self.deadlines and self.deadlines[0][0] <= now:
            deadline, _, held = heapq.heappop(self.deadlines)
            if self.watched.get(held.sock.fileno()) is not held or held.deadline() != deadline:
                continue  # gone, or a newer deadline is in the heap
            if held.first_byte is None:
                self._close(held, b"")
            else:
                logger.info("pool %d: a held request did not complete within %g s; closed",
                            held.pool.index, held.filter.request_timeout)
                self._close(held, held.filter.timeout_response)

    def next_deadline(self) -> float:
        """The earliest deadline of a held connection (`inf`: none)."""
        while self.deadlines:
            deadline, _, held = self.deadlines[0]
            if self.watched.get(held.sock.fileno()) is held and held.deadline() == deadline:
                return deadline
            heapq.heappop(self.deadlines)
        return math.inf

    # --- stopping ------------------------------------------------------

    def stop_idle(self) -> None:
        """A graceful stop began: close parked connections that sent nothing."""
        self.stopping = True
        for held in list(self.watched.values()):
            if held.parked and not held.data:
                self._close(held, b"")

    def close_all(self) -> None:
        """Close every watched connection (a fast stop, or the end of the master)."""
        for held in list(self.watched.values()):
            self._close(held, b"")
        self.deadlines.clear()

    def close_in_child(self) -> None:
        """In a new worker: close the master's copies of the held connections."""
        for held in self.watched.values():
            held.sock.close()


def _peer(sock: socket.socket) -> str | None:
    """The client's IP address, or `None` for a Unix socket (or one already gone)."""
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    try:
        return str(sock.getpeername()[0])
    except OSError:
        return None
