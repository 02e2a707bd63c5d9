"""One pool as the master runs it: its sockets, bookkeeping and held connections.

`PoolRuntime` joins the pieces of a pool the master loop needs:

* the `PoolSpec` (what was declared),
* the bound listening sockets (one slot per listener, `None` for timers),
* the `PoolState` (who is idle, when to fork),
* the `Schedule` of its timer listeners,
* per listener, an accept `Backoff`,
* connections that wait for a worker: accepted during a graceful stop, or
  held by the master (`_holding`) until their request arrived,
* the busy workers already told that connections wait (`W`).

Its methods do the pool-local socket work: say which listeners to poll,
take the backlogs when a graceful stop begins, close everything at the end.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from . import _accept
from ._config import Interval, Main, PoolSpec
from ._logging import logger
from ._pool import Counts, PoolState
from ._schedule import Schedule
from ._sockets import Bound


@dataclass(slots=True)
class PoolRuntime:
    """A pool's declared spec together with its live state in the master."""

    spec: PoolSpec
    bound: Sequence[Bound | None]
    state: PoolState
    schedule: Schedule
    backoff: dict[int, _accept.Backoff] = field(default_factory=dict)
    pending: deque[tuple[int, socket.socket, bytes]] = field(default_factory=deque)
    """(listener index, connection, bytes read of it) waiting for an idle worker."""
    told: set[int] = field(default_factory=set)
    """Busy workers sent `W` since they last got work."""
    logged: Counts | None = None
    """The counts last written by `--stats`."""

    @property
    def index(self) -> int:
        """The pool's number in the log."""
        return self.spec.index

    def sockets_to_poll(self, now: float, can_hold: bool) -> list[int]:
        """Indexes of the listening sockets to poll now.

        Without a dispatch filter, only while a worker is idle (connections
        wait in the kernel's backlog, not in the master); with one, while the
        master can hold more connections.
        """
        if not (can_hold if self.spec.dispatch_filter else self.state.next_idle() is not None):
            return []
        return [index for index, bound in enumerate(self.bound)
                if bound is not None and not self._paused(index, now)]

    def _paused(self, index: int, now: float) -> bool:
        backoff = self.backoff.get(index)
        return backoff is not None and backoff.paused(now)

    def pause_ends(self, now: float) -> list[float]:
        """When paused listeners come back (without a filter, only while a worker is idle)."""
        if self.spec.dispatch_filter is None and self.state.next_idle() is None:
            return []
        return [backoff.until for backoff in self.backoff.values() if backoff.until > now]

    def accept_failed(self, index: int, error: OSError, now: float) -> None:
        """Log an accept error; pause the listener unless the error is transient."""
        if error.errno in _accept.TRANSIENT:
            logger.info("pool %d: accept on listener %d: %s", self.index, index, error)
            return
        pause = self.backoff.setdefault(index, _accept.Backoff()).failed(now)
        logger.warning("pool %d: accept on listener %d failed: %s; pausing it for %g s",
                       self.index, index, error, pause)

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

    def close_listeners(self, keep_pending: bool = False) -> None:
        """Close the listeners (removing socket files) and, unless kept, held connections."""
        for bound in self.bound:
            if bound is not None:
                bound.close()
        while self.pending and not keep_pending:
            self.pending.popleft()[1].close()
        self.told.clear()

    def close_in_child(self) -> None:
        """In a new worker: close this pool's listeners and held connections (files stay)."""
        for bound in self.bound:
            if bound is not None:
                bound.sock.close()
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
        """Log the worker counts if they changed since the last line (or if forced)."""
        counts = self.state.counts()
        if force or counts != self.logged:
            self.logged = counts
            logger.info("pool %d: stats total=%d idle=%d busy=%d starting=%d stopping=%d",
                        self.index, counts.total, counts.idle, counts.busy, counts.starting,
                        counts.stopping)

    def job_ended(self, job: int, now: float) -> None:
        """A worker finished (or died during) the work of listener `job`."""
        if job in self.schedule:
            self.schedule.completed(job, now)
            listener = self.spec.listeners[job]
            if isinstance(listener, Main):
                logger.info("pool %d: main %r done", self.index, listener.name)
