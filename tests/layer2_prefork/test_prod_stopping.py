"""A graceful stop tells busy workers: `stopping()` and `stop_fd()` in a handler.

The handler of ``tests/prod_apps/stopping_server.py`` waits on its client
and on `stop_fd()`; a graceful stop must wake it at once (the worker
returns and the master exits long before the graceful deadline), while a
worker that is given work during the stop still serves it.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from prefork_support import connect, read_line, serve, stats

from layer2_prefork import stop_fd, stopping

STOPPING_SERVER = Path(__file__).resolve().parents[1] / "prod_apps" / "stopping_server.py"


def test_outside_a_worker_nothing_is_stopping() -> None:
    assert stopping() is False
    assert stop_fd() is None


def test_a_graceful_stop_wakes_a_waiting_handler_at_once() -> None:
    with serve("pre_fork=2", "min_fork=2", "max_fork=2", "fork_delay=0.01",
               options=("-s", "-g", "120"), script=STOPPING_SERVER) as server:
        server.wait(stats(total=2, idle=2))
        with connect(server.port) as first, connect(server.port) as second:
            assert read_line(first).startswith(b"waiting")
            assert read_line(second).startswith(b"waiting")
            first.sendall(b"hello\n")
            assert read_line(first) == b"echo hello\n"  # the wait goes on after input
            mark = server.mark()
            started = time.monotonic()
            server.program.proc.send_signal(signal.SIGTERM)
            assert read_line(first) == b"stopping\n"
            assert read_line(second) == b"stopping\n"
            assert first.recv(100) == b"" and second.recv(100) == b""
            assert server.stop(signal.SIGTERM, timeout=60) == 0
            assert time.monotonic() - started < 60  # far below the 120 s deadline
            server.wait(rb"INFO stopped$", mark)
            assert not server.matches(rb"killed by signal", mark)


def test_held_connections_are_served_before_busy_workers_are_told() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01",
               options=("-s", "-g", "120"), script=STOPPING_SERVER) as server:
        server.wait(stats(total=1, idle=1))
        busy = connect(server.port)
        assert read_line(busy).startswith(b"waiting")
        queued = [connect(server.port) for _ in range(3)]  # in the backlog: no idle worker
        mark = server.mark()
        server.program.proc.send_signal(signal.SIGTERM)
        server.wait(rb"graceful stop \(SIGTERM\)", mark)
        busy.close()  # the worker is not told while held connections need it
        for sock in queued[:-1]:
            assert read_line(sock).startswith(b"waiting")  # the same worker takes each
            sock.close()
        assert read_line(queued[-1]).startswith(b"waiting")
        assert read_line(queued[-1]) == b"stopping\n"  # none held any more: told
        queued[-1].close()
        assert server.stop(signal.SIGTERM, timeout=60) == 0
        forks = server.matches(rb"forked worker", mark)
        assert forks == []  # one worker served them all
