"""Pool sizing without I/O: which worker to use, when to fork, whom to retire.

`PoolState` is the bookkeeping of one pool. The master tells it what
happened (a fork, a worker that became idle, a dispatch, an exit) and asks it
what to do next (fork now? retire whom? wake up when?). It never forks,
sends or sleeps itself and takes the time as an argument, so the rules below
are tested with a plain number for a clock.

The rules, as in the original:

* fork while `total < max_fork` and (`spare < pre_fork` or
  `total < min_fork`), at most one fork per `fork_delay`; a worker that
  exited normally lets the next fork happen at once;
* after a prepare failure (a worker died before it ever became idle) or a
  fork error, at most one fork per `fork_error_delay`, until a worker
  becomes idle again;
* retire one idle worker per `exit_delay` while `total > min_fork` and
  `idle > pre_fork`;
* retire any worker idle for longer than `idle_timeout` (0 = never).

Generations: each worker carries the pool's `generation` at its fork. A
reload (see `_reload`) starts a new generation; the workers of older ones
are the `old_workers()` it replaces. A worker the reload forks to try the
new generation is a `trial`: if it dies before it is ready, the reload is
abandoned, and the pool's forks are not slowed (its old workers serve on).

Counting: `total` is every worker not yet told to go; `spare` is idle
plus starting workers (a worker still in `prepare` will be idle soon, so
it does not trigger another fork). Workers take their own work, so the
states come from the scoreboard (`observe`); the idle workers are kept in
the order they became idle, which is the order `exit_delay` and
`idle_timeout` retire them in.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from enum import Enum

from .._config import PoolOptions
from .._errors import ProtocolError
from .._scoreboard import Seen


class State(Enum):
    """Where a worker is in its life, as the master sees it."""

    STARTING = "starting"
    """Forked; `prepare` runs; not yet idle."""
    IDLE = "idle"
    """Waiting for work."""
    BUSY = "busy"
    """Running `connect` for a connection or an event."""
    STOPPING = "stopping"
    """Told to terminate, said goodbye, or killed; waiting to be reaped."""


@dataclass(slots=True)
class WorkerRecord:
    """What the pool knows about one worker."""

    pid: int
    state: State = State.STARTING
    idle_since: float = 0.0
    busy_since: float = 0.0
    """When it last got work (the time slice of a parkable connection counts from here)."""
    job: int | None = None
    """Listener index of the work it runs (while busy)."""
    prepared: bool = False
    """Whether it has ever been idle, i.e. `prepare` succeeded."""
    dismissed: bool = False
    """Whether the master told it to go or killed it (then its death is no failure)."""
    generation: int = 0
    """The pool's generation when it was forked (a reload starts a new one)."""
    trial: bool = False
    """Forked by a reload to replace an old worker (its failure abandons the reload)."""


@dataclass(frozen=True, slots=True)
class Counts:
    """A snapshot of a pool's workers by state."""

    total: int
    idle: int
    busy: int
    starting: int
    stopping: int


