"""One pool as the master runs it: its sockets, bookkeeping and held connections.

`PoolRuntime` joins the pieces of a pool the master loop needs:

* the `PoolSpec` (what was declared),
* the bound listening sockets (one slot per listener, `None` for timers),
* the `PoolState` (who is idle, when to fork),
* the `Schedule` of its timer listeners,
* the pool's queue (`Queue`): connections the master held until their
  request arrived, and due timer events, wait there for whichever worker
  of the pool is idle first,
* connections that wait for room in the queue,
* the busy workers already told that connections wait (`W`).

Its methods do the pool-local socket work: say whether connections wait in
the listeners' backlogs, take the backlogs when a graceful stop begins,
close everything at the end.
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import termios
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Optional

from .. import _accept
from .._config import Interval, Main, PoolSpec
from .._logging import logger
from .._protocol import Kind, connect_payload, encode, pack_bytes
from .._sockets import Bound
from ._pool_state import Counts, PoolState
from ._schedule import Schedule

LOST_AFTER = 0.2
"""Seconds a handed-out timer run may be nowhere to be seen before it counts as lost."""
QUEUE_BUFFER = 4 << 20
"""The send buffer asked for the queue (the kernel caps it at its `wmem_max`)."""


@dataclass(slots=True)
class Queue:
    """A pool's queue of work: one `SOCK_SEQPACKET` pair, the master at one end.

    Every record is one `C` frame with its descriptors. All workers of the
    pool share the receiving end and poll it while idle; the kernel gives
    each record to exactly one of them, so work goes to whoever is free
    first, and a worker that is stopped or stuck never gets any. Both ends
    are non-blocking. The master keeps the receiving end open too, so that
    a worker forked later inherits it and nothing queued is lost while the
    pool has no worker.
    """

    send_end: socket.socket
    receive_end: socket.socket

    @classmethod
    def new(cls) -> Queue:
        """Make the socket pair."""
        send_end, receive_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        for sock in (send_end, receive_end):
            sock.setblocking(False)
        try:
            send_end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, QUEUE_BUFFER)
        except OSError:
            pass
        return cls(send_end, receive_end)

    def put(self, index: int, conn: socket.socket | None, data: bytes = b"") -> bool:
        """Queue work of listener `index`; `False` if the queue is full (nothing sent).

        Raises:
            OSError: If the queue failed otherwise.
        """
        payload, memfd = pack_bytes(data)
        fds = ([] if conn is None else [conn.fileno()]) + ([] if memfd is None else [memfd])
        frame = encode(Kind.CONNECT, connect_payload(index, payload), fds=len(fds))
        try:
            if fds:
                socket.send_fds(self.send_end, [frame], fds)
            else:
                self.send_end.send(frame)
        except BlockingIOError:
            return False
        finally:
            if memfd is not None:
                os.close(memfd)
        return True

    def holds_records(self) -> bool:
        """Whether a record waits in the queue (`FIONREAD` on the receiving end)."""
        try:
            waiting = fcntl.ioctl(self.receive_end, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return False
        return bool(struct.unpack("i", waiting)[0] > 0)

    def close(self) -> None:
        """Close both ends (what is still queued is closed by the kernel)."""
        self.send_end.close()
        self.receive_end.close()


@dataclass(slots=True)
class PoolRuntime:
    """A pool's declared spec together with its live state in the master."""

    spec: PoolSpec
    bound: Sequence[Bound | None]
    state: PoolState
    schedule: Schedule
    pending: deque[tuple[int, socket.socket, bytes]] = field(default_factory=deque)
    """(listener index, connection, bytes read of it) waiting for room in the queue."""
    queue: Queue = field(default_factory=Queue.new)
    busy_jobs: set[int] = field(default_factory=set)
    """The listeners whose work some worker runs now, as the scoreboard said last."""
    lost_since: dict[int, float] = field(default_factory=dict)
    """Timer runs handed out that no worker runs and the queue no longer holds, since when."""
    told: dict[int, float] = field(default_factory=dict)
    """Busy workers sent `W`, with the start of the work they were told during."""
    # Optional[...]: `select.poll` is a function at run time, and `function | None` raises.
    backlogs: Optional[select.poll] = None  # noqa: UP045
    logged: tuple[Counts, int] | None = None
    """The counts and the work taken, as last written by `--stats`."""
    served: int = 0
    """Pieces of work the live workers took so far (accepted or from the queue)."""

    @property
    def index(self) -> int:
        """The pool's number in the log."""
        return self.spec.index

    def listeners(self) -> list[tuple[int, socket.socket]]:
        """The listening sockets, with their indexes (what the pool's workers accept on).

        Closed ones (a stop began) are left out: a worker forked for held
        connections during a graceful stop has none to accept on.
        """
        return [(index, bound.sock) for index, bound in enumerate(self.bound)
                if bound is not None and bound.sock.fileno() >= 0]

    def backlog_waiting(self) -> bool:
        """Whether a connection waits in a listener's backlog (one `poll`, no wait)."""
        if self.backlogs is None:
            self.backlogs = select.poll()
            for _, sock in self.listeners():
                self.backlogs.register(sock, select.POLLIN)
        return bool(self.backlogs.poll(0))

    def take_backlogs(self) -> list[tuple[int, socket.socket]]:
        """Accept every connection queued in the backlogs, then close the listeners.

        Returns:
            (listener index, connection) for each, in the order they came.
        """
        taken: list[tuple[int, socket.socket]] = []
        for index, bound in enumerate(self.bound):
            if bound is not None:
                taken.extend((index, conn) for conn in _accept.drain_backlog(bound.sock))
        self.close_listeners(keep_pending=True)
        return taken

    def waiting(self) -> bool:
        """Whether work waits for a worker: in `pending`, or in the queue."""
        return bool(self.pending) or self.queue.holds_records()

    def find_lost_runs(self, now: float) -> None:
        """End timer runs that no worker runs and the queue no longer holds (for `LOST_AFTER` s).

        A worker that dies between taking a run from the queue and writing
        its slot leaves no trace of it; without this, the timer would count
        as running for ever.
        """
        if self.queue.holds_records():
            self.lost_since.clear()
            return
        for index in self.schedule.running_runs():
            if index in self.busy_jobs:
                self.lost_since.pop(index, None)
            elif now - self.lost_since.setdefault(index, now) >= LOST_AFTER:
                del self.lost_since[index]
                logger.warning("pool %d: a run of listener %d was lost with its worker; "
                               "it counts as ended", self.index, index)
                self.job_ended(index, now)

    def close_listeners(self, keep_pending: bool = False) -> None:
        """Close the listeners (removing socket files) and, unless kept, waiting work."""
        for bound in self.bound:
            if bound is not None:
                bound.close()
        self.backlogs = None
        while self.pending and not keep_pending:
            self.pending.popleft()[1].close()
        if not keep_pending:
            self.queue.close()
        self.told.clear()

    def close_in_child(self, own: bool) -> None:
        """In a new worker: close the master's part of this pool (files stay).

        A worker of this pool (`own`) keeps the listeners and the queue's
        receiving end: that is where its work comes from.
        """
        if not own:
            for bound in self.bound:
                if bound is not None:
                    bound.sock.close()
            self.queue.receive_end.close()
        self.queue.send_end.close()
        for _, conn, _ in self.pending:
            conn.close()

    def announce(self) -> None:
        """Log what the pool listens on."""
        for listener, bound in zip(self.spec.listeners, self.bound, strict=True):
            if bound is not None and isinstance(bound.address, tuple):
                host, port = bound.address
                logger.info("pool %d: listening on %s port %d", self.index, host, port)
            elif bound is not None:
                logger.info("pool %d: listening on %s", self.index, bound.address)
            elif isinstance(listener, Interval):
                logger.info("pool %d: interval %r every %g s%s", self.index, listener.name,
                            listener.delay, " (strict)" if listener.strict else "")
            elif isinstance(listener, Main):
                logger.info("pool %d: main %r", self.index, listener.name)

    def log_stats(self, force: bool) -> None:
        """Log the worker counts if they or the work taken changed since the last line.

        Workers take work without a word to the master (see `_scoreboard`),
        so a short piece of work may begin and end between two readings;
        `served` (work taken by the live workers) still shows it happened.
        """
        counts = self.state.counts()
        if force or (counts, self.served) != self.logged:
            self.logged = counts, self.served
            logger.info("pool %d: stats total=%d idle=%d busy=%d starting=%d stopping=%d"
                        " served=%d", self.index, counts.total, counts.idle, counts.busy,
                        counts.starting, counts.stopping, self.served)

    def job_ended(self, job: int, now: float) -> None:
        """A worker finished (or died during) the work of listener `job`."""
        if self.schedule.running(job):
            self.schedule.completed(job, now)
            listener = self.spec.listeners[job]
            if isinstance(listener, Main):
                logger.info("pool %d: main %r done", self.index, listener.name)
