"""Hidden tests for part 2's exercises (not in the hand-out; run by tools/grade.py)."""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import time
from pathlib import Path

from hidden_support import TIMEOUT, connect, read_line
from support import Program, example


def wait_lines(program: Program, pattern: bytes, count: int) -> list[re.Match[bytes]]:
    """Wait until `count` output lines match; return their matches."""
    regex = re.compile(pattern)
    found: list[re.Match[bytes]] = []
    index = 0
    while len(found) < count:
        program.wait_for_line(regex, TIMEOUT, index)
        while index < len(program.lines) and len(found) < count:
            if match := regex.search(program.lines[index]):
                found.append(match)
            index += 1
    return found


def group_is_empty(program: Program) -> bool:
    try:
        os.killpg(program.pid, 0)
    except ProcessLookupError:
        return True
    return False


def stops_and_leaves_nothing(program: Program) -> None:
    assert program.stop(signal.SIGTERM, TIMEOUT) == 0, program.output()
    assert group_is_empty(program), "workers left behind"


def readable_within(sock: socket.socket, seconds: float) -> bool:
    return bool(select.select([sock], [], [], seconds)[0])


def test_ex1_an_idle_server_stops_at_once_and_every_child_exits_0() -> None:
    with example("layer2/solutions/ex1_graceful.py", "--workers", "4") as (program, port):
        children = {int(m[1]) for m in wait_lines(program, rb"^worker (\d+) started$", 4)}
        with connect(port) as sock:  # a finished conversation does not delay the stop
            assert read_line(sock).startswith(b"worker ")
        began = time.monotonic()
        stops_and_leaves_nothing(program)
        assert time.monotonic() - began < 5
    exits = re.findall(rb"^worker (\d+) exited with status 0$", program.output().encode(), re.M)
    assert {int(pid) for pid in exits} == children


def test_ex2_without_a_take_over_it_is_an_ordinary_server(tmp_path: Path) -> None:
    path = str(tmp_path / "handoff.sock")
    with example("layer2/solutions/ex2_handoff.py", "--handoff", path) as (program, port):
        for _ in range(3):
            with connect(port) as sock:
                assert read_line(sock) == b"server %d\n" % program.pid
        assert program.stop(signal.SIGTERM, TIMEOUT) == 0, program.output()


def test_ex3_polite_workers_are_never_killed() -> None:
    with example("layer2/solutions/ex3_guard.py", "--workers", "2") as (program, port):
        wait_lines(program, rb"^worker \d+ says I$", 2)
        pids = set()
        for number in range(6):
            with connect(port) as sock:
                match = re.match(rb"worker (\d+)", read_line(sock))
                assert match
                pids.add(int(match[1]))
                sock.sendall(b"hello %d\n" % number)
                assert read_line(sock).strip() != b""
        assert len(pids) <= 2
        stops_and_leaves_nothing(program)
    assert b"broke the protocol" not in program.output().encode()


def test_ex4_one_connection_per_worker() -> None:
    with example("layer2/solutions/ex4_recycle.py", "--connections", "1") as (program, port):
        pids = []
        for _ in range(3):
            with connect(port) as sock:
                match = re.fullmatch(rb"worker (\d+) connection 1 of 1\n", read_line(sock))
                assert match
                pids.append(int(match[1]))
        assert len(set(pids)) == 3
        stops_and_leaves_nothing(program)


def test_ex5_young_files_stay_and_are_counted(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    old = time.time() - 600
    (spool / "old").touch()
    os.utime(spool / "old", (old, old))
    for name in ("a", "b", "c"):
        (spool / name).touch()
    options = ("--spool", str(spool), "--every", "0.2", "--max-age", "300")
    with example("layer2/solutions/ex5_cleanup.py", *options) as (program, port):
        program.wait_for_line(rb"cleanup removed 1 files$", TIMEOUT)
        with connect(port) as sock:
            assert read_line(sock) == b"3 files waiting\n"
        stops_and_leaves_nothing(program)
    assert sorted(path.name for path in spool.iterdir()) == ["a", "b", "c"]


def test_ex6_two_slow_workers_run_two_jobs_and_the_third_waits() -> None:
    with example("layer2/solutions/ex6_two_pools.py", "--slow-workers", "2") as (program, port):
        slow_port = int(program.wait_for_line(rb"^slow jobs on port (\d+)$", TIMEOUT)[1])
        with connect(slow_port) as one, connect(slow_port) as two, \
                connect(slow_port) as three:
            started = set()
            for job in (one, two):
                job.sendall(b"JOB\n")
                match = re.fullmatch(rb"started in worker (\d+)\n", read_line(job))
                assert match
                started.add(int(match[1]))
            assert len(started) == 2
            three.sendall(b"JOB\n")
            assert not readable_within(three, 0.3)
            with connect(port) as quick:
                assert read_line(quick).startswith(b"quick answer from worker")
            one.sendall(b"end\n")
            assert read_line(one) == b"done\n"
            assert read_line(three).startswith(b"started in worker")
            for job in (two, three):
                job.sendall(b"end\n")
                assert read_line(job) == b"done\n"
        stops_and_leaves_nothing(program)


def test_ex7_a_line_in_two_pieces_within_the_timeout_is_answered() -> None:
    options = ("--idle", "5", "--line-timeout", "5")
    with example("layer2/solutions/ex7_deadlines.py", *options) as (program, port):
        with connect(port) as sock:
            sock.sendall(b"in two ")
            sock.sendall(b"pieces\n")
            answer = read_line(sock)
            assert answer.startswith(b"worker ") and answer.endswith(b": in two pieces\n")
            sock.sendall(b"and again\n")
            assert read_line(sock).endswith(b": and again\n")
        stops_and_leaves_nothing(program)
