"""The handler contract: prepare, connect, finish, errors, stderr, automatic close."""

from __future__ import annotations

import contextlib
import os
import signal

import pytest
from prefork_support import EXIT, FORK, ask, connect, read_line, serve, stats


def test_prepare_runs_once_per_worker_and_finish_before_a_normal_exit() -> None:
    with serve("prepare=print", "finish=print", "pre_fork=2", "fork_delay=0.01") as server:
        server.wait(stats(total=2, idle=2))
        forked = sorted(int(match.group(2)) for match in server.matches(FORK))
        assert sorted(int(m.group(1)) for m in server.matches(rb"^prepared (\d+)$")) == forked
        assert server.stop(signal.SIGTERM) == 0
        assert sorted(int(m.group(1)) for m in server.matches(rb"^finished (\d+)$")) == forked


def test_connect_raising_logs_the_traceback_resets_and_replaces_the_worker() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01") as server:
        _, fork = server.wait(FORK)
        worker = int(fork.group(2))
        server.wait(stats(total=1, idle=1))
        with connect(server.port) as sock:
            sock.sendall(b"raise\n")
            with pytest.raises(ConnectionResetError):
                sock.recv(100)
        prefix = rf"pool 0 worker {worker}: ".encode()
        traceback_index, _ = server.wait(prefix + rb"Traceback \(most recent call last\):")
        error_index, _ = server.wait(prefix + rb"RuntimeError: connect failed on purpose")
        exit_index, _ = server.wait(rf"worker {worker} exited with status 1".encode())
        assert traceback_index < error_index < exit_index  # last words before the exit line
        server.wait(FORK, exit_index)
        assert int(ask(server.port, "pid")) != worker


def test_worker_stderr_lines_are_logged_with_pool_and_pid() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "pools=2") as server:
        second_port = int(server.wait(rb"listening on port (\d+)", 1)[1].group(1))
        server.wait(stats(total=1, idle=1, pool=1))
        workers = {int(m.group(1)): int(m.group(2)) for m in server.matches(FORK)}
        assert ask(second_port, "stderr hello from a worker") == b"ok\n"
        server.wait(rf"WARNING pool 1 worker {workers[1]}: hello from a worker$".encode())


def test_a_stopped_worker_gets_no_work_and_the_others_serve_everything() -> None:
    # Idle workers take their own work (accept, or the pool's queue): one that
    # cannot run (SIGSTOP) takes nothing, so nothing waits for it.
    with serve("pre_fork=2", "min_fork=2", "max_fork=2", "fork_delay=0.01") as server:
        server.wait(stats(total=2, idle=2))
        stopped, running = (int(m.group(2)) for m in server.matches(FORK))
        os.kill(stopped, signal.SIGSTOP)
        try:
            answers = [int(ask(server.port, "pid")) for _ in range(10)]
            assert answers == [running] * 10
        finally:
            with contextlib.suppress(ProcessLookupError):  # (killed: stopped for a second)
                os.kill(stopped, signal.SIGCONT)
        with connect(server.port) as held:  # two work again: one holds, the other answers
            held.sendall(b"hold\n")
            holder = int(read_line(held).split()[1])
            assert int(ask(server.port, "pid")) != holder
            held.sendall(b"go\n")
            assert read_line(held) == f"done {holder}\n".encode()
        assert server.stop(signal.SIGTERM) == 0


def test_output_left_unflushed_is_flushed_by_the_automatic_close() -> None:
    with serve("pre_fork=1") as server:
        assert ask(server.port, "unflushed 300000") == b"x" * 300000


def test_a_peer_that_does_not_read_cannot_pin_the_worker() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "close_timeout=0.3") as server:
        server.wait(stats(total=1, idle=1))
        worker = int(server.matches(FORK)[0].group(2))
        with connect(server.port) as stalled:
            stalled.sendall(b"unflushed 20000000\n")  # never read: the flush cannot finish
            mark = server.mark()
            server.wait(stats(total=1, idle=0, busy=1), mark)
            server.wait(stats(total=1, idle=1), mark)  # reset after 0.3 s, idle again
            assert int(ask(server.port, "pid")) == worker
            with pytest.raises(ConnectionResetError):
                while stalled.recv(1 << 20):
                    pass


def test_connections_after_the_worker_left_are_served_by_the_next() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01") as server:
        server.wait(stats(total=1, idle=1))
        with connect(server.port) as sock:
            sock.sendall(b"false\n")
            assert read_line(sock).startswith(b"bye")
        for _ in range(3):
            assert int(ask(server.port, "pid")) > 0
        assert all(match.group(3) == b"0" for match in server.matches(EXIT))


def test_listen_and_run_refuse_to_work_inside_a_worker() -> None:
    with serve("pre_fork=1") as server:
        assert ask(server.port, "nested").decode().splitlines() == [
            "listen() cannot be called in a worker (from a handler)",
            "run() cannot be called in a worker (from a handler)"]
