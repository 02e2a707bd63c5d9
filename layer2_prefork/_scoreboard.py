"""The scoreboard: each worker's state and counters in memory the master and its workers share.

Workers accept their own connections, so the master does not hear of
every request. It still sizes the pools (`pre_fork`, `min_fork`,
`idle_timeout`, ...), so it must know who is idle and who is busy. A
message for each change would cost a system call in the worker and a
wake-up of the master for every request; instead each worker writes its
state into its own slot of one shared memory map (an anonymous shared
`mmap`, made before the first fork), and the master reads the slots when
its loop runs. Apache's prefork and event MPMs keep the same kind of
scoreboard.

The map starts with the master's region, then one slot per worker::

    master region (written only by the master)
        sequence  8 bytes      odd while the master folds a reaped worker in
        held      8 bytes each connections the master holds, by `HeldReason`
        per pool  8 bytes each exits by `ExitCause`, then the totals of reaped
                               workers: taken, accepted, each declared counter
    a worker's slot (written only by its worker; the master clears it before the fork)
        state   1 byte   STARTING, IDLE or BUSY
        job     2 bytes  the listener index of the current work (-1: none)
        since   8 bytes  `time.monotonic()` of the last change (one clock for all
                         processes on Linux)
        taken   8 bytes  how many pieces of work it took from the pool's queue
        accepted 8 bytes how many connections it accepted itself
        pool    2 bytes  its pool (the master writes it when it claims the slot)
        cause   1 byte   why it will exit, once it knows (`ExitCause`)
        counters         8 bytes each, after the first 64 bytes: the declared
                         counters (`_counters.Counters`), which only grow

Invariants: a worker writes only its own slot, and writes `state` last, so
a reader that sees a state sees the job and time that go with it (a torn
read of a counter is at worst one behind, never wrong for long); the master
only reads slots, except to clear one before it gives it to a new worker.
When it reaps a worker it adds the slot's counters into its pool's totals
and frees the slot between two steps of `sequence`, so a reader (`totals`)
that sees the same even sequence before and after its reads counted each
worker exactly once: a counter outlives the worker that counted it.
"""

from __future__ import annotations

import mmap
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

SLOT = struct.Struct("=hxxxxxxdQQ")
"""job, since, taken, accepted (the state byte sits before them)."""
HEADER_SIZE = 64
"""Bytes of a slot before its counters (one cache line: two workers never write the same line)."""
SLOT_SIZE = HEADER_SIZE
"""Bytes per slot of a scoreboard without declared counters."""
POOL_AT = 40
CAUSE_AT = 42
CELL = 8
RETRIES = 10000
"""How often `Scoreboard.totals` reads again while the master folds a worker in."""
_POOL = struct.Struct("=H")


class Seen(IntEnum):
    """A worker's state as its slot says it."""

    FREE = 0
    STARTING = 1
    IDLE = 2
    BUSY = 3


class ExitCause(IntEnum):
    """Why a worker exited: it says so in its slot, or the master knows (`Workers`)."""

    UNKNOWN = 0
    """It exited with status 0 and did not say why (the master is gone, say)."""
    HANDLER = 1
    """`connect` returned `False`."""
    MAX_REQUESTS = 2
    """It served `max_requests` (layer 2's or the handler's own)."""
    MEMORY_LIMIT = 3
    """Its resident size passed `memory_limit`, or an allocation failed (`MemoryError`)."""
    TIMEOUT = 4
    """The `timeout()` watchdog killed it (`SIGALRM`)."""
    CRASH = 5
    """It exited with an error status (a handler raised, `prepare` failed)."""
    SIGNAL = 6
    """A signal killed it that the master did not send (``kill -9``, a segfault)."""
    KILLED = 7
    """The master killed it (it was stopped, or broke the control protocol)."""
    IDLE = 8
    """Retired by the master, after `idle_timeout` or `exit_delay`."""
    STOP = 9
    """The server stopped."""


class HeldReason(IntEnum):
    """Why the master holds a connection (`Master.publish`)."""

    REQUEST = 0
    """A new connection whose request has not fully arrived (head, or a short body)."""
    KEEPALIVE = 1
    """A keep-alive connection parked between two requests."""
    QUEUED = 2
    """A complete request waiting for the pool's queue to take it."""
    LINGER = 3
    """Half-closed in a lingering close, draining until the client closes."""
    WRITE = 4
    """The rest of a response the client takes slowly (write completion)."""


