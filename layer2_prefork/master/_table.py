"""The master's table of worker processes, and everything it does to one.

`Workers` forks workers, registers their control and stderr sockets
with the master's selector, reads what they send, queues work for them,
tells them to go, kills them, and reaps them. Workers take their own work
(they accept on the pool's listeners and read the pool's queue), so
`sync` reads each one's state from the shared `Scoreboard` into its
pool's `PoolState`; finished timer runs (`D`) go to the pool
(`PoolRuntime.job_ended()`).

Invariants:

* a worker is in the table from its fork until it is reaped, so the master
  stops only when the table is empty;
* anything wrong on a worker's control socket (garbage, a message its state
  does not allow, a send that fails) kills that worker, never the master;
* a reaped worker's remaining stderr is logged before the line that reports
  its exit, so a traceback always comes before "exited with status 1";
* a reaped worker's remaining control messages are read first too, so a
  connection it parked just before it died is not lost;
* a worker's end is a WARNING only when nobody asked for it: one the master
  killed itself (`kill`), or one that died of the very signal that
  stopped the server (Ctrl-C reaches every process of the terminal's
  group), is logged at INFO, and at DEBUG once the server is stopping, so
  that a stop reads as the master's own two lines (see `begin_stop`);
* a worker told to retire (`R`, a reload) that is still alive at its
  deadline is killed (`kill_late`).
"""

from __future__ import annotations

import contextlib
import math
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from .. import _counters
from .._config import TCP, Inherited, Local
from .._errors import ProtocolError
from .._logging import logger, pid_prefix
from .._protocol import LINGER, NO_LIMIT, SEND, Kind, Message, unpack_bytes
from .._scoreboard import ExitCause, Scoreboard, Seen, Writer
from ..worker import _loop as _worker
from ..worker._park import GRACE
from ._handle import WorkerProcess, fork_worker
from ._pool_runtime import PoolRuntime


class Taker(Protocol):
    """Where the connections that workers hand to the master go (the master's `Holding`)."""

    def parked(self, pool: PoolRuntime, index: int, conn: socket.socket) -> None:
        """A keep-alive connection between two requests (`P`)."""

    def held(self, pool: PoolRuntime, index: int, conn: socket.socket, data: bytes) -> None:
        """A new connection whose request has not fully arrived (`H`)."""

    def lingering(self, conn: socket.socket, seconds: float | None, limit: int) -> None:
        """A half-closed connection to drain until the client's end (`L`)."""

    def sending(self, pool: PoolRuntime, index: int, conn: socket.socket, source: int,
                fields: tuple[int, ...], early: bytes) -> None:
        """A connection with the rest of a response to send from `source` (`S`), and the
        bytes of its next request already read (`early`)."""


def describe_exit(code: int) -> str:
    """Say how a worker ended, from `os.waitstatus_to_exitcode`.

    Examples:
        >>> describe_exit(0), describe_exit(-9)
        ('exited with status 0', 'was killed by signal 9 (SIGKILL)')
    """
    if code >= 0:
        return f"exited with status {code}"
    return f"was killed by signal {-code} ({signal.Signals(-code).name})"