class PoolState:
    """The worker bookkeeping and sizing rules of one pool.

    Args:
        options: The pool's options.
        now: The current time (`time.monotonic()`); starts the clocks.
    """

    def __init__(self, options: PoolOptions, now: float) -> None:
        self.options = options
        self.workers: dict[int, WorkerRecord] = {}
        self.idle: deque[int] = deque()
        self.next_fork = now
        self.error_pacing = False
        self.surplus_since: float | None = None
        self.generation = 0
        """The generation of the workers forked now (see `new_generation`)."""

    # --- what happened -------------------------------------------------

    def forked(self, pid: int, now: float, *, trial: bool = False) -> None:
        """Record a new worker of the current generation; the next fork waits for the pacing delay.

        Args:
            pid: The worker's process ID.
            now: The current time.
            trial: A reload forked it (see `WorkerRecord.trial`); it is not paced.
        """
        self.workers[pid] = WorkerRecord(pid, generation=self.generation, trial=trial)
        if not trial:
            self._pace(now)

    def new_generation(self) -> int:
        """Start a new generation (a reload); every worker forked from now on belongs to it."""
        self.generation += 1
        return self.generation

    def old_workers(self) -> list[int]:
        """The workers of older generations not yet going: the idle first, longest idle first.

        Examples:
            >>> state = PoolState(PoolOptions(pre_fork=1), now=0.0)
            >>> state.forked(10, 0.0); state.forked(11, 0.0)
            >>> _ = state.became_idle(11, 1.0)
            >>> state.new_generation(), state.old_workers()
            (1, [11, 10])
        """
        old = [pid for pid, worker in self.workers.items()
               if worker.generation < self.generation and worker.state is not State.STOPPING]
        return sorted(old, key=lambda pid: self.workers[pid].state is not State.IDLE)

    def is_ready(self, pid: int) -> bool:
        """Whether the worker `pid` has been idle or busy, i.e. its `prepare` succeeded."""
        worker = self.workers.get(pid)
        return worker is not None and worker.prepared

    def fork_failed(self, now: float) -> None:
        """Record that `fork` (or creating the worker's sockets) failed."""
        self.error_pacing = True
        self._pace(now)

    def became_idle(self, pid: int, now: float) -> int | None:
        """Record an `I` message; return the listener index of the job it finished.

        Raises:
            ProtocolError: If the worker was idle already.
        """
        worker = self.workers[pid]
        if worker.state is State.IDLE:
            raise ProtocolError("an idle worker said it is idle")
        job, worker.job = worker.job, None
        if worker.state is State.STOPPING:
            return job
        if not worker.prepared:
            worker.prepared = True
            self.error_pacing = False
        worker.state = State.IDLE
        worker.idle_since = now
        self.idle.append(pid)
        return job

    def observe(self, pid: int, seen: Seen, job: int | None, since: float) -> None:
        """Apply what the worker's scoreboard slot says (see `_scoreboard`).

        Workers take their own work, so the pool learns of it here, each
        time the master loop reads the scoreboard, instead of from a
        message per request. A worker told to go keeps its state.
        """
        worker = self.workers.get(pid)
        if worker is None:
            return
        if worker.state is State.STOPPING:  # told to go, or said goodbye: keep the state
            worker.job = job if seen is Seen.BUSY else None
            if seen in (Seen.IDLE, Seen.BUSY) and not worker.prepared:
                worker.prepared, self.error_pacing = True, False  # it did get that far
            return
        if seen is Seen.IDLE and worker.state is not State.IDLE:
            self.became_idle(pid, since)
        elif seen is Seen.BUSY and job is not None and (
                worker.state is not State.BUSY or worker.busy_since != since):
            if worker.state is State.STARTING:
                worker.prepared, self.error_pacing = True, False
                worker.state = State.IDLE
                self.idle.append(pid)
            elif worker.state is State.BUSY:
                worker.state = State.IDLE
                self.idle.append(pid)
            self.dispatched(pid, job, since)

    def is_busy(self, pid: int) -> bool:
        """Whether the worker `pid` runs work now (told to stop when done counts too)."""
        worker = self.workers.get(pid)
        return worker is not None and worker.job is not None

    def busy_since(self, pid: int) -> float:
        """When the busy worker `pid` got its current work."""
        return self.workers[pid].busy_since

    def busy(self) -> list[int]:
        """The workers running work now."""
        return [pid for pid, worker in self.workers.items() if worker.state is State.BUSY]

    def next_idle(self) -> int | None:
        """Return the worker idle the longest, the next to get work (FIFO), if any."""
        return self.idle[0] if self.idle else None

    def dispatched(self, pid: int, listener: int, now: float = 0.0) -> None:
        """Record that the idle worker `pid` got work from the listener at `listener`."""
        self.idle.remove(pid)
        worker = self.workers[pid]
        worker.state = State.BUSY
        worker.job = listener
        worker.busy_since = now

    def stopping(self, pid: int, *, dismissed: bool = False) -> int | None:
        """Record that a worker is going; return the job it was running, if any.

        Args:
            pid: The worker's process ID.
            dismissed: True if the master sent it `T` or killed it.
        """
        worker = self.workers[pid]
        if worker.state is State.IDLE:
            self.idle.remove(pid)
        worker.state = State.STOPPING
        worker.dismissed = worker.dismissed or dismissed
        job, worker.job = worker.job, None
        return job

    def dismiss_busy(self, pid: int) -> None:
        """Record that a busy worker was told to exit when done; it keeps its job until then."""
        worker = self.workers[pid]
        worker.state = State.STOPPING
        worker.dismissed = True

    def exited(self, pid: int, status: int, now: float) -> tuple[int | None, bool]:
        """Record a reaped worker; return (unfinished job, whether prepare failed).

        A trial worker that dies before it is ready (a reload's, see
        `WorkerRecord.trial`) is no prepare failure of the pool: the reload
        that forked it takes note.

        Args:
            pid: The worker's process ID.
            status: `os.waitstatus_to_exitcode` of it (negative = signal).
            now: The current time.
        """
        job = self.stopping(pid)
        worker = self.workers.pop(pid)
        prepare_failed = not worker.prepared and not worker.dismissed and not worker.trial
        if prepare_failed:
            self.error_pacing = True
            self.next_fork = max(self.next_fork, now + self.options.fork_error_delay)
        elif status == 0 and not self.error_pacing:
            self.next_fork = min(self.next_fork, now)
        return job, prepare_failed

    def _pace(self, now: float) -> None:
        delay = self.options.fork_error_delay if self.error_pacing else self.options.fork_delay
        self.next_fork = max(self.next_fork, now + delay)

    # --- what to do ----------------------------------------------------

    def counts(self) -> Counts:
        """Count the workers by state."""
        states = [worker.state for worker in self.workers.values()]
        stopping = states.count(State.STOPPING)
        return Counts(len(states) - stopping, states.count(State.IDLE),
                      states.count(State.BUSY), states.count(State.STARTING), stopping)

    def wants_fork(self) -> bool:
        """Whether the pool is below its targets (ignoring the pacing delay)."""
        counts = self.counts()
        if counts.total + counts.stopping >= self.options.maximum:
            return False
        spare = counts.idle + counts.starting
        return spare < self.options.pre_fork or counts.total < self.options.minimum

    def fork_due(self, now: float) -> bool:
        """Whether to fork one worker now."""
        return self.wants_fork() and now >= self.next_fork

    def to_retire(self, now: float) -> list[tuple[int, str]]:
        """Return the idle workers to terminate now, each with the reason."""
        retire: list[tuple[int, str]] = []
        limit = self.options.idle_timeout
        if limit > 0:
            for pid in list(self.idle):
                if now - self.workers[pid].idle_since >= limit:
                    retire.append((pid, "idle_timeout"))
        if self._surplus(len(retire)):
            if self.surplus_since is None:
                self.surplus_since = now
            elif now - self.surplus_since >= self.options.exit_delay:
                chosen = {pid for pid, _ in retire}
                pid = next(pid for pid in self.idle if pid not in chosen)
                retire.append((pid, "exit_delay"))
                self.surplus_since = now
        else:
            self.surplus_since = None
        return retire

    def _surplus(self, leaving: int) -> bool:
        counts = self.counts()
        return (counts.total - leaving > self.options.minimum
                and counts.idle - leaving > self.options.pre_fork)

    def next_deadline(self) -> float:
        """The earliest time a rule may act without another event (`inf` = none)."""
        deadlines = [math.inf]
        if self.wants_fork():
            deadlines.append(self.next_fork)
        if self.options.idle_timeout > 0 and self.idle:
            deadlines.append(self.workers[self.idle[0]].idle_since + self.options.idle_timeout)
        if self.surplus_since is not None:
            deadlines.append(self.surplus_since + self.options.exit_delay)
        return min(deadlines)
