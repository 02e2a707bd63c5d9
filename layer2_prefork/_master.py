"""The master loop: one thread, one poll, no application code.

The master forks workers, hands each connection and timer event to an idle
worker, and keeps every pool at its configured size. It is written as a
list, in the manner of gunicorn's arbiter::

    loop until stopped and every worker is reaped:
        handle signals        SIGTERM: graceful stop; SIGINT/SIGHUP: fast stop
        reap workers          waitpid(pid, WNOHANG) for each worker
        check timers          graceful deadline, idle_timeout, exit_delay
        dispatch              due timers and held connections to idle workers
        adjust pools          fork one worker where a pool is below target
        log statistics        (with --stats) when a pool's counts changed
        compute next wake-up  the earliest timer of any pool
        poll                  signal pipe, control and stderr sockets, listeners

Signal handlers only record the signal; ``signal.set_wakeup_fd`` makes the
poll return, and the loop acts on it at the top. A listener is polled only
while its pool has an idle worker, so connections wait in the kernel's
backlog, not in the master. Accepted sockets go to the worker idle the
longest, as ``SCM_RIGHTS`` ancillary data of a ``CONNECT`` message; the
master closes its copy at once. Everything a worker can do wrong (crash,
die by a signal, write garbage to its control socket, never become idle)
ends that worker at most, never the master.
"""

from __future__ import annotations

import contextlib
import math
import os
import selectors
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from . import _accept
from ._config import Main, PoolSpec
from ._errors import ExitCode, ProtocolError
from ._logging import logger, pid_prefix
from ._pool import PoolState
from ._protocol import Kind, Message, connect_payload
from ._runtime import PoolRuntime
from ._schedule import Schedule
from ._signals import SignalQueue
from ._sockets import Bound
from ._spawn import WorkerProcess, fork_worker

HANDLED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1)


class Stop(Enum):
    """How far the master is in stopping."""

    RUNNING = "running"
    GRACEFUL = "graceful"
    FAST = "fast"


@dataclass(frozen=True, slots=True)
class Settings:
    """How :func:`run` runs the master loop (the command line fills these in)."""

    graceful_timeout: float = 30.0
    """Seconds a graceful stop waits for busy workers before it kills them."""
    stats: bool = False
    """Log a line of worker counts whenever a pool's counts change."""
    close_in_workers: tuple[int, ...] = ()
    """Descriptors of the master (a pidfile) that workers must not keep open."""


def describe_exit(code: int) -> str:
    """Say how a worker ended, from ``os.waitstatus_to_exitcode``.

    Examples:
        >>> describe_exit(0), describe_exit(-9)
        ('exited with status 0', 'was killed by signal 9 (SIGKILL)')
    """
    if code >= 0:
        return f"exited with status {code}"
    return f"was killed by signal {-code} ({signal.Signals(-code).name})"


