"""Interval listeners fire on time, in both modes, one run at a time."""

from __future__ import annotations

import re
from itertools import pairwise

from prefork_support import Server, serve

TICK = re.compile(rb"^tick (\w+) ([\d.]+) (\d+)$")


def ticks(server: Server, name: str, count: int) -> list[float]:
    """Wait for ``count`` runs of the interval ``name``; return their start times."""
    pattern = re.compile(rf"^tick {name} ([\d.]+) \d+$".encode())
    server.wait_nth(pattern, count)
    return [float(match.group(1)) for match in server.matches(pattern)][:count]


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in pairwise(times)]


def test_an_interval_waits_its_delay_after_each_completed_run() -> None:
    # The handler of "slow..." takes 0.15 s: starts are at least 0.1 + 0.15 s apart.
    with serve("tcp=0", "interval=slowtick:0.1", "pre_fork=1", "min_fork=1") as server:
        spacing = gaps(ticks(server, "slowtick", 4))
        assert all(0.25 * 0.8 <= gap < 0.25 + 5.0 for gap in spacing), spacing


def test_a_strict_interval_keeps_its_schedule() -> None:
    # Due every 0.3 s whatever the 0.15 s handler takes: no drift. Non-strict
    # scheduling would need 4 * (0.3 + 0.15) = 1.8 s for the same four gaps.
    with serve("tcp=0", "interval=slowtick:0.3:strict", "pre_fork=1", "min_fork=1") as server:
        times = ticks(server, "slowtick", 5)
        assert all(gap >= 0.3 * 0.8 for gap in gaps(times)), gaps(times)
        assert times[-1] - times[0] < 4 * 0.3 + 0.3, gaps(times)


def test_missed_strict_runs_collapse_into_one() -> None:
    # Due every 0.05 s, but each run takes 0.15 s: after each run one run
    # follows at once, not a burst of the runs that were missed.
    with serve("tcp=0", "interval=slowtick:0.05:strict", "pre_fork=2") as server:
        spacing = gaps(ticks(server, "slowtick", 5))
        assert all(gap >= 0.15 * 0.8 for gap in spacing), spacing


def test_the_event_names_the_interval_and_timers_share_the_pool() -> None:
    with serve("tcp=0", "interval=alpha:0.05", "interval=beta:0.07", "pre_fork=2",
               "fork_delay=0.01") as server:
        ticks(server, "alpha", 3)
        ticks(server, "beta", 3)
        names = {match.group(1) for match in server.matches(TICK)}
        assert names == {b"alpha", b"beta"}
