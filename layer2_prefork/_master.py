"""The master loop: one thread, one poll, no application code.

The master forks workers, hands each connection and timer event to an idle
worker, and keeps every pool at its configured size. It is written as a
list, in the manner of gunicorn's arbiter:

    loop until stopped and every worker is reaped:
        handle signals        SIGTERM: graceful stop; SIGINT/SIGHUP: fast stop;
                              SIGUSR1: reopen log files, log statistics
        reap workers          waitpid(pid, WNOHANG) for each worker
        check timers          graceful deadline, idle_timeout, exit_delay,
                              deadlines of held connections
        dispatch              due timers and pending connections to idle
                              workers; W to busy workers while connections
                              wait; stopping, once no connection is held:
                              T to idle and to busy workers
        adjust pools          fork one worker where a pool is below target
        log statistics        (with --stats) when a pool's counts changed
        compute next wake-up  the earliest timer of any pool
        poll                  signal pipe, control and stderr sockets,
                              listeners, held connections

Signal handlers only record the signal (`SignalQueue`);
`signal.set_wakeup_fd` makes the poll return, and the loop acts on it at
the top. The table of worker processes (fork, reap, kill, their messages
and stderr) is `Workers`; each pool's sockets and bookkeeping are a
`PoolRuntime`. Without a dispatch filter a
listener is polled only while its pool has an idle worker, so connections
wait in the kernel's backlog, not in the master. With one (`DispatchFilter`)
the master accepts at once and holds each connection (`Holding`) until its
request has arrived; parked connections (`P`) are held the same way.
Connections go to the worker idle the longest, as `SCM_RIGHTS` ancillary
data of a `CONNECT` message with the bytes read so far; the master closes
its copy at once. Everything a worker can do wrong (crash,
die by a signal, write garbage to its control socket, never become idle)
ends that worker at most, never the master.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from . import _accept, _logging
from ._config import PoolSpec
from ._errors import ExitCode
from ._holding import Holding
from ._logging import logger
from ._pool import PoolState
from ._runtime import PoolRuntime
from ._schedule import Schedule
from ._signals import SignalQueue
from ._sockets import Bound
from ._workers import Workers

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1)
SPARE_FDS = 128
"""Descriptors kept free of held connections (workers' sockets, logs, accept)."""
ACCEPT_BURST = 64
"""The most connections a listener accepts per wake-up (the loop's other work goes on)."""


class Stop(Enum):
    """How far the master is in stopping."""

    RUNNING = "running"
    GRACEFUL = "graceful"
    FAST = "fast"


@dataclass(frozen=True, slots=True)
class Settings:
    """How `run()` runs the master loop (the command line fills these in)."""

    graceful_timeout: float = 30.0
    """Seconds a graceful stop waits for busy workers before it kills them."""
    stats: bool = False
    """Log a line of worker counts whenever a pool's counts change."""
    close_in_workers: tuple[int, ...] = ()
    """Descriptors of the master (a pidfile) that workers must not keep open."""


class Master:
    """The master process's loop over its pools.

    Args:
        pools: Each pool's spec and its bound sockets (one entry per listener,
            `None` for timers), in the order of the `listen()` calls.
        settings: How to run.
    """

    def __init__(self, pools: Sequence[tuple[PoolSpec, Sequence[Bound | None]]],
                 settings: Settings) -> None:
        now = time.monotonic()
        self.settings = settings
        self.pools = [PoolRuntime(spec, bound, PoolState(spec.options, now),
                                  Schedule(spec.listeners, now)) for spec, bound in pools]
        self.stop = Stop.RUNNING
        self.deadline = math.inf
        self.selector = selectors.DefaultSelector()
        self.signals = SignalQueue(HANDLED_SIGNALS)
        self.holding = Holding(self.selector, max(raise_fd_limit() - SPARE_FDS, 16))
        self.workers = Workers(self.pools, self.selector, self._close_in_child, self._on_park)
        self.has_main = any(pool.schedule.has_main() for pool in self.pools)
        self.polled: set[tuple[int, int]] = set()
        self.slice_ends = math.inf
        """When a busy worker is due to be told that connections wait (`W`)."""

    # --- the loop ------------------------------------------------------

    # --8<-- [start:run]
    def run(self) -> ExitCode:
        """Run until the server has stopped; return the exit code."""
        try:
            self.signals.install(self.selector)
            if threading.active_count() > 1:
                logger.warning("threads run in the master; forking with threads is unsafe")
            for pool in self.pools:
                pool.announce()
            while not self._done():
                self._step()
            logger.info("stopped")
            return ExitCode.STOP
        except Exception:
            logger.exception("the master loop failed; killing all workers")
            self.workers.kill_and_reap_all()
            return ExitCode.RUNTIME_ERROR
        finally:
            self._cleanup()
    # --8<-- [end:run]

    # --8<-- [start:step]
    def _step(self) -> None:
        now = time.monotonic()
        self._handle_signals(now)
        self.workers.reap(now)
        self._check_timers(now)
        self._dispatch(now)
        self._adjust_pools(now)
        self._log_stats()
        if not self._done():
            self._poll(now, self._next_wakeup(now))
    # --8<-- [end:step]

    def _done(self) -> bool:
        """Stopping, every held connection served or closed, and every worker reaped."""
        return self.stop is not Stop.RUNNING and not self.workers and not self.holding

    def _handle_signals(self, now: float) -> None:
        while (number := self.signals.pop()) is not None:
            if number == signal.SIGTERM:
                self._begin_graceful_stop(now, "SIGTERM")
            elif number in (signal.SIGINT, signal.SIGHUP):
                self._begin_fast_stop(signal.Signals(number).name)
            elif number == signal.SIGCHLD:
                self.workers.maybe_exited = True
            elif number == signal.SIGUSR1:
                count = _logging.reopen()
                logger.info("SIGUSR1: %d log file(s) reopened", count)
                self._log_stats(force=True)

    def _close_in_child(self) -> None:
        """In a new worker: drop everything that belongs to the master."""
        signal.set_wakeup_fd(-1)
        self.signals.close()
        self.selector.close()
        self.holding.close_in_child()
        for pool in self.pools:
            pool.close_in_child()
        self.workers.close_in_child()
        for fd in self.settings.close_in_workers:
            with contextlib.suppress(OSError):
                os.close(fd)

    # --- timers, dispatch, pool size -----------------------------------

    def _check_timers(self, now: float) -> None:
        if self.stop is Stop.GRACEFUL and now >= self.deadline:
            self._begin_fast_stop("the graceful stop deadline passed")
        self.holding.expire(now)
        if self.stop is not Stop.RUNNING:
            return
        if self.has_main and all(pool.schedule.main_done() for pool in self.pools):
            self._begin_graceful_stop(now, "the main listener ended")
            return
        for pool in self.pools:
            for pid, reason in pool.state.to_retire(now):
                self.workers.terminate(pool, pid, reason)

    def _dispatch(self, now: float) -> None:
        self.slice_ends = math.inf
        for pool in self.pools:
            if self.stop is Stop.RUNNING:
                for index in pool.schedule.due(now):
                    if self.workers.hand_over(pool, index, None):
                        pool.schedule.started(index)
            while pool.pending and pool.state.next_idle() is not None:
                index, conn, data = pool.pending.popleft()
                if not self.workers.hand_over(pool, index, conn, data):
                    pool.pending.appendleft((index, conn, data))
            if pool.pending and self.stop is not Stop.FAST:
                self.slice_ends = min(self.slice_ends, self.workers.tell_waiting(pool, now))
            if self.stop is Stop.GRACEFUL and not pool.pending and not self.holding:
                while (pid := pool.state.next_idle()) is not None:
                    self.workers.terminate(pool, pid, "stopping")
                for busy in pool.state.busy():  # once no held connection needs them
                    self.workers.finish_then_exit(pool, busy)

    def _adjust_pools(self, now: float) -> None:
        for pool in self.pools:
            if self.stop is Stop.RUNNING:
                if pool.state.fork_due(now):
                    self.workers.fork(pool, now)
            elif (self.stop is Stop.GRACEFUL and pool.pending
                  and pool.state.counts().total == 0 and now >= pool.state.next_fork):
                self.workers.fork(pool, now)  # held connections need a worker

    def _log_stats(self, force: bool = False) -> None:
        if force or self.settings.stats:
            for pool in self.pools:
                pool.log_stats(force)

    # --- waiting -----------------------------------------------------

    def _next_wakeup(self, now: float) -> float | None:
        deadlines = [self.deadline if self.stop is Stop.GRACEFUL else math.inf,
                     self.holding.next_deadline(), self.slice_ends]
        for pool in self.pools:
            if self.stop is Stop.RUNNING:
                deadlines.append(pool.state.next_deadline())
                if pool.state.next_idle() is not None:
                    deadlines.append(pool.schedule.next_deadline())
                deadlines.extend(pool.pause_ends(now))
            elif self.stop is Stop.GRACEFUL and pool.pending:
                deadlines.append(pool.state.next_fork)
        earliest = min(deadlines)
        return None if math.isinf(earliest) else max(earliest - now, 0.0)

    def _poll(self, now: float, timeout: float | None) -> None:
        wanted: set[tuple[int, int]] = set()
        if self.stop is Stop.RUNNING:
            can_hold = not self.holding.full()
            wanted = {(pool.index, index) for pool in self.pools
                      for index in pool.sockets_to_poll(now, can_hold)}
        for pool_index, index in self.polled - wanted:
            self._unregister(self._listener(pool_index, index))
        for pool_index, index in wanted - self.polled:
            pool = self.pools[pool_index]
            self.selector.register(self._listener(pool_index, index), selectors.EVENT_READ,
                                   lambda pool=pool, index=index: self._on_listener(pool, index))
        self.polled = wanted
        for key, _ in self.selector.select(timeout):
            handler: Callable[[], None] = key.data
            handler()

    def _listener(self, pool_index: int, index: int) -> socket.socket:
        bound = self.pools[pool_index].bound[index]
        assert bound is not None
        return bound.sock

    def _unregister(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)

    def _on_listener(self, pool: PoolRuntime, index: int) -> None:
        """Accept and hand each connection over while the pool has an idle worker.

        With a dispatch filter: accept a burst of connections and hold them
        (while the master can hold more).
        """
        sock = self._listener(pool.index, index)
        holds = pool.spec.dispatch_filter is not None
        for _ in range(ACCEPT_BURST):
            if self.stop is not Stop.RUNNING or (
                    self.holding.full() if holds else pool.state.next_idle() is None):
                return
            try:
                conn = _accept.accept(sock)
            except OSError as error:
                pool.accept_failed(index, error, time.monotonic())
                return
            if conn is None:
                return
            pool.backoff.pop(index, None)
            if holds:
                self.holding.add(conn, pool, index, parked=False, now=time.monotonic())
            elif not self.workers.hand_over(pool, index, conn):
                logger.error("pool %d: no worker took a connection; closing it", pool.index)
                conn.close()

    def _on_park(self, pool: PoolRuntime, index: int, conn: socket.socket) -> None:
        """A worker handed a connection back (`P`): hold it until its next request."""
        if self.stop is Stop.FAST:
            conn.close()
        else:
            self.holding.add(conn, pool, index, parked=True, now=time.monotonic())

    # --- stopping ------------------------------------------------------

    def _begin_graceful_stop(self, now: float, reason: str) -> None:
        if self.stop is not Stop.RUNNING:
            return
        self.stop = Stop.GRACEFUL
        self.deadline = now + self.settings.graceful_timeout
        self._unpoll_listeners()
        self.holding.stop_idle()
        for pool in self.pools:
            for index, conn in pool.take_backlogs():
                if pool.spec.dispatch_filter is None:
                    pool.pending.append((index, conn, b""))
                else:
                    self.holding.add(conn, pool, index, parked=False, now=now)
        logger.info("graceful stop (%s): listeners closed, waiting up to %g s for workers",
                    reason, self.settings.graceful_timeout)

    def _begin_fast_stop(self, reason: str) -> None:
        if self.stop is Stop.FAST:
            return
        self.stop = Stop.FAST
        self._unpoll_listeners()
        self.holding.close_all()
        for pool in self.pools:
            pool.close_listeners()
        logger.info("fast stop (%s): listeners closed, killing all workers", reason)
        self.workers.kill_all(reason)

    def _unpoll_listeners(self) -> None:
        for pool_index, index in self.polled:
            self._unregister(self._listener(pool_index, index))
        self.polled = set()

    def _cleanup(self) -> None:
        self._unpoll_listeners()
        self.holding.close_all()
        for pool in self.pools:
            pool.close_listeners()
        self.workers.close()
        self.signals.uninstall(ignore=(signal.SIGTERM, signal.SIGINT, signal.SIGHUP))
        self.selector.close()


def raise_fd_limit() -> int:
    """Raise this process's soft limit of open descriptors to the hard one; return it.

    Every held connection is a descriptor of the master, so the usual soft
    limit of 1024 would cap idle keep-alive clients far below what the
    master can watch (`selectors` has no limit of its own).
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    return soft if soft != resource.RLIM_INFINITY else 1 << 20
