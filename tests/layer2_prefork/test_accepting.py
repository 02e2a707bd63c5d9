"""Workers accept for themselves; the master holds what is incomplete; the queue carries the rest.

The server is ``scripts/accepting_server.py`` under ``python -m
layer2_prefork -s -d``: a fixed pool, a line protocol whose request is one
line (its `DispatchFilter`), and timers. The master's debug log names every
hop a connection makes: a worker that hands the master a connection whose
head is incomplete (``pool 0 worker PID: HOLD``), the master queueing it
once complete (``pool 0: CONNECT 0 queued``), a worker done with a timer
run (``DONE``). A connection whose head is complete when it is accepted
makes no hop at all. Which worker answers is made certain by stopping the
others (SIGSTOP): a stopped worker takes nothing, neither a new
connection nor work from the queue.

Paths: a complete head served where it was accepted; an incomplete one
held by the master and queued; a head past a message's payload (a memory
file); a stopped worker gets no connection and no timer event; a worker
killed right after its ``H`` loses nothing; timers on schedule through the
queue, and run again when their worker dies during a run (or after it took
the run from the queue, before it started it). After every
test, no process of the server is left.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

import pytest
from prefork_support import (
    FORK,
    SCRIPTS,
    Server,
    connect,
    read_line,
    serve_and_reap,
    stats,
)

SCRIPT = SCRIPTS / "accepting_server.py"
HOLD = re.compile(rb"pool 0 worker (\d+): HOLD$")
QUEUED = re.compile(rb"pool 0: CONNECT 0 queued$")
DONE = re.compile(rb"pool 0 worker (\d+): DONE$")
SLACK = 8.0  # generous upper bounds: the machine is shared


@contextmanager
def accepting(*arguments: str, workers: int = 1) -> Iterator[tuple[Server, list[int]]]:
    """Start the server; yield it and its workers once all are idle."""
    with serve_and_reap(f"workers={workers}", *arguments, options=("-s", "-d"),
                        script=SCRIPT) as server:
        server.wait(stats(total=workers, idle=workers))
        yield server, [int(match.group(2)) for match in server.matches(FORK)]


@contextmanager
def stopped(*pids: int) -> Iterator[None]:
    """Workers that cannot run (SIGSTOP) until the block ends."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:  # (the master kills a worker it finds stopped for a second)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def ask(port: int, line: bytes) -> bytes:
    with connect(port) as sock:
        sock.sendall(line + b"\n")
        return read_line(sock)


def pid_of(answer: bytes) -> int:
    match = re.match(rb"pid=(\d+)", answer)
    assert match, answer
    return int(match.group(1))


# --- where a connection goes ---------------------------------------------------

def test_a_complete_head_is_served_by_the_worker_that_accepted_it() -> None:
    with accepting() as (server, (worker,)):
        for _ in range(3):
            mark = server.mark()
            with stopped(worker):  # the line is there before the worker accepts
                sock = connect(server.port)
                sock.sendall(b"pid\n")
            with sock:
                assert read_line(sock) == f"pid={worker}\n".encode()
            # A hop through the master after it: the master logs in order, so a
            # hand-over of the first connection would be logged before this one.
            with connect(server.port) as later:
                later.sendall(b"pi")
                hold_index, _ = server.wait(HOLD, mark)
                later.sendall(b"d\n")
                assert read_line(later) == f"pid={worker}\n".encode()
            server.wait(QUEUED, hold_index)  # (logged once queued: maybe after the answer)
            assert not server.matches(HOLD, mark, hold_index)  # no hop through the master
            assert not server.matches(QUEUED, mark, hold_index)


def test_an_incomplete_head_is_held_by_the_master_and_queued_once_complete() -> None:
    with accepting() as (server, (worker,)):
        mark = server.mark()
        with connect(server.port) as slow:
            slow.sendall(b"pi")
            hold_index, hold = server.wait(HOLD, mark)
            assert int(hold.group(1)) == worker
            assert ask(server.port, b"pid") == f"pid={worker}\n".encode()  # the worker is free
            server.mark()
            assert not server.matches(QUEUED, mark)  # held, not queued: incomplete
            slow.sendall(b"d\n")
            assert read_line(slow) == f"pid={worker}\n".encode()
            queued_index, _ = server.wait(QUEUED, mark)
            assert hold_index < queued_index
            assert len(server.matches(QUEUED, mark)) == 1


@pytest.mark.parametrize("size", [70_000, 3_000_000])
def test_a_head_past_a_message_payload_arrives_whole(size: int) -> None:
    # Past 65,534 bytes the bytes travel in a memory file, with H and with C.
    line = b"size " + bytes(index % 251 for index in range(size)).replace(b"\n", b"n") + b"\n"
    with accepting(f"max_bytes={8 << 20}") as (server, (worker,)):
        mark = server.mark()
        with connect(server.port) as sock:
            sock.sendall(line[:-1])  # all but its end: the worker hands it over
            server.wait(HOLD, mark)
            sock.sendall(line[-1:])
            answer = read_line(sock)
        server.wait(QUEUED, mark)
        digest = hashlib.sha256(line).hexdigest()
        assert answer == f"pid={worker} size={len(line)} sha={digest}\n".encode()


