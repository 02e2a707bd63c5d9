"""The sizing rules of a pool, driven by a plain number for a clock (no processes)."""

from __future__ import annotations

import itertools
import math

import pytest

from layer2_prefork import PoolOptions
from layer2_prefork._config import TCP, Interval, Main
from layer2_prefork._errors import ProtocolError
from layer2_prefork.master._pool_state import PoolState, State
from layer2_prefork.master._schedule import Schedule, next_strict_due

pids = itertools.count(1000)


def grow(pool: PoolState, now: float, *, prepare: bool = True) -> list[float]:
    """Fork whenever due, from ``now`` on, until the pool wants no more; return fork times."""
    times = []
    while pool.wants_fork():
        now = max(now, pool.next_fork)
        assert pool.fork_due(now)
        pid = next(pids)
        pool.forked(pid, now)
        if prepare:
            pool.became_idle(pid, now)
        times.append(now)
    return times


def test_converges_to_min_fork_one_fork_per_fork_delay() -> None:
    pool = PoolState(PoolOptions(pre_fork=1, fork_delay=0.25), now=10.0)
    assert grow(pool, 10.0) == [10.0, 10.25]  # min_fork defaults to 2
    counts = pool.counts()
    assert (counts.total, counts.idle) == (2, 2)
    assert not pool.fork_due(100.0)


def test_keeps_pre_fork_spare_workers_up_to_max_fork() -> None:
    pool = PoolState(PoolOptions(pre_fork=2, min_fork=2, max_fork=5, fork_delay=0.1), now=0.0)
    grow(pool, 0.0)
    for busy in range(3):  # each dispatch eats a spare; the pool forks a new one
        pid = pool.next_idle()
        assert pid is not None
        pool.dispatched(pid, 0)
        grow(pool, 1.0 + busy)
    counts = pool.counts()
    assert (counts.total, counts.busy, counts.idle) == (5, 3, 2)
    pid = pool.next_idle()
    assert pid is not None
    pool.dispatched(pid, 0)
    assert not pool.wants_fork()  # at max_fork, even with one spare only


def test_a_starting_worker_counts_as_spare() -> None:
    pool = PoolState(PoolOptions(pre_fork=1, min_fork=1, fork_delay=0.0), now=0.0)
    pool.forked(next(pids), 0.0)  # still in prepare: no second fork for pre_fork
    assert not pool.wants_fork()


def test_prepare_failure_slows_forking_until_a_worker_becomes_idle() -> None:
    options = PoolOptions(pre_fork=1, min_fork=1, fork_delay=0.1, fork_error_delay=2.0)
    pool = PoolState(options, now=0.0)
    pid = next(pids)
    pool.forked(pid, 0.0)
    assert pool.exited(pid, 1, 0.05) == (None, True)
    assert not pool.fork_due(1.0) and pool.fork_due(2.05)
    pid = next(pids)
    pool.forked(pid, 2.05)
    assert pool.next_fork == pytest.approx(4.05)  # still paced by the error delay
    pool.became_idle(pid, 2.1)
    assert not pool.error_pacing


def test_a_fork_error_slows_forking() -> None:
    pool = PoolState(PoolOptions(fork_delay=0.1, fork_error_delay=3.0), now=0.0)
    pool.fork_failed(0.0)
    assert pool.next_fork == 3.0


def test_a_normal_exit_earns_an_immediate_replacement() -> None:
    pool = PoolState(PoolOptions(pre_fork=1, min_fork=1, fork_delay=60.0), now=0.0)
    grow(pool, 0.0)
    first = pool.next_idle()
    assert first is not None
    pool.dispatched(first, 0)
    assert pool.next_fork == 60.0  # a spare would be due only a fork_delay after the fork
    pool.exited(first, 0, 1.0)
    assert pool.fork_due(1.0)


def test_a_crash_is_replaced_at_the_normal_pace() -> None:
    pool = PoolState(PoolOptions(pre_fork=1, min_fork=1, fork_delay=5.0), now=0.0)
    grow(pool, 0.0)
    pid = pool.next_idle()
    assert pid is not None
    pool.dispatched(pid, 0)
    assert pool.exited(pid, -9, 1.0) == (0, False)
    assert not pool.fork_due(1.0) and pool.fork_due(5.0)


def test_surplus_idle_workers_retire_one_per_exit_delay() -> None:
    pool = PoolState(PoolOptions(pre_fork=1, min_fork=1, max_fork=4, exit_delay=10.0,
                                 fork_delay=0.0), now=0.0)
    for pid in (1, 2, 3, 4):
        pool.forked(pid, 0.0)
        pool.became_idle(pid, 0.0)
    assert pool.to_retire(0.0) == []  # the surplus clock starts
    assert pool.next_deadline() == 10.0
    assert pool.to_retire(9.9) == []
    retired = []
    for now in (10.0, 20.0, 30.0, 40.0):
        for pid, reason in pool.to_retire(now):
            assert reason == "exit_delay"
            pool.stopping(pid, dismissed=True)
            retired.append((now, pid))
    assert retired == [(10.0, 1), (20.0, 2), (30.0, 3)]  # longest idle first; min_fork stays
    assert pool.counts().total == 1


