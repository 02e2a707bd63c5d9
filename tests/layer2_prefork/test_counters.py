"""Counters and `snapshot()`: sums that outlive workers, exits by cause, states per pool.

A real server (``scripts/counters_server.py``) counts in pool 0's one
worker and reports `snapshot()` from pool 1's. Every wait is on an answer
or a log line: a worker counts before it answers, and the master folds a
reaped worker's counters in before it logs the exit.
"""

from __future__ import annotations

import json
import os
import re
import signal
from typing import Any

import pytest
from prefork_support import EXIT, SCRIPTS, Server, ask, serve_and_reap

from layer2_prefork import Counters, StartupError, snapshot
from layer2_prefork._scoreboard import ExitCause, HeldReason, Scoreboard, Writer

pytestmark = pytest.mark.timeout(60)

SCRIPT = SCRIPTS / "counters_server.py"


def read_snapshot(server: Server) -> dict[str, Any]:
    port = int(server.program.wait_for_line(rb"snapshot on port (\d+)").group(1))
    data: dict[str, Any] = json.loads(ask(port, ""))
    return data


def ask_ending(port: int, command: str) -> None:
    """Send a command whose worker dies: the connection ends (closed or reset)."""
    try:
        assert ask(port, command) == b""
    except ConnectionResetError:
        pass


def exits_after(server: Server, start: int, count: int) -> int:
    """Wait for `count` exits of pool 0 from line `start`; return the index after the last."""
    index, _ = server.wait_nth(EXIT, count, start)
    return index + 1


def test_counters_survive_their_workers_and_exits_have_causes() -> None:
    with serve_and_reap(script=SCRIPT) as server:
        for size in range(1, 6):
            assert ask(server.port, f"hit {size}") == b"ok\n"
        first = read_snapshot(server)
        work, report = first["pools"]
        assert work["counters"] == {"hits": 5, "bytes": 15}
        assert report["counters"] == {"hits": 0, "bytes": 0}
        assert (work["starting"], work["idle"], work["busy"]) == (0, 1, 0)
        assert report["busy"] == 1  # the worker that reads the snapshot
        assert work["accepted"] + work["taken"] == 5
        assert set(first["held"]) == {reason.name.lower() for reason in HeldReason}

        start = server.mark()
        os.kill(int(ask(server.port, "pid")), signal.SIGKILL)
        start = exits_after(server, start, 1)
        ask_ending(server.port, "crash")
        start = exits_after(server, start, 1)
        ask_ending(server.port, "stall")
        start = exits_after(server, start, 1)
        assert ask(server.port, "retire") == b"bye\n"
        start = exits_after(server, start, 1)
        for _ in range(10):  # the fresh worker's max_requests
            assert ask(server.port, "hit 100") == b"ok\n"
        exits_after(server, start, 1)

        work = read_snapshot(server)["pools"][0]
        assert work["counters"] == {"hits": 15, "bytes": 1015}
        assert work["accepted"] + work["taken"] == 5 + 1 + 1 + 1 + 1 + 10
        assert {cause: count for cause, count in work["exits"].items() if count} == {
            "signal": 1, "crash": 1, "timeout": 1, "handler": 1, "max_requests": 1}
        server.wait(rb"pool 0: forked worker", start)


def test_snapshot_outside_a_server_and_late_counters() -> None:
    with pytest.raises(StartupError):
        snapshot()
    with pytest.raises(ValueError, match="already declared"):
        Counters("twice", "twice")


def test_a_reaped_worker_is_folded_in_exactly_once() -> None:
    board = Scoreboard(2, pools=2, counters=2)
    slot = board.claim(1)
    writer = Writer(board, slot)
    cells = writer.cells()
    cells[0] += 3
    cells[1] += 40
    writer.busy(0, 1.0, accepted=True)
    live = board.totals()
    assert live.counters == ((0, 0, 0, 0), (0, 1, 3, 40))
    assert live.states == ((0, 0, 0), (0, 0, 1))
    writer.leaving(ExitCause.MAX_REQUESTS)
    writer.leaving(ExitCause.HANDLER)  # the first cause said wins
    assert board.cause(slot) is ExitCause.MAX_REQUESTS
    cells.release()
    board.retire(slot, 1, board.cause(slot))
    folded = board.totals()
    assert folded.counters == live.counters
    assert folded.states == ((0, 0, 0), (0, 0, 0))
    assert folded.exits[1][ExitCause.MAX_REQUESTS] == 1 and sum(folded.exits[0]) == 0
    again = board.claim(0)  # the slot comes back zeroed
    assert again == slot and Writer(board, again).cells().tolist() == [0, 0]
    board.publish_held([1, 2, 3, 4, 5])
    assert board.totals().held == (1, 2, 3, 4, 5)
    assert re.fullmatch(r"\d+", str(board.memory[0]))  # the sequence is even again
    assert board.memory[0] % 2 == 0