def test_a_stopped_worker_gets_no_connection_and_no_timer_event() -> None:
    with accepting("interval=tick:0.3", workers=2) as (server, workers):
        # Stop the worker that did not run the last tick: it is idle (the next
        # tick is 0.3 s away), so it holds nothing the test waits for.
        _, last = server.wait(rb"^tick tick [\d.]+ (\d+)$")
        running = int(last.group(1))
        (victim,) = set(workers) - {running}
        with stopped(victim):  # briefly: one stopped for a second is killed and replaced
            mark = server.mark()
            answers = [pid_of(ask(server.port, b"pid")) for _ in range(10)]
            assert victim not in answers  # all answered, none by the stopped worker
            ticks = server.wait_nth(rb"^tick tick [\d.]+ (\d+)$", 2, mark)[0]
            assert victim not in {int(match.group(1)) for match in
                                  server.matches(rb"^tick tick [\d.]+ (\d+)$", mark, ticks + 1)}
        with connect(server.port) as held:  # two workers take work again
            held.sendall(b"hold\n")
            holder = int(read_line(held).split()[1])
            assert pid_of(ask(server.port, b"pid")) != holder
            held.sendall(b"go\n")
            assert read_line(held) == f"done {holder}\n".encode()


def test_a_worker_killed_right_after_handing_over_a_connection_loses_nothing() -> None:
    with accepting("die_after_hold=1", workers=2) as (server, _):
        for round_ in range(3):
            mark = server.mark()
            with connect(server.port) as sock:
                sock.sendall(b"die, right after the hand-over")
                _, hold = server.wait(HOLD, mark)
                victim = int(hold.group(1))
                server.wait(rf"worker {victim} was killed by signal 9".encode(), mark)
                sock.sendall(b" %d\n" % round_)
                answer = read_line(sock)
            assert pid_of(answer) != victim  # served all the same, by another worker
            server.wait(stats(total=2, idle=2), mark)  # the replacement is ready


# --- timers --------------------------------------------------------------------

def tick_times(server: Server, name: str, count: int, start: int = 0) -> list[tuple[float, int]]:
    pattern = re.compile(rf"^tick {name} ([\d.]+) (\d+)$".encode())
    server.wait_nth(pattern, count, start)
    return [(float(match.group(1)), int(match.group(2)))
            for match in server.matches(pattern, start)][:count]


def test_timers_run_on_schedule_through_the_queue() -> None:
    with accepting("interval=tick:0.1", workers=2) as (server, workers):
        runs = tick_times(server, "tick", 6)
        gaps = [b - a for (a, _), (b, _) in pairwise(runs)]
        assert all(0.1 * 0.8 <= gap < 0.1 + SLACK for gap in gaps), gaps
        assert {pid for _, pid in runs} <= set(workers)
        server.wait_nth(DONE, 5)  # each run ends with the worker's D
        server.wait_nth(rb"pool 0: CONNECT 1 queued$", 6)  # each came through the queue


def test_a_worker_killed_during_a_timer_run_makes_the_timer_run_again(tmp_path: Path) -> None:
    with accepting("interval=dying:0.2", f"marker={tmp_path}", workers=2) as (server, _):
        (_, victim), = tick_times(server, "dying", 1)
        exit_index, _ = server.wait(rf"worker {victim} was killed by signal 9".encode())
        (_, first), (_, again) = tick_times(server, "dying", 2)
        assert first == victim and again != victim
        again_index, _ = server.wait(rf"^tick dying [\d.]+ {again}$".encode())
        assert exit_index < again_index
        assert not server.matches(rf"worker {victim}: DONE$".encode())
        tick_times(server, "dying", 3)  # and on schedule after that


def test_a_worker_killed_after_taking_a_timer_run_makes_the_timer_run_again(
        tmp_path: Path) -> None:
    # The worker dies between taking the run from the queue and starting it
    # (its scoreboard slot still says idle): the run is lost with it, and the
    # timer must not wait for its end for ever.
    with accepting("interval=taken:0.2", f"marker={tmp_path}", "die_after_take=1",
                   workers=2) as (server, _):
        exit_index, _ = server.wait(rb"worker \d+ was killed by signal 9")
        server.wait(rb"^tick taken [\d.]+ \d+$", exit_index)
        tick_times(server, "taken", 2)


def test_a_new_connection_waits_for_no_queue() -> None:
    # Workers poll the listeners themselves: with an idle worker, a client's
    # connection is accepted while the master is stopped and cannot queue.
    with accepting() as (server, (worker,)):
        with stopped(server.program.pid), connect(server.port) as sock:
            sock.sendall(b"pid\n")
            assert read_line(sock) == f"pid={worker}\n".encode()
        assert ask(server.port, b"pid") == f"pid={worker}\n".encode()
