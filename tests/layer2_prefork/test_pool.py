"""Pool sizing with real processes: convergence, replacement, pacing, retirement."""

from __future__ import annotations

import os
import signal
from itertools import pairwise

from prefork_support import EXIT, FORK, ask, connect, read_line, serve, stamp, stats


def fork_times(server: object, start: int = 0, stop: int | None = None) -> list[float]:
    return [stamp(line) for line in server.lines[start:stop]  # type: ignore[attr-defined]
            if FORK.search(line)]


def test_the_pool_converges_to_min_fork_then_serves() -> None:
    with serve("pre_fork=1", "fork_delay=0.05") as server:
        server.wait(stats(total=2, idle=2))
        times = fork_times(server)
        assert len(times) == 2  # min_fork defaults to max(pre_fork, 2)
        assert times[1] - times[0] >= 0.05 * 0.8
        pids = {int(match.group(2)) for match in server.matches(FORK)}
        assert int(ask(server.port, "pid")) in pids


def test_the_pool_converges_to_pre_fork_spares() -> None:
    with serve("pre_fork=3", "fork_delay=0.02") as server:
        server.wait(stats(total=3, idle=3))
        times = fork_times(server)
        assert len(times) == 3
        assert all(b - a >= 0.02 * 0.8 for a, b in pairwise(times))


def test_busy_workers_make_the_pool_grow_to_max_fork_and_no_further() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=3", "fork_delay=0.02") as server:
        server.wait(stats(total=1, idle=1))
        held = []
        for count in range(1, 4):
            sock = connect(server.port)
            sock.sendall(b"hold\n")
            assert read_line(sock).startswith(b"held")
            held.append(sock)
            server.wait(stats(total=min(count + 1, 3), busy=count))
        waiting = connect(server.port)  # no idle worker: it waits in the backlog
        waiting.sendall(b"pid\n")
        mark = server.mark()
        held[0].sendall(b"go\n")
        assert read_line(held[0]).startswith(b"done")
        assert read_line(waiting).strip().isdigit()
        server.wait(stats(busy=2), mark)
        assert all(int(match.group(1)) <= 3 for match in server.matches(rb"total=(\d+)"))
        for sock in [*held, waiting]:
            sock.close()


def test_a_killed_worker_is_replaced() -> None:
    with serve("pre_fork=1", "min_fork=2", "fork_delay=0.05") as server:
        server.wait(stats(total=2, idle=2))
        victim = int(server.matches(FORK)[0].group(2))
        mark = server.mark()
        os.kill(victim, signal.SIGKILL)
        exit_index, _ = server.wait(rf"worker {victim} was killed by signal 9".encode(), mark)
        fork_index, fork = server.wait(FORK, exit_index)
        assert int(fork.group(2)) != victim
        server.wait(stats(total=2, idle=2), fork_index)
        assert stamp(server.lines[fork_index]) - stamp(server.lines[exit_index]) < 5.0
        assert int(ask(server.port, "pid")) != victim


def test_a_failing_prepare_slows_forking_to_fork_error_delay() -> None:
    with serve("prepare=raise", "pre_fork=1", "fork_delay=0.01",
               "fork_error_delay=0.3") as server:
        last, _ = server.wait_nth(FORK, 4)
        times = fork_times(server, stop=last + 1)
        gaps = [b - a for a, b in pairwise(times)]
        assert len(gaps) >= 3
        assert all(0.3 * 0.8 <= gap < 0.3 + 5.0 for gap in gaps), gaps
        server.wait(rb"pool 0 worker \d+: RuntimeError: prepare failed on purpose")
        server.wait(rb"failed to prepare; forking at most one worker per fork_error_delay")
        assert all(match.group(3) == b"1" for match in server.matches(EXIT))


def test_idle_workers_retire_after_idle_timeout_and_are_replaced() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01",
               "idle_timeout=0.3") as server:
        first_fork, fork = server.wait(FORK)
        first = int(fork.group(2))
        exit_index, _ = server.wait(rf"worker {first} exited with status 0".encode())
        server.wait(rf"retiring worker {first} \(idle_timeout\)".encode())
        idle_for = stamp(server.lines[exit_index]) - stamp(server.lines[first_fork])
        assert 0.3 * 0.8 <= idle_for < 0.3 + 5.0
        _, replacement = server.wait(FORK, exit_index)
        assert int(replacement.group(2)) != first


def test_surplus_spares_retire_one_per_exit_delay() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=4", "fork_delay=0.01",
               "exit_delay=0.3") as server:
        server.wait(stats(total=1, idle=1))
        held = []
        for count in range(1, 4):
            sock = connect(server.port)
            sock.sendall(b"hold\n")
            assert read_line(sock).startswith(b"held")
            held.append(sock)
            server.wait(stats(total=count + 1, busy=count))
        mark = server.mark()
        for sock in held:
            sock.sendall(b"go\n")
            assert read_line(sock).startswith(b"done")
            sock.close()
        # The surplus clock starts once two workers are idle (lines may skip counts).
        surplus, _ = server.wait(rb"pool 0: stats total=4 idle=[234] ", mark)
        final, _ = server.wait(stats(total=1, idle=1), surplus)
        retired = [index for index in range(surplus, final + 1)
                   if b"(exit_delay)" in server.lines[index]]
        assert len(retired) == 3
        times = [stamp(server.lines[index]) for index in [surplus, *retired]]
        gaps = [b - a for a, b in pairwise(times)]
        assert all(0.3 * 0.8 <= gap < 0.3 + 5.0 for gap in gaps), gaps


def test_connect_returning_false_retires_the_worker_with_an_immediate_replacement() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=30") as server:
        _, fork = server.wait(FORK)
        first = int(fork.group(2))
        server.wait(stats(total=1, idle=1))
        assert ask(server.port, "false") == f"bye {first}\n".encode()
        exit_index, _ = server.wait(rf"worker {first} exited with status 0".encode())
        replaced_index, _ = server.wait(FORK, exit_index)
        # fork_delay is 30 s: only the "exited normally" rule explains a quick fork.
        assert stamp(server.lines[replaced_index]) - stamp(server.lines[exit_index]) < 5.0
        assert int(ask(server.port, "pid")) != first


def test_a_worker_that_retires_before_the_master_saw_it_idle_is_no_prepare_failure() -> None:
    # The master samples the scoreboard, so a worker can prepare, serve and
    # leave between two samples: the connection waits in the backlog before
    # the worker even exists. It served, so it prepared: its normal exit lets
    # the replacement come at once (fork_delay is 30 s), without the pacing of
    # a prepare failure.
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=30") as server:
        with connect(server.port) as early:
            early.sendall(b"false\n")
            first = int(read_line(early).split()[1])
        exit_index, _ = server.wait(rf"worker {first} exited with status 0".encode())
        server.wait(FORK, exit_index, timeout=5.0)
        assert int(ask(server.port, "pid")) != first
        assert not server.matches(rb"failed to prepare")


def test_each_listen_call_is_its_own_pool() -> None:
    with serve("pools=2", "pre_fork=1", "min_fork=1", "fork_delay=0.01") as server:
        second_port = int(server.wait(rb"listening on port (\d+)", 1)[1].group(1))
        assert second_port != server.port
        server.wait(stats(total=1, idle=1, pool=0))
        server.wait(stats(total=1, idle=1, pool=1))
        pools = {int(m.group(1)): int(m.group(2)) for m in server.matches(FORK)}
        assert set(pools) == {0, 1}
        assert int(ask(server.port, "pid")) == pools[0]
        assert int(ask(second_port, "pid")) == pools[1]
