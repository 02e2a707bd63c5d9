"""A stop that went as asked reads as a stop: INFO lines, no WARNING per worker.

The master marks the workers it kills itself (a fast stop, the graceful
deadline) and counts a worker that died of the stop's own signal (Ctrl-C
reaches the whole process group) as asked too. What nobody asked for (a
worker killed from outside, a crash) stays a WARNING.
"""

from __future__ import annotations

import os
import re
import signal

import pytest
from prefork_support import FORK, assert_gone, connect, pids, read_line, serve

LEVEL = re.compile(rb"^\S+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) (.*)$")


def logged(lines: list[bytes], least: str = "INFO") -> list[tuple[str, str]]:
    """The (level, message) of every log line at `least` or above."""
    order = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    found = []
    for line in lines:
        match = LEVEL.match(line)
        if match and order.index(match.group(1).decode()) >= order.index(least):
            found.append((match.group(1).decode(), match.group(2).decode()))
    return found


@pytest.mark.parametrize("group", [False, True], ids=["master", "process-group"])
def test_fast_stop_by_sigint_is_two_info_lines(group: bool) -> None:
    with serve("pre_fork=2", "min_fork=2", "max_fork=2", "fork_delay=0.01",
               options=()) as server:
        server.wait_nth(FORK, 2)
        with connect(server.port) as busy:  # one worker busy in a handler
            busy.sendall(b"hold\n")
            assert read_line(busy).startswith(b"held")
            processes = pids(server)
            mark = server.mark()
            if group:  # what Ctrl-C in a terminal does: every process gets SIGINT
                os.killpg(server.program.pid, signal.SIGINT)
            assert server.stop(signal.SIGINT) == 0
            assert busy.recv(100) == b""
        assert_gone(processes)
        lines = logged(server.lines[mark:])
        assert [level for level, _ in lines] == ["INFO", "INFO"], lines
        assert lines[0][1] == "fast stop (SIGINT): listeners closed, killing 2 workers"
        assert lines[1][1] == "stopped"


def test_graceful_stop_by_sigterm_is_two_info_lines() -> None:
    with serve("pre_fork=2", "min_fork=2", "max_fork=2", "fork_delay=0.01",
               options=()) as server:
        server.wait_nth(FORK, 2)
        processes = pids(server)
        mark = server.mark()
        assert server.stop(signal.SIGTERM) == 0
        assert_gone(processes)
        lines = logged(server.lines[mark:])
        assert [level for level, _ in lines] == ["INFO", "INFO"], lines
        assert lines[0][1].startswith("graceful stop (SIGTERM): listeners closed")
        assert lines[1][1] == "stopped"


def test_the_per_worker_lines_of_a_stop_are_debug() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", options=("-d",)) as server:
        _, fork = server.wait(FORK)
        worker = int(fork.group(2))
        mark = server.mark()
        assert server.stop(signal.SIGINT) == 0
        debug = [message for level, message in logged(server.lines[mark:], "DEBUG")
                 if level == "DEBUG"]
        assert f"pool 0: killing worker {worker} (SIGINT)" in debug
        ends = (f"pool 0: worker {worker} was killed by signal 9 (SIGKILL)",
                f"pool 0: worker {worker} exited with status 0")  # it saw its listener shut first
        assert any(end in debug for end in ends), debug


def test_a_worker_killed_from_outside_is_still_a_warning() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01",
               options=()) as server:
        _, fork = server.wait(FORK)
        victim = int(fork.group(2))
        mark = server.mark()
        os.kill(victim, signal.SIGKILL)
        index, _ = server.wait(rf"worker {victim} was killed by signal 9".encode(), mark)
        assert b" WARNING " in server.lines[index]
        server.wait(FORK, index)  # replaced
        processes = pids(server)
        mark = server.mark()
        assert server.stop(signal.SIGINT) == 0
        assert_gone(processes)
        assert [level for level, _ in logged(server.lines[mark:])] == ["INFO", "INFO"]


def test_the_graceful_deadline_is_a_warning() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", options=("-g", "0.2")) as server:
        server.wait(FORK)
        with connect(server.port) as stuck:
            stuck.sendall(b"hold\n")
            assert read_line(stuck).startswith(b"held")
            mark = server.mark()
            assert server.stop(signal.SIGTERM) == 0
        lines = logged(server.lines[mark:])
        assert ("WARNING", "fast stop (the graceful stop deadline passed): listeners closed, "
                "killing 1 worker") in lines, lines
        assert not [line for line in lines if "was killed by signal" in line[1]], lines
