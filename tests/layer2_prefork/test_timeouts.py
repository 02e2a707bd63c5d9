"""timeout(...): the watchdog kills, nests, restores, and is disarmed when a worker is idle."""

from __future__ import annotations

import signal
import sys
import time

from prefork_support import EXIT, FORK, SCRIPTS, ask, connect, read_line, serve, stats
from support import running

TIMEOUTS = str(SCRIPTS / "timeouts.py")


def test_timeout_semantics() -> None:
    with running([sys.executable, TIMEOUTS, "semantics"]) as program:
        assert program.proc.wait(20) == 0, program.output()
        program.drain_output(0.5)
        assert program.output().count("ok ") == 6, program.output()


def test_a_sub_limit_kills_an_endless_function() -> None:
    with running([sys.executable, TIMEOUTS, "sub"]) as program:
        program.wait_for_line(rb"^start")
        started = time.monotonic()
        assert program.proc.wait(20) == -signal.SIGALRM
        assert time.monotonic() - started < 10.0
        assert "not killed" not in program.output()


def test_the_shorter_outer_limit_wins() -> None:
    with running([sys.executable, TIMEOUTS, "outer"]) as program:
        program.wait_for_line(rb"^start")
        started = time.monotonic()
        assert program.proc.wait(20) == -signal.SIGALRM  # 0.2 s, not the sub-limit's 30 s
        assert time.monotonic() - started < 10.0


def test_timeout_kills_a_runaway_handler_and_the_pool_recovers() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01") as server:
        server.wait(stats(total=1, idle=1))
        with connect(server.port) as sock:
            sock.sendall(b"spin 0.2\n")
            runaway = int(read_line(sock).split()[1])
            try:
                assert sock.recv(100) == b""
            except ConnectionResetError:
                pass
        exit_index, _ = server.wait(
            rf"worker {runaway} was killed by signal 14 \(SIGALRM\)".encode())
        server.wait(FORK, exit_index)
        assert int(ask(server.port, "pid")) != runaway


def test_the_watchdog_is_disarmed_when_the_worker_becomes_idle() -> None:
    # One worker; it arms 0.2 s and returns. The second tick after that (the
    # interval runs every 0.4 s) comes at least 0.4 s later, in the same worker,
    # which therefore survived its idle time.
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "interval=tick:0.4") as server:
        server.wait(stats(total=1, idle=1))
        worker = int(server.matches(FORK)[0].group(2))
        assert ask(server.port, "arm 0.2") == f"armed {worker}\n".encode()
        mark = server.mark()
        server.wait_nth(rf"^tick tick [\d.]+ {worker}$".encode(), 2, mark)
        assert server.matches(EXIT) == []


def test_a_stale_timer_kept_between_connections_never_kills_the_idle_worker() -> None:
    # "each 0.6" leaves its timer set 0.6 s ahead, kept after the connection
    # (REST_FAR is 0.1 s in that worker); the next tick, 1.5 s after the one
    # just seen, is due after it: the worker is still there only if its idle
    # wait ended and disarmed the timer in time (a tick itself starts disarmed).
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "interval=tick:1.5") as server:
        server.wait(stats(total=1, idle=1))
        worker = int(server.matches(FORK)[0].group(2))
        mark = server.mark()
        server.wait(rf"^tick tick [\d.]+ {worker}$".encode(), mark)
        assert ask(server.port, "each 0.6") == f"each {worker}\n".encode()
        mark = server.mark()
        _, seen = server.wait(
            rf"^tick tick [\d.]+ {worker}$|worker {worker} was killed by signal".encode(), mark)
        assert seen.group(0).startswith(b"tick"), seen.group(0)
        assert server.matches(EXIT) == []
