"""Counters that outlive their workers, and a snapshot of the whole server.

A handler may want to count what it does (requests, bytes, statuses) and
something else may want to read the sums (a statistics page, a metrics
endpoint) while the server runs. Counting in a worker's own memory would
lose the counts whenever that worker exits; sending a message per count
would cost the master a wake-up per request. So counters live in the
shared scoreboard (`_scoreboard`):

* `Counters(names)`, made before `run()`, gives every worker slot one
  8-byte cell per name; `add()` in a worker adds to its own cell (no
  system call, no lock: only that worker writes it);
* when the master reaps a worker it folds the worker's cells into its
  pool's totals, together with the cause of the exit (`ExitCause`), so
  the sums survive worker replacement;
* the master publishes how many connections it holds, and why
  (`HeldReason`), at every turn of its loop;
* `snapshot()`, in any process of the server (a worker of another pool,
  say), reads all of it in one consistent pass: worker states per pool
  (from the slots), exits by cause, counter totals, held connections.

Layer 2 knows nothing of what is counted: names are the caller's, and so
is any output format (layer 3 renders the Prometheus text format).

Invariants: the set of counters is fixed when `run()` makes the
scoreboard; counters only grow; a snapshot counts each worker's cells
exactly once (live, or folded into the totals).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ._errors import StartupError
from ._scoreboard import ExitCause, HeldReason, Scoreboard, Writer

_names: list[str] = []
"""Every counter name declared in this process, in order (a slot's cells)."""
_board: Scoreboard | None = None
"""The running server's scoreboard (set in the master, inherited by the workers)."""
_writer: Writer | None = None
"""This worker's slot (`None` outside a worker)."""
_cells: memoryview | None = None
"""This worker's counter cells (`None` outside a worker: `add` does nothing)."""


class Counters:
    """A group of named counters every worker adds to; `snapshot` reads the sums.

    Declare them in the master before `run()` (at import time is fine).

    Args:
        *names: The counters' names, unique in the process.

    Raises:
        ValueError: A name is empty or already declared.
        StartupError: The server already runs (the scoreboard's layout is fixed).

    Examples:
        >>> hits = Counters("doctest_hits", "doctest_misses")
        >>> hits.index("doctest_misses")
        1
        >>> hits.add(0)  # outside a worker: nothing to add to
    """

    __slots__ = ("base", "names")

    def __init__(self, *names: str) -> None:
        if _board is not None:
            raise StartupError("Counters must be declared before run()")
        for name in names:
            if not name or name in _names or names.count(name) > 1:
                raise ValueError(f"Counters: the name {name!r} is empty or already declared")
        self.names = names
        self.base = len(_names)
        _names.extend(names)

    def index(self, name: str) -> int:
        """The index of `name` in this group (for `add`)."""
        return self.names.index(name)

    # --8<-- [start:add]
    def add(self, index: int, amount: int = 1) -> None:
        """Add `amount` (>= 0) to counter `index` of this group, in this worker's slot."""
        cells = _cells
        if cells is not None:
            cells[self.base + index] += amount
    # --8<-- [end:add]


def retiring(cause: ExitCause) -> None:
    """Say why this worker will exit after its current work (for the exit counts).

    A handler that makes its worker retire (returns `False` from
    `connect`) may give the reason first, such as
    `ExitCause.MAX_REQUESTS` for a request budget of its own. The first
    cause given wins; outside a worker this does nothing.
    """
    if _writer is not None:
        _writer.leaving(cause)


@dataclass(frozen=True, slots=True)
class PoolSnapshot:
    """One pool in a `Snapshot`."""

    index: int
    starting: int
    idle: int
    busy: int
    """Workers in each state, as their slots say now."""
    exits: Mapping[str, int]
    """Workers that exited, by cause (lower-case `ExitCause` names)."""
    taken: int
    """Pieces of work its workers took from the pool's queue (held connections, timers)."""
    accepted: int
    """Connections its workers accepted themselves."""
    counters: Mapping[str, int]
    """Each declared counter's total over the pool's workers, past and present."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What `snapshot()` returns: the whole server at one moment."""

    pools: tuple[PoolSnapshot, ...]
    held: Mapping[str, int]
    """Connections the master holds, by reason (lower-case `HeldReason` names)."""


def snapshot() -> Snapshot:
    """Read the running server's worker states, exit counts, counters and held connections.

    Works in the master and in any worker (of any pool), while `run()`
    runs. It never blocks and costs one pass over the scoreboard.

    Raises:
        StartupError: No server runs in this process.
    """
    board = _board
    if board is None:
        raise StartupError("snapshot() needs a running server")
    totals = board.totals()
    names = _names[:board.counters]
    pools = []
    for index in range(board.pools):
        starting, idle, busy = totals.states[index]
        exits = {cause.name.lower(): count
                 for cause, count in zip(ExitCause, totals.exits[index], strict=True)}
        taken, accepted, *own = totals.counters[index]
        pools.append(PoolSnapshot(index, starting, idle, busy, exits, taken, accepted,
                                  dict(zip(names, own, strict=True))))
    held = {reason.name.lower(): count
            for reason, count in zip(HeldReason, totals.held, strict=True)}
    return Snapshot(tuple(pools), held)


def attach(board: Scoreboard | None) -> None:
    """The master made (or, with `None`, closed) the scoreboard of a run."""
    global _board
    _board = board


def declared() -> int:
    """How many counter cells each slot needs."""
    return len(_names)


def enter(writer: Writer) -> None:
    """In a new worker: count into its own slot from now on."""
    global _writer, _cells
    _writer = writer
    _cells = writer.cells()
