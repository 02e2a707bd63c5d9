"""The scoreboard: each worker's state in memory the master and its workers share.

Workers accept their own connections, so the master does not hear of
every request. It still sizes the pools (`pre_fork`, `min_fork`,
`idle_timeout`, ...), so it must know who is idle and who is busy. A
message for each change would cost a system call in the worker and a
wake-up of the master for every request; instead each worker writes its
state into its own slot of one shared memory page (an anonymous shared
`mmap`, made before the first fork), and the master reads the slots when
its loop runs. Apache's prefork and event MPMs keep the same kind of
scoreboard.

A slot, written only by its worker (the master clears it before the fork):

    state   1 byte   STARTING, IDLE or BUSY
    job     2 bytes  the listener index of the current work (-1: none)
    since   8 bytes  `time.monotonic()` of the last change (one clock for all
                     processes on Linux)
    taken   8 bytes  how many pieces of work it took from the pool's queue
    accepted 8 bytes how many connections it accepted itself

Invariants: a worker writes only its own slot, and writes `state` last, so
a reader that sees a state sees the job and time that go with it (a torn
read of a counter is at worst one behind, never wrong for long); the master
only reads slots, except to clear one before it gives it to a new worker.
"""

from __future__ import annotations

import mmap
import struct
import time
from dataclasses import dataclass
from enum import IntEnum

SLOT = struct.Struct("=hxxxxxxdQQ")
"""job, since, taken, accepted (the state byte sits after them)."""
SLOT_SIZE = 64
"""Bytes per slot (one cache line: two workers never write the same line)."""


class Seen(IntEnum):
    """A worker's state as its slot says it."""

    FREE = 0
    STARTING = 1
    IDLE = 2
    BUSY = 3


@dataclass(frozen=True, slots=True)
class Entry:
    """One slot, as read."""

    state: Seen
    job: int | None
    since: float
    taken: int
    accepted: int


class Scoreboard:
    """Slots for `size` workers in shared memory.

    Args:
        size: How many workers can be alive at once.

    Examples:
        >>> board = Scoreboard(2)
        >>> slot = board.claim()
        >>> board.read(slot).state
        <Seen.STARTING: 1>
        >>> Writer(board, slot).busy(3, 10.0); board.read(slot)
        Entry(state=<Seen.BUSY: 3>, job=3, since=10.0, taken=0, accepted=0)
    """

    def __init__(self, size: int) -> None:
        self.size = max(size, 1)
        self.memory = mmap.mmap(-1, self.size * SLOT_SIZE)
        self.free = list(range(self.size - 1, -1, -1))

    def claim(self) -> int:
        """Take a free slot for a new worker and mark it STARTING.

        Raises:
            IndexError: If every slot is in use.
        """
        slot = self.free.pop()
        offset = slot * SLOT_SIZE
        self.memory[offset:offset + SLOT_SIZE] = bytes(SLOT_SIZE)
        SLOT.pack_into(self.memory, offset + 1, -1, time.monotonic(), 0, 0)
        self.memory[offset] = Seen.STARTING
        return slot

    def release(self, slot: int) -> None:
        """Give a reaped worker's slot back."""
        self.memory[slot * SLOT_SIZE] = Seen.FREE
        self.free.append(slot)

    def read(self, slot: int) -> Entry:
        """Read one slot."""
        offset = slot * SLOT_SIZE
        state = Seen(self.memory[offset])
        job, since, taken, accepted = SLOT.unpack_from(self.memory, offset + 1)
        return Entry(state, None if job < 0 else job, since, taken, accepted)

    def close(self) -> None:
        """Unmap the memory (the master, at its end)."""
        self.memory.close()


class Writer:
    """A worker's own slot: the only part of the scoreboard it writes.

    Args:
        board: The scoreboard (inherited across the fork).
        slot: The worker's slot.
    """

    __slots__ = ("accepted", "memory", "offset", "taken")

    def __init__(self, board: Scoreboard, slot: int) -> None:
        self.memory = board.memory
        self.offset = slot * SLOT_SIZE
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