BUILTIN = ("taken", "accepted")
"""The counters every slot has (in its header), folded like the declared ones."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One slot, as read."""

    state: Seen
    job: int | None
    since: float
    taken: int
    accepted: int


@dataclass(frozen=True, slots=True)
class Totals:
    """A consistent reading of the whole board (see `Scoreboard.totals`)."""

    states: tuple[tuple[int, int, int], ...]
    """Per pool: workers starting, idle, busy (from their slots)."""
    exits: tuple[tuple[int, ...], ...]
    """Per pool: exits by `ExitCause`."""
    counters: tuple[tuple[int, ...], ...]
    """Per pool: taken, accepted, then each declared counter (live plus reaped workers)."""
    held: tuple[int, ...]
    """Connections the master holds, by `HeldReason`."""


class Scoreboard:
    """Slots for `size` workers in shared memory, and the master's region.

    Args:
        size: How many workers can be alive at once.
        pools: How many pools there are.
        counters: How many declared counters each slot carries.

    Examples:
        >>> board = Scoreboard(2)
        >>> slot = board.claim()
        >>> board.read(slot).state
        <Seen.STARTING: 1>
        >>> Writer(board, slot).busy(3, 10.0); board.read(slot)
        Entry(state=<Seen.BUSY: 3>, job=3, since=10.0, taken=0, accepted=0)
    """

    def __init__(self, size: int, pools: int = 1, counters: int = 0) -> None:
        self.size = max(size, 1)
        self.pools = max(pools, 1)
        self.counters = counters
        self.pool_cells = len(ExitCause) + len(BUILTIN) + counters
        master_cells = 1 + len(HeldReason) + self.pools * self.pool_cells
        self.base = _round_up(master_cells * CELL)
        self.slot_size = HEADER_SIZE + _round_up(counters * CELL)
        self.memory = mmap.mmap(-1, self.base + self.size * self.slot_size)
        self.free = list(range(self.size - 1, -1, -1))

    def offset(self, slot: int) -> int:
        """Where a slot begins in the map."""
        return self.base + slot * self.slot_size

    def claim(self, pool: int = 0) -> int:
        """Take a free slot for a new worker of `pool` and mark it STARTING.

        Raises:
            IndexError: If every slot is in use.
        """
        slot = self.free.pop()
        offset = self.offset(slot)
        self.memory[offset:offset + self.slot_size] = bytes(self.slot_size)
        SLOT.pack_into(self.memory, offset + 1, -1, time.monotonic(), 0, 0)
        _POOL.pack_into(self.memory, offset + POOL_AT, pool)
        self.memory[offset] = Seen.STARTING
        return slot

    def release(self, slot: int) -> None:
        """Give a reaped worker's slot back (without counting it: see `retire`)."""
        self.memory[self.offset(slot)] = Seen.FREE
        self.free.append(slot)

    def read(self, slot: int) -> Entry:
        """Read one slot."""
        offset = self.offset(slot)
        state = Seen(self.memory[offset])
        job, since, taken, accepted = SLOT.unpack_from(self.memory, offset + 1)
        return Entry(state, None if job < 0 else job, since, taken, accepted)

    def cause(self, slot: int) -> ExitCause:
        """The exit cause a worker wrote into its slot (`UNKNOWN` if none)."""
        try:
            return ExitCause(self.memory[self.offset(slot) + CAUSE_AT])
        except ValueError:  # a worker wrote garbage: it is the worker's own slot
            return ExitCause.UNKNOWN

    # --8<-- [start:retire]
    def retire(self, slot: int, pool: int, cause: ExitCause) -> None:
        """Fold a reaped worker's counters into its pool's totals, count its exit, free the slot."""
        cells = memoryview(self.memory).cast("Q")
        cells[0] += 1  # odd: readers retry
        try:
            first = self._pool_cell(pool)
            cells[first + cause] += 1
            entry = self.read(slot)
            folded = first + len(ExitCause)
            cells[folded] += entry.taken
            cells[folded + 1] += entry.accepted
            own = (self.offset(slot) + HEADER_SIZE) // CELL
            for index in range(self.counters):
                cells[folded + len(BUILTIN) + index] += cells[own + index]
            self.release(slot)
        finally:
            cells[0] += 1  # even again, whatever happened
            cells.release()
    # --8<-- [end:retire]

    def publish_held(self, counts: Sequence[int]) -> None:
        """Write how many connections the master holds, by `HeldReason` (the master)."""
        struct.pack_into(f"={len(HeldReason)}Q", self.memory, CELL, *counts)

    def _pool_cell(self, pool: int) -> int:
        return 1 + len(HeldReason) + pool * self.pool_cells

    def totals(self) -> Totals:
        """Read the whole board consistently: each worker's counters exactly once.

        Any process of the server may call it (the map is inherited). It
        retries while the master folds a reaped worker in (a fold takes
        microseconds; after `RETRIES` tries it returns what it read).
        """
        for _ in range(RETRIES):
            before = struct.unpack_from("=Q", self.memory, 0)[0]
            if before % 2:
                continue
            reading = self._read_all()
            if struct.unpack_from("=Q", self.memory, 0)[0] == before:
                return reading
        return self._read_all()

    def _read_all(self) -> Totals:
        memory, kinds = self.memory, len(ExitCause)
        held = struct.unpack_from(f"={len(HeldReason)}Q", memory, CELL)
        pools = [list(struct.unpack_from(f"={self.pool_cells}Q", memory,
                                         self._pool_cell(pool) * CELL))
                 for pool in range(self.pools)]
        states = [[0, 0, 0] for _ in range(self.pools)]
        for slot in range(self.size):
            offset = self.offset(slot)
            state = memory[offset]
            if state == Seen.FREE:
                continue
            pool = _POOL.unpack_from(memory, offset + POOL_AT)[0]
            if pool >= self.pools:
                continue
            states[pool][state - Seen.STARTING] += 1
            _, _, taken, accepted = SLOT.unpack_from(memory, offset + 1)
            own = struct.unpack_from(f"={self.counters}Q", memory, offset + HEADER_SIZE)
            cells = pools[pool]
            for index, value in enumerate((taken, accepted, *own)):
                cells[kinds + index] += value
        return Totals(tuple((a, b, c) for a, b, c in states),
                      tuple(tuple(cells[:kinds]) for cells in pools),
                      tuple(tuple(cells[kinds:]) for cells in pools), held)

    def close(self) -> None:
        """Unmap the memory (the master, at its end)."""
        self.memory.close()