class Workers:
    """Every live worker of every pool, by PID.

    Args:
        pools: The master's pools (a worker's `pool` field indexes this list).
        selector: The master's selector; worker sockets are registered with a
            callable as their data.
        close_master_fds: Called first in each new worker with its pool's
            index (see `fork_worker()`).
        taker: Takes the connections workers hand to the master.
    """

    def __init__(self, pools: Sequence[PoolRuntime], selector: selectors.BaseSelector,
                 close_master_fds: Callable[[int], None], taker: Taker) -> None:
        self.pools = pools
        self.selector = selector
        self.close_master_fds = close_master_fds
        self.taker = taker
        # twice the pools' maximum: during a reload, old workers finish while new ones serve
        self.board = Scoreboard(2 * sum(pool.spec.options.maximum for pool in pools) + len(pools),
                                len(pools), _counters.declared())
        _counters.attach(self.board)
        self.dismissed: dict[int, ExitCause] = {}
        """Why the master told a worker to go or killed it (for its exit's cause)."""
        self.by_pid: dict[int, WorkerProcess] = {}
        self.next_stop_check = 0.0
        self.seen_stopped: set[int] = set()
        """Workers found stopped at the last check."""
        self.maybe_exited = False
        """Set by SIGCHLD or an end of stream on a control socket: reap soon."""
        self.killed: set[int] = set()
        """Workers the master sent SIGKILL itself (their death is no surprise)."""
        self.stopping = False
        """The server is stopping: each worker's retirement and end is a DEBUG line."""
        self.stop_signal = 0
        """The signal that stopped the server (0: none); a worker it killed was asked to go."""
        self.kill_at: dict[int, float] = {}
        """Workers told to retire (`R`), and when to kill them if they are still there."""
        self.trial_exits: dict[int, int] = {}
        """Exit codes of a reload's trial workers that died before they were ready."""

    def __bool__(self) -> bool:
        return bool(self.by_pid)

    def begin_stop(self, signal_number: int = 0) -> None:
        """The server stops: log each worker's end as expected from now on.

        Args:
            signal_number: The signal that stopped the server, if one did.
                A worker that dies of it was reached by the same signal as
                the master (a terminal's Ctrl-C goes to the whole process
                group, systemd may signal the whole control group).
        """
        self.stopping = True
        self.stop_signal = self.stop_signal or signal_number

    def _expected(self, worker: WorkerProcess, code: int) -> bool:
        """Whether a worker's end is what someone asked for (else: a WARNING)."""
        if code == 0:
            return True
        if code == -signal.SIGKILL and worker.pid in self.killed:
            return True
        return self.stopping and code == -self.stop_signal

    # --- birth and death -----------------------------------------------

    def fork(self, pool: PoolRuntime, now: float, *, trial: bool = False) -> int | None:
        """Fork one worker for `pool`; return its PID (`None`: logged, and the pool slows).

        Args:
            pool: The pool.
            now: The current time.
            trial: A reload forks it (see `PoolState.forked`).
        """
        try:
            slot = self.board.claim(pool.index)
        except IndexError:
            logger.error("pool %d: no scoreboard slot is free; not forking", pool.index)
            pool.state.fork_failed(now)
            return None
        writer = Writer(self.board, slot)
        context = _worker.Context(pool.queue.receive_end, pool.listeners(), writer)

        def in_child() -> None:
            self.close_master_fds(pool.index)
            _counters.enter(writer)

        try:
            worker = fork_worker(pool.spec, in_child, context, slot)
        except OSError as error:
            self.board.release(slot)
            logger.error("pool %d: cannot fork a worker: %s", pool.index, error)
            pool.state.fork_failed(now)
            return None
        self.by_pid[worker.pid] = worker
        pool.state.forked(worker.pid, now, trial=trial)
        self.selector.register(worker.control, selectors.EVENT_READ,
                               lambda: self._on_control(worker))
        self.selector.register(worker.stderr, selectors.EVENT_READ,
                               lambda: self._on_stderr(worker))
        logger.info("pool %d: forked worker %d%s", pool.index, worker.pid,
                    f" (generation {pool.state.generation})" if pool.state.generation else "")
        return worker.pid

    def reap(self, now: float) -> None:
        """Collect every worker that has exited (`waitpid` with `WNOHANG`)."""
        if not self.maybe_exited:
            return
        self.maybe_exited = False
        for worker in list(self.by_pid.values()):
            try:
                pid, status = os.waitpid(worker.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: count it as a failure
                pid, status = worker.pid, 255 << 8
            if pid:
                self._exited(worker, os.waitstatus_to_exitcode(status), now)

    # --8<-- [start:sync]
    def sync(self) -> None:
        """Read every worker's scoreboard slot into its pool's bookkeeping."""
        for pool in self.pools:
            pool.served = 0
            pool.busy_jobs.clear()
        for worker in self.by_pid.values():
            entry = self.board.read(worker.slot)
            pool = self.pools[worker.pool]
            pool.served += entry.taken + entry.accepted
            if entry.state is Seen.BUSY and entry.job is not None:
                pool.busy_jobs.add(entry.job)
            pool.state.observe(worker.pid, entry.state, entry.job, entry.since)
            told = pool.told.get(worker.pid)
            if told is not None and (entry.state is not Seen.BUSY or entry.since != told):
                del pool.told[worker.pid]
    # --8<-- [end:sync]

    def kill_stopped(self, now: float) -> None:
        """Kill every worker found stopped (`SIGSTOP`) twice, `STOPPED_CHECK` seconds apart.

        A stopped worker takes no new work (the queue and the listeners go
        to whoever polls them), but it keeps its place in the pool, so the
        pool would not fork a replacement, and whatever it had already taken
        waits for nobody. The kernel does not deliver its watchdog's
        `SIGALRM` either, until it continues.
        """
        if now < self.next_stop_check:
            return
        self.next_stop_check = now + STOPPED_CHECK
        for worker in list(self.by_pid.values()):
            stopped = _process_state(worker.pid) == "T"
            if stopped and worker.pid in self.seen_stopped:
                self.kill(worker, f"it was stopped for more than {STOPPED_CHECK:g} s")
            elif stopped:
                self.seen_stopped.add(worker.pid)
            else:
                self.seen_stopped.discard(worker.pid)

    def _exited(self, worker: WorkerProcess, code: int, now: float) -> None:
        while self._on_control(worker):
            pass
        while self._on_stderr(worker):
            pass
        for line in worker.lines.flush():
            logger.warning("%s: %s", pid_prefix(worker.pool, worker.pid), line)
        self._unregister(worker.stderr)
        self._unregister(worker.control)
        worker.close()
        del self.by_pid[worker.pid]
        self.seen_stopped.discard(worker.pid)
        pool = self.pools[worker.pool]
        pool.told.pop(worker.pid, None)
        entry = self.board.read(worker.slot)
        self.board.retire(worker.slot, worker.pool, exit_cause(
            code, self.board.cause(worker.slot), self.dismissed.pop(worker.pid, None)))
        pool.state.observe(worker.pid, entry.state, entry.job, entry.since)
        self.kill_at.pop(worker.pid, None)
        record = pool.state.workers[worker.pid]
        _, prepare_failed = pool.state.exited(worker.pid, code, now)
        job = entry.job if entry.state is Seen.BUSY else None  # died during it
        expected = self._expected(worker, code)
        self.killed.discard(worker.pid)
        if record.trial and not record.prepared:
            self.trial_exits[worker.pid] = code  # the reload logs it, in one line
        else:
            log = (logger.warning if not expected else logger.debug if self.stopping
                   else logger.info)
            log("pool %d: worker %d %s", worker.pool, worker.pid, describe_exit(code))
        if prepare_failed:
            logger.warning("pool %d: worker %d failed to prepare; forking at most one worker"
                           " per fork_error_delay (%g s)", worker.pool, worker.pid,
                           pool.spec.options.fork_error_delay)
        if job is not None:
            pool.job_ended(job, now)

    # --- what the master does to workers -------------------------------

    def hand_over(self, pool: PoolRuntime, index: int, conn: socket.socket | None,
                  data: bytes = b"") -> bool:
        """Queue work for whichever worker of the pool is idle first; False if the queue is full.

        The master's copy of `conn` is closed once queued (or if the queue failed).

        Args:
            pool: The pool.
            index: The listener the work comes from.
            conn: The connection (`None` for a timer event).
            data: The bytes the master already read of `conn`.
        """
        try:
            if not pool.queue.put(index, conn, data):
                return False
        except OSError as error:
            logger.error("pool %d: cannot queue work (%s); closing it", pool.index, error)
        else:
            logger.debug("pool %d: CONNECT %d queued", pool.index, index)
        if conn is not None:
            conn.close()
        return True

    def tell_waiting(self, pool: PoolRuntime, now: float) -> float:
        """Tell each busy worker once that connections wait for a worker (`W`).

        A worker hears it only once its work has run for `GRACE` seconds:
        short work (a ``Connection: close`` request) is done by then and
        costs no message, while a worker that lingers for a keep-alive
        client's next request learns early that it should park.

        Returns:
            When the next busy worker is due to be told (`inf`: none).
        """
        if pool.state.next_idle() is not None:
            return math.inf
        next_due = math.inf
        for pid in pool.state.busy():
            if pid in pool.told:
                continue
            since = pool.state.busy_since(pid)
            if since + GRACE > now:
                next_due = min(next_due, since + GRACE)
                continue
            pool.told[pid] = since
            self._tell(pid, Kind.WAITING)
        return next_due

    def terminate(self, pool: PoolRuntime, pid: int, reason: str) -> None:
        """Tell an idle worker to finish and exit (`T`)."""
        log = logger.debug if self.stopping else logger.info
        log("pool %d: retiring worker %d (%s)", pool.index, pid, reason)
        self.dismissed.setdefault(pid, ExitCause.STOP if reason == "stopping" else ExitCause.IDLE)
        pool.state.stopping(pid, dismissed=True)
        self._tell(pid, Kind.TERMINATE)

    def finish_then_exit(self, pool: PoolRuntime, pid: int) -> None:
        """Tell a busy worker to exit when its work is done (`T`; see `_protocol`)."""
        log = logger.debug if self.stopping else logger.info
        log("pool %d: worker %d is busy; told to exit when done (stopping)", pool.index, pid)
        self.dismissed.setdefault(pid, ExitCause.STOP)
        pool.state.dismiss_busy(pid)
        self._tell(pid, Kind.TERMINATE)

    def retire(self, pool: PoolRuntime, pid: int, reason: str, deadline: float) -> None:
        """Tell a worker to hand back what it holds and leave (`R`); kill it at `deadline`.

        An idle worker leaves at once; a busy one finishes its work, parks
        its keep-alive connection with the master, then leaves.
        """
        busy = pool.state.is_busy(pid)
        logger.info("pool %d: retiring worker %d (%s%s)", pool.index, pid, reason,
                    ", when its work is done" if busy else "")
        if busy:
            pool.state.dismiss_busy(pid)
        else:
            pool.state.stopping(pid, dismissed=True)
        self.kill_at[pid] = deadline
        self._tell(pid, Kind.RETIRE)

    def kill_late(self, now: float) -> None:
        """Kill every retired worker still there at its deadline (see `retire`)."""
        for pid, deadline in list(self.kill_at.items()):
            if now >= deadline and pid in self.by_pid:
                del self.kill_at[pid]
                self.kill(self.by_pid[pid], "still busy when its time to retire was up")

    def _tell(self, pid: int, kind: Kind) -> None:
        """Send a message without descriptors; a worker it cannot reach is killed."""
        try:
            self.by_pid[pid].send(kind)
        except OSError:
            self.kill(self.by_pid[pid], "its control socket failed")

    def kill(self, worker: WorkerProcess, reason: str, quietly: bool = False) -> None:
        """Kill a worker with `SIGKILL`; it is reaped like any other.

        Its end is then no surprise: the reaped line is not a WARNING (the
        reason is on this line, an ERROR unless `quietly`).
        """
        log = (logger.error if not quietly else logger.debug if self.stopping
               else logger.info)
        log("pool %d: killing worker %d (%s)", worker.pool, worker.pid, reason)
        self.killed.add(worker.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGKILL)
        self._unregister(worker.control)
        worker.control_open = False
        self.pools[worker.pool].state.stopping(worker.pid, dismissed=True)

    def kill_all(self, reason: str) -> None:
        """Kill every worker (a fast stop)."""
        for worker in list(self.by_pid.values()):
            self.kill(worker, reason, quietly=True)

    def kill_and_reap_all(self) -> None:
        """Kill every worker and wait for each (when the master itself fails)."""
        for worker in self.by_pid.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
        for worker in self.by_pid.values():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(worker.pid, 0)

    def close(self) -> None:
        """Close the master's ends of every worker's sockets and forget the workers."""
        _counters.attach(None)
        for worker in self.by_pid.values():
            worker.close()
        self.by_pid.clear()

    def close_in_child(self) -> None:
        """In a new worker: close the master's ends of its siblings' sockets."""
        for other in self.by_pid.values():
            other.control.close()
            other.stderr.close()

    # --- what workers send ---------------------------------------------

    def _on_control(self, worker: WorkerProcess) -> bool:
        """Read and act on a worker's messages; return whether any arrived (read again)."""
        if worker.pid not in self.by_pid or not worker.control_open:
            return False
        messages: list[Message] = []
        try:
            messages, eof = worker.receive()
            more = bool(messages)
            while messages:
                self._on_message(worker, messages.pop(0))
        except ProtocolError as error:
            for message in messages:
                _close_fds(message)
            self.kill(worker, f"it broke the control protocol ({error})")
            return False
        if eof:
            self._unregister(worker.control)
            worker.control_open = False
            self.maybe_exited = True
            return False
        return more

    def _on_message(self, worker: WorkerProcess, message: Message) -> None:
        logger.debug("%s: %s", pid_prefix(worker.pool, worker.pid), message.kind.name)
        pool = self.pools[worker.pool]
        kind = message.kind
        if kind is Kind.GOODBYE:
            pool.state.stopping(worker.pid)
        elif kind is Kind.DONE:
            self._on_done(worker, pool, message.listener)
        elif kind is Kind.LINGER:
            if len(message.fds) != 1:
                _close_fds(message)
                raise ProtocolError("LINGER without its connection")
            milliseconds, limit = LINGER.unpack(message.payload)
            self.taker.lingering(socket.socket(fileno=message.fds[0]),
                                 None if milliseconds == NO_LIMIT else milliseconds / 1000, limit)
        else:
            self._on_connection(worker, pool, message)

    def _on_done(self, worker: WorkerProcess, pool: PoolRuntime, index: int) -> None:
        """A worker finished a timer event (`D`)."""
        if index not in pool.schedule:
            raise ProtocolError(f"DONE for listener {index}, which is no timer")
        pool.job_ended(index, time.monotonic())

    def _on_connection(self, worker: WorkerProcess, pool: PoolRuntime, message: Message) -> None:
        """Take a connection a worker handed over (`P`, `H`, `S`); a wrong one breaks protocol."""
        kind = message.kind
        if not message.fds:
            raise ProtocolError(f"{kind.name} without a connection")
        conn = socket.socket(fileno=message.fds[0])
        index = message.listener if kind is not Kind.SEND else SEND.unpack_from(message.payload)[0]
        listeners = pool.spec.listeners
        # (what the worker serves now is not checked: its slot may have moved on since)
        if index >= len(listeners) or not isinstance(listeners[index], TCP | Local | Inherited):
            conn.close()
            for fd in message.fds[1:]:
                os.close(fd)
            raise ProtocolError(f"{kind.name} for listener {index}, which takes no connections")
        if kind is Kind.PARK:
            self.taker.parked(pool, index, conn)
        elif kind is Kind.HOLD:
            try:
                data = unpack_bytes(message)
            except (ProtocolError, OSError):
                conn.close()
                raise
            self.taker.held(pool, index, conn, data)
        else:
            if len(message.fds) != 2:
                conn.close()
                raise ProtocolError("SEND without its source")
            self.taker.sending(pool, index, conn, message.fds[1],
                               SEND.unpack_from(message.payload)[1:],
                               message.payload[SEND.size:])

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

    def _unregister(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(sock)


STOPPED_CHECK = 1.0
"""Seconds between two looks for stopped workers (one found stopped twice is killed)."""


def exit_cause(code: int, said: ExitCause, dismissed: ExitCause | None) -> ExitCause:
    """Why a reaped worker exited, for the exit counts (see `ExitCause`).

    Args:
        code: `os.waitstatus_to_exitcode` of it (negative: a signal).
        said: The cause it wrote into its slot (`UNKNOWN`: none).
        dismissed: Why the master told it to go or killed it, if it did.

    Examples:
        >>> unknown = ExitCause.UNKNOWN
        >>> exit_cause(-9, unknown, None).name, exit_cause(-14, unknown, None).name
        ('SIGNAL', 'TIMEOUT')
        >>> exit_cause(0, ExitCause.MAX_REQUESTS, None).name
        'MAX_REQUESTS'
        >>> exit_cause(0, unknown, ExitCause.IDLE).name, exit_cause(1, unknown, None).name
        ('IDLE', 'CRASH')
    """
    if code < 0:
        if dismissed in (ExitCause.KILLED, ExitCause.STOP) and -code == signal.SIGKILL:
            return dismissed
        return ExitCause.TIMEOUT if -code == signal.SIGALRM else ExitCause.SIGNAL
    if said is not ExitCause.UNKNOWN:
        return said
    if code > 0:
        return ExitCause.CRASH
    return dismissed or ExitCause.UNKNOWN


def _process_state(pid: int) -> str:
    """The state letter of a process from /proc (``"T"``: stopped); ``""`` if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            text = stat.read()
    except OSError:
        return ""
    return text[text.rfind(b")") + 2:][:1].decode("ascii", "replace")


def _close_fds(message: Message) -> None:
    for fd in message.fds:
        with contextlib.suppress(OSError):
            os.close(fd)