class Master:
    """The master process's loop over its pools.

    Args:
        pools: Each pool's spec and its bound sockets (one entry per listener,
            ``None`` for timers), in the order of the :func:`listen` calls.
        settings: How to run.
    """

    def __init__(self, pools: Sequence[tuple[PoolSpec, Sequence[Bound | None]]],
                 settings: Settings) -> None:
        now = time.monotonic()
        self.settings = settings
        self.pools = [PoolRuntime(spec, bound, PoolState(spec.options, now),
                                  Schedule(spec.listeners, now)) for spec, bound in pools]
        self.workers: dict[int, WorkerProcess] = {}
        self.stop = Stop.RUNNING
        self.deadline = math.inf
        self.child_exited = False
        self.selector = selectors.DefaultSelector()
        self.signals = SignalQueue(HANDLED_SIGNALS)
        self.polled: set[tuple[int, int]] = set()

    # --- the loop ------------------------------------------------------

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
            self._kill_and_reap_all()
            return ExitCode.RUNTIME_ERROR
        finally:
            self._cleanup()

    def _step(self) -> None:
        now = time.monotonic()
        self._handle_signals(now)
        self._reap_workers(now)
        self._check_timers(now)
        self._dispatch(now)
        self._adjust_pools(now)
        self._log_stats()
        if not self._done():
            self._poll(now, self._next_wakeup(now))

    def _done(self) -> bool:
        """Stopping, and every worker reaped."""
        return self.stop is not Stop.RUNNING and not self.workers

    def _handle_signals(self, now: float) -> None:
        while (number := self.signals.pop()) is not None:
            if number == signal.SIGTERM:
                self._begin_graceful_stop(now, "SIGTERM")
            elif number in (signal.SIGINT, signal.SIGHUP):
                self._begin_fast_stop(signal.Signals(number).name)
            elif number == signal.SIGCHLD:
                self.child_exited = True
            elif number == signal.SIGUSR1:
                self._log_stats(force=True)

    # --- workers come and go -------------------------------------------

    def _reap_workers(self, now: float) -> None:
        if not self.child_exited:
            return
        self.child_exited = False
        for worker in list(self.workers.values()):
            try:
                pid, status = os.waitpid(worker.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = worker.pid, 255 << 8
            if pid:
                self._worker_exited(worker, os.waitstatus_to_exitcode(status), now)

    def _worker_exited(self, worker: WorkerProcess, code: int, now: float) -> None:
        while self._on_stderr(worker):
            pass  # its last words (a traceback) go to the log before its exit line
        for line in worker.lines.flush():
            logger.warning("%s: %s", pid_prefix(worker.pool, worker.pid), line)
        self._unregister(worker.stderr)
        self._unregister(worker.control)
        worker.close()
        del self.workers[worker.pid]
        pool = self.pools[worker.pool]
        job, prepare_failed = pool.state.exited(worker.pid, code, now)
        log = logger.info if code == 0 else logger.warning
        log("pool %d: worker %d %s", worker.pool, worker.pid, describe_exit(code))
        if prepare_failed and self.stop is Stop.RUNNING:
            logger.warning("pool %d: worker %d failed to prepare; forking at most one worker"
                           " per fork_error_delay (%g s)", worker.pool, worker.pid,
                           pool.spec.options.fork_error_delay)
        if job is not None:
            self._job_ended(pool, job, now)

    def _fork(self, pool: PoolRuntime, now: float) -> None:
        try:
            worker = fork_worker(pool.spec, self._close_in_child)
        except OSError as error:
            logger.error("pool %d: cannot fork a worker: %s", pool.index, error)
            pool.state.fork_failed(now)
            return
        self.workers[worker.pid] = worker
        pool.state.forked(worker.pid, now)
        self.selector.register(worker.control, selectors.EVENT_READ,
                               lambda: self._on_control(worker))
        self.selector.register(worker.stderr, selectors.EVENT_READ,
                               lambda: self._on_stderr(worker))
        logger.info("pool %d: forked worker %d", pool.index, worker.pid)

    def _close_in_child(self) -> None:
        """In a new worker: drop everything that belongs to the master."""
        signal.set_wakeup_fd(-1)
        self.signals.close()
        self.selector.close()
        for pool in self.pools:
            pool.close_in_child()
        for other in self.workers.values():
            other.control.close()
            other.stderr.close()
        for fd in self.settings.close_in_workers:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _terminate(self, pool: PoolRuntime, pid: int, reason: str) -> None:
        logger.info("pool %d: retiring worker %d (%s)", pool.index, pid, reason)
        pool.state.stopping(pid, dismissed=True)
        try:
            self.workers[pid].send(Kind.TERMINATE)
        except OSError:
            self._kill(self.workers[pid], "its control socket failed")

    def _kill(self, worker: WorkerProcess, reason: str, quietly: bool = False) -> None:
        log = logger.info if quietly else logger.error
        log("pool %d: killing worker %d (%s)", worker.pool, worker.pid, reason)
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGKILL)
        self._unregister(worker.control)
        worker.control_open = False
        pool = self.pools[worker.pool]
        job = pool.state.stopping(worker.pid, dismissed=True)
        if job is not None:
            self._job_ended(pool, job, time.monotonic())

    # --- messages from workers -----------------------------------------

    def _on_control(self, worker: WorkerProcess) -> None:
        if worker.pid not in self.workers or not worker.control_open:
            return
        try:
            messages, eof = worker.receive()
            for message in messages:
                self._on_message(worker, message)
        except ProtocolError as error:
            self._kill(worker, f"it broke the control protocol ({error})")
            return
        if eof:
            self._unregister(worker.control)
            self.child_exited = True

    def _on_message(self, worker: WorkerProcess, message: Message) -> None:
        logger.debug("%s: %s", pid_prefix(worker.pool, worker.pid), message.kind.name)
        pool = self.pools[worker.pool]
        now = time.monotonic()
        if message.kind is Kind.IDLE:
            job = pool.state.became_idle(worker.pid, now)
        else:
            job = pool.state.stopping(worker.pid)
        if job is not None:
            self._job_ended(pool, job, now)

    def _on_stderr(self, worker: WorkerProcess) -> bool:
        """Log what arrived on a worker's stderr; return whether more may be waiting."""
        if not worker.stderr_open:
            return False
        lines, more = worker.read_stderr()
        for line in lines:
            logger.warning("%s: %s", pid_prefix(worker.pool, worker.pid), line)
        if not worker.stderr_open:
            self._unregister(worker.stderr)
        return more

    def _job_ended(self, pool: PoolRuntime, job: int, now: float) -> None:
        if job not in pool.schedule:
            return
        pool.schedule.completed(job, now)
        if isinstance(pool.spec.listeners[job], Main) and self._all_main_done():
            logger.info("pool %d: main listener done", pool.index)
            self._begin_graceful_stop(now, "the main listener ended")

    def _all_main_done(self) -> bool:
        return all(pool.schedule.main_done() for pool in self.pools)

    # --- timers, dispatch, pool size -----------------------------------

    def _check_timers(self, now: float) -> None:
        if self.stop is Stop.GRACEFUL and now >= self.deadline:
            self._begin_fast_stop("the graceful stop deadline passed")
        if self.stop is not Stop.RUNNING:
            return
        for pool in self.pools:
            for pid, reason in pool.state.to_retire(now):
                self._terminate(pool, pid, reason)

    def _dispatch(self, now: float) -> None:
        for pool in self.pools:
            if self.stop is Stop.RUNNING:
                for index in pool.schedule.due(now):
                    if self._hand_over(pool, index, None):
                        pool.schedule.started(index)
            while pool.pending and pool.state.next_idle() is not None:
                index, conn = pool.pending.popleft()
                if not self._hand_over(pool, index, conn):
                    pool.pending.appendleft((index, conn))
            if self.stop is Stop.GRACEFUL and not pool.pending:
                while (pid := pool.state.next_idle()) is not None:
                    self._terminate(pool, pid, "stopping")

    def _hand_over(self, pool: PoolRuntime, index: int, conn: socket.socket | None) -> bool:
        """Send work to the worker idle the longest; False if no worker took it."""
        while (pid := pool.state.next_idle()) is not None:
            worker = self.workers[pid]
            try:
                worker.send(Kind.CONNECT, connect_payload(index),
                            None if conn is None else conn.fileno())
            except OSError as error:
                self._kill(worker, f"cannot send it work ({error})")
                continue
            pool.state.dispatched(pid, index)
            logger.debug("%s: CONNECT %d", pid_prefix(pool.index, pid), index)
            if conn is not None:
                conn.close()
            return True
        return False

    def _adjust_pools(self, now: float) -> None:
        for pool in self.pools:
            if self.stop is Stop.RUNNING:
                if pool.state.fork_due(now):
                    self._fork(pool, now)
            elif (self.stop is Stop.GRACEFUL and pool.pending
                  and pool.state.counts().total == 0 and now >= pool.state.next_fork):
                self._fork(pool, now)  # held connections need a worker

    def _log_stats(self, force: bool = False) -> None:
        if force or self.settings.stats:
            for pool in self.pools:
                pool.log_stats(force)

    # --- waiting -----------------------------------------------------

    def _next_wakeup(self, now: float) -> float | None:
        deadlines = [self.deadline if self.stop is Stop.GRACEFUL else math.inf]
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
            wanted = {(pool.index, index) for pool in self.pools
                      for index in pool.sockets_to_poll(now)}
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
        """Accept while the pool has an idle worker; hand each connection over."""
        sock = self._listener(pool.index, index)
        while self.stop is Stop.RUNNING and pool.state.next_idle() is not None:
            try:
                conn = _accept.accept(sock)
            except OSError as error:
                pool.accept_failed(index, error, time.monotonic())
                return
            if conn is None:
                return
            pool.backoff.pop(index, None)
            if not self._hand_over(pool, index, conn):
                logger.error("pool %d: no worker took a connection; closing it", pool.index)
                conn.close()

    # --- stopping ------------------------------------------------------

    def _begin_graceful_stop(self, now: float, reason: str) -> None:
        if self.stop is not Stop.RUNNING:
            return
        self.stop = Stop.GRACEFUL
        self.deadline = now + self.settings.graceful_timeout
        self._unpoll_listeners()
        for pool in self.pools:
            pool.hold_backlogs()
        logger.info("graceful stop (%s): listeners closed, waiting up to %g s for workers",
                    reason, self.settings.graceful_timeout)

    def _begin_fast_stop(self, reason: str) -> None:
        if self.stop is Stop.FAST:
            return
        self.stop = Stop.FAST
        self._unpoll_listeners()
        for pool in self.pools:
            pool.close_listeners()
        logger.info("fast stop (%s): listeners closed, killing all workers", reason)
        for worker in list(self.workers.values()):
            self._kill(worker, reason, quietly=True)

    def _unpoll_listeners(self) -> None:
        for pool_index, index in self.polled:
            self._unregister(self._listener(pool_index, index))
        self.polled = set()

    def _kill_and_reap_all(self) -> None:
        for worker in self.workers.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
        for worker in self.workers.values():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(worker.pid, 0)

    def _cleanup(self) -> None:
        self._unpoll_listeners()
        for pool in self.pools:
            pool.close_listeners()
        for worker in self.workers.values():
            worker.close()
        self.workers.clear()
        self.signals.uninstall()
        self.selector.close()
