"""The master loop: one thread, one poll, no application code, no wait on a worker.

The master forks workers, keeps every pool at its configured size, and
takes every wait on the network off the workers' hands. Idle workers
accept new connections themselves (see `layer2_prefork.worker`); the master gets only
what must wait: new connections whose request has not fully arrived
(`H`), parked keep-alive connections (`P`), lingering closes (`L`) and
the rest of slow responses (`S`). It is written as a list, in the manner
of gunicorn's arbiter::

    loop until stopped and every worker is reaped:
        handle signals        SIGTERM: graceful stop; SIGINT/SIGHUP: fast stop;
                              SIGUSR1: reopen log files, log statistics;
                              SIGUSR2: reload (see `_reload`);
                              SIGURG: upgrade (a new master, see `_upgrade`)
        reap workers          waitpid(pid, WNOHANG) for each worker
        read the scoreboard   each worker's state, from shared memory; kill a
                              worker found stopped (SIGSTOP) twice
        check timers          graceful deadline, idle_timeout, exit_delay,
                              deadlines of held and finishing connections,
                              timer runs lost with their worker, retired
                              workers still busy at their deadline
        reload                one step of a reload under way: fork a trial
                              worker, or retire an old one once it is ready
        dispatch              queue due timers; queue held connections whose
                              request has arrived; W to busy workers while
                              work waits; stopping, once no connection is
                              held: T to every worker
        adjust pools          fork one worker where a pool is below target;
                              started by an upgrade, once every pool has an idle
                              worker: tell the old master
        log statistics        (with --stats) when a pool's counts changed
        compute next wake-up  the earliest timer of any pool, and the next
                              reading of the scoreboard (every 50 ms; 5 ms
                              while a pool has no idle worker)
        poll                  signal pipe, control and stderr sockets, held
                              and finishing connections (not the listeners)

The master is in one `Phase` at a time (running, reloading, stopping
gracefully, stopping fast); `Lifecycle` makes the transitions and
answers what each phase allows, so the loop asks "serving?" or "keeping
connections?" rather than comparing phases.

Signal handlers only record the signal (`SignalQueue`);
`signal.set_wakeup_fd` makes the poll return, and the loop acts on it at
the top. The table of worker processes (fork, reap, kill, their messages
and stderr, the scoreboard) is `Workers`; each pool's sockets, queue and
bookkeeping are a `PoolRuntime`; held connections are `Holding`, and the
lingering closes and slow responses `Finishing`. Work goes into the pool's
queue, where whichever worker is idle first takes it, so a worker that is
stopped or stuck never receives any. Everything a worker can do wrong
(crash, die by a signal, write garbage to its control socket, stop)
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

from .. import _logging
from .._config import PoolSpec
from .._errors import ExitCode
from .._logging import logger
from .._sockets import Bound
from . import _upgrade
from ._finishing import Finishing
from ._holding import Holding
from ._lifecycle import Lifecycle, Phase
from ._pool_runtime import PoolRuntime
from ._pool_state import PoolState
from ._reload import Outcome, Reload
from ._schedule import Schedule
from ._signals import SignalQueue
from ._table import Workers

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1,
                   signal.SIGUSR2, _upgrade.UPGRADE_SIGNAL)
SPARE_FDS = 128
"""Descriptors kept free of held connections (workers' sockets, logs, accept)."""
SCOREBOARD_TICK = 0.05
"""Seconds between two readings of the scoreboard while workers run (pool sizing, `W`)."""
BUSY_TICK = 0.005
"""The same while a pool has no idle worker (connections may wait in a backlog: `W`)."""
QUEUE_FULL_RETRY = 0.001
"""Seconds until the master tries again to queue work when a pool's queue was full."""


@dataclass(frozen=True, slots=True)
class Settings:
    """How `run()` runs the master loop (the command line fills these in)."""

    graceful_timeout: float = 30.0
    """Seconds a graceful stop waits for busy workers before it kills them."""
    stats: bool = False
    """Log a line of worker counts whenever a pool's counts change."""
    close_in_workers: tuple[int, ...] = ()
    """Descriptors of the master (a pidfile) that workers must not keep open."""
    pidfile: int | None = None
    """The pidfile's descriptor, which an upgrade passes on to the new master."""


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
        self.life = Lifecycle()
        self.reload: Reload | None = None
        """The reload under way (in the reloading phase)."""
        self.reloads = 0
        """How many reloads have begun."""
        self.reload_again = False
        """A SIGUSR2 came during a reload: another follows it."""
        self.selector = selectors.DefaultSelector()
        self.signals = SignalQueue(HANDLED_SIGNALS)
        capacity = max(raise_fd_limit() - SPARE_FDS, 16)
        self.holding = Holding(self.selector, capacity)
        self.finishing = Finishing(self.selector, capacity)
        self.workers = Workers(self.pools, self.selector, self._close_in_child, self)
        self.has_main = any(pool.schedule.has_main() for pool in self.pools)
        self.slice_ends = math.inf
        """When a busy worker is due to be told that connections wait (`W`)."""
        self.successor: _upgrade.Successor | None = None
        """The new master an upgrade is starting (see `_upgrade`)."""
        self.predecessor = _upgrade.Predecessor.from_environment()
        """The old master to tell once this one serves, if an upgrade started this one."""

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
        self.workers.sync()
        self.workers.kill_stopped(now)
        self._check_timers(now)
        self._step_reload(now)
        self._dispatch(now)
        self._adjust_pools(now)
        self._tell_predecessor()
        self._log_stats()
        self._publish()
        if not self._done():
            self._poll(self._next_wakeup(now))
    # --8<-- [end:step]

    def _done(self) -> bool:
        """Stopping, every held connection served or closed, and every worker reaped."""
        return (not self.life.serving and not self.workers and not self.holding
                and not self.finishing)

    def _handle_signals(self, now: float) -> None:
        while (number := self.signals.pop()) is not None:
            if number == signal.SIGTERM:
                self.workers.begin_stop(number)
                self._begin_graceful_stop(now, "SIGTERM")
            elif number in (signal.SIGINT, signal.SIGHUP):
                self.workers.begin_stop(number)
                self._begin_fast_stop(signal.Signals(number).name)
            elif number == signal.SIGCHLD:
                self.workers.maybe_exited = True
                if self.successor is not None:
                    self.successor.reap()
            elif number == _upgrade.UPGRADE_SIGNAL:
                self._begin_upgrade()
            elif number == signal.SIGUSR1:
                count = _logging.reopen()
                logger.info("SIGUSR1: %d log file(s) reopened", count)
                self._log_stats(force=True)
            elif number == signal.SIGUSR2:
                self._begin_reload(now)

    def _close_in_child(self, pool_index: int) -> None:
        """In a new worker of pool `pool_index`: drop everything that belongs to the master."""
        signal.set_wakeup_fd(-1)
        self.signals.close()
        self.selector.close()
        self.holding.close_in_child()
        self.finishing.close_in_child()
        for pool in self.pools:
            pool.close_in_child(own=pool.index == pool_index)
        self.workers.close_in_child()
        for end in (self.successor, self.predecessor):
            if end is not None:
                end.close()
        for fd in self.settings.close_in_workers:
            with contextlib.suppress(OSError):
                os.close(fd)

    # --- timers, dispatch, pool size -----------------------------------

    def _check_timers(self, now: float) -> None:
        if self.life.graceful and now >= self.life.deadline:
            self._begin_fast_stop("the graceful stop deadline passed", asked=False)
        self.holding.expire(now)
        self.finishing.expire(now)
        self.workers.kill_late(now)
        if not self.life.serving:
            return
        if self.has_main and all(pool.schedule.main_done() for pool in self.pools):
            self._begin_graceful_stop(now, "the main listener ended")
            return
        for pool in self.pools:
            pool.find_lost_runs(now)
            for pid, reason in pool.state.to_retire(now):
                self.workers.terminate(pool, pid, reason)

    # --8<-- [start:dispatch]
    def _dispatch(self, now: float) -> None:
        """Hand out work in four steps, pool by pool."""
        self.slice_ends = math.inf
        for pool in self.pools:
            self._queue_due_timers(pool, now)
            self._queue_pending(pool)
            self._tell_busy_workers(pool, now)
            self._dismiss_for_stop(pool)
    # --8<-- [end:dispatch]

    def _queue_due_timers(self, pool: PoolRuntime, now: float) -> None:
        """Put each due timer event into the pool's queue, if a worker is idle to take it."""
        if self.life.serving and pool.state.next_idle() is not None:
            for index in pool.schedule.due(now):
                if self.workers.hand_over(pool, index, None):
                    pool.schedule.started(index)

    def _queue_pending(self, pool: PoolRuntime) -> None:
        """Put the connections whose request has arrived into the queue, while it has room."""
        while pool.pending and self.workers.hand_over(pool, *pool.pending[0]):
            pool.pending.popleft()

    def _tell_busy_workers(self, pool: PoolRuntime, now: float) -> None:
        """While work waits and no worker is idle, tell the busy ones (`W`) to park."""
        if self.life.keeps_connections and (pool.waiting() or (
                self.life.serving and pool.backlog_waiting())):
            self.slice_ends = min(self.slice_ends, self.workers.tell_waiting(pool, now))

    def _dismiss_for_stop(self, pool: PoolRuntime) -> None:
        """Stopping gracefully, once no held connection needs a worker: `T` to every worker."""
        if self.life.graceful and not pool.waiting() and not self.holding:
            while (pid := pool.state.next_idle()) is not None:
                self.workers.terminate(pool, pid, "stopping")
            for busy in pool.state.busy():
                self.workers.finish_then_exit(pool, busy)

    def _adjust_pools(self, now: float) -> None:
        for pool in self.pools:
            if self.life.serving:
                if pool.state.fork_due(now):
                    self.workers.fork(pool, now)
            elif (self.life.graceful and pool.waiting()
                  and pool.state.counts().total == 0 and now >= pool.state.next_fork):
                self.workers.fork(pool, now)  # held connections need a worker

    def _publish(self) -> None:
        """Write how many connections the master holds, and why, into the scoreboard."""
        holding, finishing = self.holding, self.finishing
        self.workers.board.publish_held((
            len(holding) - holding.parked, holding.parked,
            sum(len(pool.pending) for pool in self.pools),
            len(finishing) - finishing.sending, finishing.sending))

    def _log_stats(self, force: bool = False) -> None:
        if force or self.settings.stats:
            for pool in self.pools:
                pool.log_stats(force)

    # --- waiting -----------------------------------------------------

    def _next_wakeup(self, now: float) -> float | None:
        deadlines = [self.life.deadline, self.holding.next_deadline(),
                     self.finishing.next_deadline(), self.slice_ends,
                     *self.workers.kill_at.values()]
        if self.reload is not None:
            deadlines.append(self.reload.next_deadline())
        if self.workers and self.life.keeps_connections:  # workers change state without a word
            saturated = any(pool.state.next_idle() is None and pool.state.busy()
                            for pool in self.pools)
            deadlines.append(now + (BUSY_TICK if saturated else SCOREBOARD_TICK))
            deadlines.append(self.workers.next_stop_check)
        for pool in self.pools:
            if pool.pending:
                deadlines.append(now + QUEUE_FULL_RETRY)
            if self.life.serving:
                deadlines.append(pool.state.next_deadline())
                if pool.state.next_idle() is not None:
                    deadlines.append(pool.schedule.next_deadline())
            elif self.life.graceful and pool.waiting():
                deadlines.append(pool.state.next_fork)
        earliest = min(deadlines)
        return None if math.isinf(earliest) else max(earliest - now, 0.0)

    def _poll(self, timeout: float | None) -> None:
        for key, _ in self.selector.select(timeout):
            handler: Callable[[], None] = key.data
            handler()

    # --- connections the workers hand over (`Taker`) -------------------

    def parked(self, pool: PoolRuntime, index: int, conn: socket.socket) -> None:
        """A worker handed a connection back (`P`): hold it until its next request."""
        if not self.life.keeps_connections or self._refused(pool, conn):
            conn.close()
        else:
            self.holding.add(conn, pool, index, parked=True, now=time.monotonic())

    def held(self, pool: PoolRuntime, index: int, conn: socket.socket, data: bytes) -> None:
        """A worker handed over a new connection whose request is incomplete (`H`)."""
        if not self.life.keeps_connections or self._refused(pool, conn):
            conn.close()
        else:
            self.holding.add(conn, pool, index, parked=False, now=time.monotonic(), data=data)

    def _refused(self, pool: PoolRuntime, conn: socket.socket) -> bool:
        """Whether the master holds all it can (descriptors are finite): then answer and close.

        The connection gets the filter's `overload_response` (layer 3: 503);
        `SPARE_FDS` descriptors stay free for the workers' sockets and logs.
        """
        if not self.holding.full():
            return False
        rules = pool.spec.dispatch_filter
        if rules is not None and rules.overload_response:
            with contextlib.suppress(OSError):
                conn.send(rules.overload_response, socket.MSG_DONTWAIT)
        logger.info("pool %d: the master holds %d connections, its most; one refused",
                    pool.index, len(self.holding))
        return True

    def lingering(self, conn: socket.socket, seconds: float | None, limit: int) -> None:
        """A worker handed over a half-closed connection (`L`): drain it, then close it."""
        if not self.life.keeps_connections:
            conn.close()
        else:
            self.finishing.linger(conn, seconds, limit, time.monotonic())

    def sending(self, pool: PoolRuntime, index: int, conn: socket.socket, source: int,
                fields: tuple[int, ...], early: bytes) -> None:
        """A worker handed over a connection with the rest of a response (`S`)."""
        if not self.life.keeps_connections:
            conn.close()
            os.close(source)
            return

        def park(sock: socket.socket) -> None:
            if not self.life.keeps_connections:
                sock.close()
            else:
                self.holding.add(sock, pool, index, parked=True, now=time.monotonic(), data=early)

        self.finishing.send(conn, source, fields, time.monotonic(), park)

    # --- reloading -----------------------------------------------------

    def _begin_reload(self, now: float) -> None:
        """SIGUSR2: start a reload (one under way: another follows it; stopping: ignored)."""
        if self.life.reloading:
            self.reload_again = True
            logger.info("SIGUSR2: a reload is under way; another follows it")
            return
        if not self.life.reload():
            logger.info("SIGUSR2 ignored: the server is %s", self.life.phase.value)
            return
        self.reloads += 1
        self.workers.trial_exits.clear()
        self.reload = Reload.begin(self.reloads, self.pools, self.settings.graceful_timeout, now)

    def _step_reload(self, now: float) -> None:
        """Move the reload under way on; when it ends, back to running (or the next reload)."""
        if self.reload is None:
            return
        outcome = self.reload.step(self.workers, now)
        if outcome is Outcome.GOING:
            return
        if outcome is Outcome.FAILED:
            logger.error("%s", self.reload.failure)
        self.reload = None
        self.life.reloaded()
        if self.reload_again:
            self.reload_again = False
            self._begin_reload(now)

    # --- upgrading (see `_upgrade`) -----------------------------------

    def _begin_upgrade(self) -> None:
        """Start a new master on the same listening sockets (`SIGURG`)."""
        name = _upgrade.UPGRADE_SIGNAL.name
        if self.life.phase is not Phase.RUNNING:
            logger.warning("%s: no upgrade, the server is %s", name, self.life.phase.value)
            return
        if self.successor is not None and self.successor.ready >= 0:
            logger.warning("%s: no upgrade, master %d is starting already", name,
                           self.successor.pid)
            return
        try:
            self.successor = _upgrade.Successor.start(self.pools, self.settings.pidfile)
        except OSError as error:
            logger.error("%s: cannot start a new master: %s", name, error)
            return
        self.selector.register(self.successor.ready, selectors.EVENT_READ, self._on_successor)
        logger.info("upgrade (%s): starting a new master, %d, on the same sockets", name,
                    self.successor.pid)

    def _on_successor(self) -> None:
        """The new master wrote to the pipe, or ended: stop, or go on serving."""
        successor = self.successor
        assert successor is not None
        pid = successor.read()
        if pid is None:
            return
        self.selector.unregister(successor.ready)
        successor.close()
        successor.ready = -1
        successor.reap()
        if not pid:
            logger.error("upgrade failed: the new master ended before it served; "
                         "this one goes on serving")
            _upgrade.reclaim_pidfile(self.settings.pidfile)
            return
        with contextlib.suppress(OSError):
            if _upgrade.notify(f"MAINPID={pid}"):
                logger.info("upgrade: told the service manager that the main PID is %d", pid)
        _upgrade.Successor.keep_listening(self.pools)
        self._begin_graceful_stop(time.monotonic(), f"upgraded: master {pid} serves")

    def _tell_predecessor(self) -> None:
        """Started by an upgrade: once every pool has an idle worker, tell the old master."""
        if self.predecessor is None or not self.life.serving:
            return
        if all(pool.state.next_idle() is not None for pool in self.pools):
            self.predecessor.announce()
            self.predecessor = None
            logger.info("upgrade: serving; the old master stops")

    # --- stopping ------------------------------------------------------

    def _begin_graceful_stop(self, now: float, reason: str) -> None:
        if not self.life.stop_gracefully(now + self.settings.graceful_timeout):
            return
        self.workers.begin_stop()
        self.reload, self.reload_again = None, False
        self.holding.stop_idle()
        for pool in self.pools:
            for index, conn in pool.take_backlogs():
                if pool.spec.dispatch_filter is None:
                    pool.pending.append((index, conn, b""))
                else:
                    self.holding.add(conn, pool, index, parked=False, now=now)
        logger.info("graceful stop (%s): listeners closed, waiting up to %g s for workers",
                    reason, self.settings.graceful_timeout)

    def _begin_fast_stop(self, reason: str, asked: bool = True) -> None:
        """Kill every worker; a WARNING unless the operator asked for it (`asked`)."""
        if not self.life.stop_fast():
            return
        self.workers.begin_stop()
        self.reload, self.reload_again = None, False
        self.holding.close_all()
        self.finishing.close_all()
        for pool in self.pools:
            pool.close_listeners()
        count = len(self.workers.by_pid)
        log = logger.info if asked else logger.warning
        log("fast stop (%s): listeners closed, killing %d worker%s", reason, count,
            "" if count == 1 else "s")
        self.workers.kill_all(reason)

    def _cleanup(self) -> None:
        self.holding.close_all()
        self.finishing.close_all()
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