def _round_up(size: int) -> int:
    return -(-size // HEADER_SIZE) * HEADER_SIZE


class Writer:
    """A worker's own slot: the only part of the scoreboard it writes.

    Args:
        board: The scoreboard (inherited across the fork).
        slot: The worker's slot.
    """

    __slots__ = ("accepted", "counters", "memory", "offset", "taken")

    def __init__(self, board: Scoreboard, slot: int) -> None:
        self.memory = board.memory
        self.offset = board.offset(slot)
        self.counters = board.counters
        self.taken = 0
        self.accepted = 0

    # --8<-- [start:writer]
    def idle(self, now: float) -> None:
        """Say idle (no job) since `now`."""
        SLOT.pack_into(self.memory, self.offset + 1, -1, now, self.taken, self.accepted)
        self.memory[self.offset] = Seen.IDLE

    def busy(self, job: int, now: float, *, queued: bool = False, accepted: bool = False) -> None:
        """Say busy with work of listener `job` since `now` (taken from the queue, or accepted)."""
        self.taken += queued
        self.accepted += accepted
        SLOT.pack_into(self.memory, self.offset + 1, job, now, self.taken, self.accepted)
        self.memory[self.offset] = Seen.BUSY
    # --8<-- [end:writer]

    def leaving(self, cause: ExitCause) -> None:
        """Say why this worker will exit (the first cause said wins)."""
        if not self.memory[self.offset + CAUSE_AT]:
            self.memory[self.offset + CAUSE_AT] = cause

    def cells(self) -> memoryview:
        """The worker's declared counters, as 8-byte cells it may add to."""
        start = self.offset + HEADER_SIZE
        return memoryview(self.memory)[start:start + self.counters * CELL].cast("Q")
