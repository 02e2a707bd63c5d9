"""Faults: a handler that hangs is ended by its `timeout`, and only its request is lost.

A handler that spins in Python, or blocks in a system call, under
``timeout(0.3)`` is killed by SIGALRM; a request held meanwhile in another
worker completes, and the master replaces the dead worker. (The watchdog's
semantics, nesting and disarming: ``test_timeouts.py``; a hung worker
without a timeout ended by the graceful-stop deadline:
``test_stop.py::test_the_graceful_deadline_kills_workers_still_busy``; the
same for HTTP handlers under ``response_timeout``:
``tests/layer3_http/test_hostile_slow.py``.)
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prefork_support import FORK, ask, connect, read_line, serve, stats

FAULT_SERVER = Path(__file__).resolve().parent.parent / "hostile_apps" / "fault_server.py"
LIMIT = 0.3


@pytest.mark.parametrize(("command", "says"), [("spin", b"spinning"), ("block", b"blocking")],
                         ids=["spinning", "blocked in select"])
def test_a_hanging_handler_is_killed_by_its_timeout(command: str, says: bytes) -> None:
    with serve("pre_fork=2", "min_fork=2", "max_fork=2", "fork_delay=0.01",
               script=FAULT_SERVER) as server:
        server.wait(stats(total=2, idle=2))
        with connect(server.port) as held, connect(server.port) as hanging:
            held.sendall(b"hold\n")
            neighbour = int(read_line(held).split()[1])
            mark = server.mark()
            hanging.sendall(f"{command} {LIMIT}\n".encode())
            word, pid = read_line(hanging).split()
            started = time.monotonic()
            assert word == says
            victim = int(pid)
            try:
                assert hanging.recv(100) == b""
            except ConnectionResetError:
                pass
            assert time.monotonic() - started < LIMIT + 10.0
            exit_index, _ = server.wait(
                rf"worker {victim} was killed by signal 14 \(SIGALRM\)".encode(), mark)
            held.sendall(b"go\n")
            assert read_line(held) == f"done {neighbour}\n".encode()
        server.wait(FORK, exit_index)
        server.wait(stats(total=2, idle=2), exit_index)
        assert int(ask(server.port, "pid")) not in (victim, 0)
