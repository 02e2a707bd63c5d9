"""A reload: every worker replaced by one of a new generation, pool by pool, none refused.

`SIGUSR2` makes the master start a `Reload`; the master loop then calls
`Reload.step` once a round until it says the reload is over. For each
pool, in declaration order::

    new generation   the pool's `generation` goes up by one: every worker
                     forked from now on (by the reload or by the pool's own
                     rules) belongs to the new one
    loop while the pool has a worker of an older generation not yet going:
        fork         one trial worker of the new generation, beyond the
                     pool's size (the pool never has fewer ready workers
                     than before)
        wait         until the scoreboard shows it idle or busy: its
                     `prepare` succeeded (layer 3 imports the application
                     there, so it runs the new code)
        retire       one old worker (`R`), the idle first: a busy one
                     finishes its work, hands its keep-alive connection
                     back to the master (`park`) and leaves; one still
                     busy `graceful_timeout` seconds later is killed

    a trial worker dies before it is ready, or is not ready
    within graceful_timeout        -> the reload is abandoned: the old
                                      workers that are left serve on

The listening sockets stay open throughout, and the connections the
master holds or finishes stay where they are: the pool's queue and
listeners go to whichever worker is idle, old or new. A worker that is
ready has loaded the new code; until one is, no old worker is retired,
which is why a broken deploy costs nothing but its one log entry.

The reload only decides; `Workers` forks, tells and kills.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from .._logging import logger
from ._pool_runtime import PoolRuntime
from ._table import Workers, describe_exit


class Outcome(Enum):
    """What a round of a reload came to."""

    GOING = "going"
    DONE = "done"
    FAILED = "failed"


@dataclass(slots=True)
class Reload:
    """One reload of every pool, its progress from round to round.

    Args:
        number: The reload's number (1 for the first), for the log.
        pools: The pools to reload, in order.
        timeout: Seconds a trial worker may take to be ready, and a retired
            busy worker to finish (`graceful_timeout`).
        started: When the reload began (`time.monotonic()`).
    """

    number: int
    pools: deque[PoolRuntime]
    timeout: float
    started: float
    begun: bool = False
    """Whether the first pool in `pools` has started its new generation."""
    trial: int | None = None
    """The trial worker that must become ready before the next old worker goes."""
    trial_deadline: float = math.inf
    replaced: int = 0
    failure: str = ""
    """Why the reload was abandoned (one line, for the log)."""

    @classmethod
    def begin(cls, number: int, pools: Sequence[PoolRuntime], timeout: float,
              now: float) -> Reload:
        """Start reload `number` of `pools`."""
        logger.info("reload %d: loading the application afresh, pool by pool", number)
        return cls(number, deque(pools), timeout, now)

    def step(self, workers: Workers, now: float) -> Outcome:
        """Move the reload on as far as it can go now; say where it is."""
        while self.pools:
            pool = self.pools[0]
            if not self.begun:
                generation = pool.state.new_generation()
                logger.info("pool %d: generation %d starts", pool.index, generation)
                self.begun = True
            outcome = self._pool_step(pool, workers, now)
            if outcome is not Outcome.DONE:
                return outcome
            self.pools.popleft()
            self.begun = False
        logger.info("reload %d done: %d worker(s) replaced in %.2f s", self.number,
                    self.replaced, now - self.started)
        return Outcome.DONE

    def next_deadline(self) -> float:
        """When the trial worker's time is up (`inf`: none is waited for)."""
        return self.trial_deadline if self.trial is not None else math.inf

    def _pool_step(self, pool: PoolRuntime, workers: Workers, now: float) -> Outcome:
        state = pool.state
        if self.trial is not None:
            if not state.is_ready(self.trial):
                return self._trial_waits(pool, workers, now)
            self.trial, self.trial_deadline = None, math.inf
            old = state.old_workers()
            if old:
                workers.retire(pool, old[0], f"reload {self.number}", now + self.timeout)
                self.replaced += 1
        if not state.old_workers():
            return Outcome.DONE
        self.trial = workers.fork(pool, now, trial=True)
        if self.trial is None:
            return self._fail(f"pool {pool.index}: cannot fork a worker of the new generation")
        self.trial_deadline = now + self.timeout
        return Outcome.GOING

    def _trial_waits(self, pool: PoolRuntime, workers: Workers, now: float) -> Outcome:
        """The trial worker is not ready yet: wait, or give up if it died or took too long."""
        assert self.trial is not None
        code = workers.trial_exits.pop(self.trial, None)
        if code is not None or self.trial not in pool.state.workers:
            how = "died" if code is None else describe_exit(code)
            return self._fail(f"pool {pool.index}: worker {self.trial} of the new generation "
                              f"{how} before it was ready (its log is above)")
        if now < self.trial_deadline:
            return Outcome.GOING
        workers.kill(workers.by_pid[self.trial], "not ready in time", quietly=True)
        return self._fail(f"pool {pool.index}: worker {self.trial} of the new generation was "
                          f"not ready within {self.timeout:g} s")

    def _fail(self, reason: str) -> Outcome:
        self.failure = (f"reload {self.number} abandoned: {reason}; the old workers keep "
                        f"serving ({self.replaced} replaced)")
        self.trial, self.trial_deadline = None, math.inf
        self.pools.clear()
        return Outcome.FAILED