def test_a_busy_pool_has_no_surplus() -> None:
    pool = PoolState(PoolOptions(pre_fork=1, min_fork=1, exit_delay=1.0), now=0.0)
    for pid in (1, 2):
        pool.forked(pid, 0.0)
        pool.became_idle(pid, 0.0)
    pool.to_retire(0.0)
    pool.dispatched(1, 0)  # idle == pre_fork now: the clock stops
    assert pool.to_retire(5.0) == []
    assert pool.surplus_since is None


def test_idle_timeout_retires_regardless_of_min_fork() -> None:
    pool = PoolState(PoolOptions(pre_fork=1, min_fork=2, idle_timeout=3.0), now=0.0)
    for pid, at in ((1, 0.0), (2, 1.0)):
        pool.forked(pid, at)
        pool.became_idle(pid, at)
    assert pool.next_deadline() == 3.0
    assert pool.to_retire(2.9) == []
    assert pool.to_retire(3.5) == [(1, "idle_timeout")]


def test_idle_timeout_zero_means_never() -> None:
    pool = PoolState(PoolOptions(pre_fork=1, min_fork=1), now=0.0)
    grow(pool, 0.0)
    assert pool.to_retire(1e9) == []
    assert pool.next_deadline() == math.inf


def test_work_goes_to_the_worker_idle_the_longest() -> None:
    pool = PoolState(PoolOptions(pre_fork=3, min_fork=3), now=0.0)
    for pid, at in ((1, 0.0), (2, 1.0), (3, 2.0)):
        pool.forked(pid, at)
        pool.became_idle(pid, at)
    order = []
    for now in (3.0, 4.0, 5.0, 6.0):
        pid = pool.next_idle()
        assert pid is not None
        pool.dispatched(pid, 0)
        pool.became_idle(pid, now)
        order.append(pid)
    assert order == [1, 2, 3, 1]


def test_an_idle_worker_saying_idle_again_breaks_the_protocol() -> None:
    pool = PoolState(PoolOptions(), now=0.0)
    pool.forked(1, 0.0)
    pool.became_idle(1, 0.0)
    with pytest.raises(ProtocolError):
        pool.became_idle(1, 0.1)


def test_a_dismissed_worker_that_never_became_idle_is_no_prepare_failure() -> None:
    pool = PoolState(PoolOptions(), now=0.0)
    pool.forked(1, 0.0)
    pool.stopping(1, dismissed=True)
    assert pool.workers[1].state is State.STOPPING
    assert pool.exited(1, -9, 0.1) == (None, False)


# --- timers ------------------------------------------------------------------

def test_an_interval_is_due_delay_after_its_completion() -> None:
    schedule = Schedule([TCP("::", 0), Interval("tick", 2.0)], now=0.0)
    assert 0 not in schedule and 1 in schedule
    assert schedule.due(1.9) == [] and schedule.due(2.0) == [1]
    schedule.started(1)
    assert schedule.due(100.0) == []  # runs never overlap
    schedule.completed(1, 7.0)
    assert schedule.next_deadline() == 9.0


def test_a_strict_interval_keeps_its_grid_and_collapses_missed_runs() -> None:
    schedule = Schedule([Interval("tick", 2.0, strict=True)], now=0.0)
    schedule.started(0)
    schedule.completed(0, 2.5)
    assert schedule.next_deadline() == 4.0
    schedule.started(0)
    schedule.completed(0, 11.0)  # due at 4, 6, 8, 10 missed: one run now, due 10
    assert schedule.due(11.0) == [0]
    schedule.started(0)
    schedule.completed(0, 11.1)
    assert schedule.next_deadline() == 12.0


@pytest.mark.parametrize(("due", "now", "expected"), [
    (0.0, 0.5, 1.0), (0.0, 1.0, 1.0), (0.0, 3.7, 3.0), (5.0, 5.0, 6.0),
])
def test_next_strict_due(due: float, now: float, expected: float) -> None:
    assert next_strict_due(due, 1.0, now) == expected


def test_main_runs_once() -> None:
    schedule = Schedule([Main("batch")], now=5.0)
    assert schedule.has_main() and not schedule.main_done()
    assert schedule.due(5.0) == [0]
    schedule.started(0)
    schedule.completed(0, 6.0)
    assert schedule.main_done() and schedule.due(100.0) == []
    assert Schedule([Interval("tick", 1)], now=0.0).main_done()
