"""The master survives whatever a worker does; a worker survives accept errors such as EMFILE."""

from __future__ import annotations

import contextlib
import os
import resource
import select
import signal
import time
from pathlib import Path

from prefork_support import FORK, Server, ask, connect, read_line, serve, stats


def test_garbage_on_the_control_socket_gets_the_worker_killed_and_replaced() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01") as server:
        server.wait(stats(total=1, idle=1))
        worker = int(server.matches(FORK)[0].group(2))
        with connect(server.port) as sock:
            sock.sendall(b"garbage\n")
            assert read_line(sock) == b"sent\n"
        server.wait(rf"killing worker {worker} \(it broke the control protocol "
                    r"\(unexpected message kind 0x67\)\)".encode())
        exit_index, _ = server.wait(rf"worker {worker} was killed by signal 9".encode())
        server.wait(FORK, exit_index)
        assert int(ask(server.port, "pid")) != worker


def test_a_worker_that_never_becomes_idle_does_not_stop_the_server(tmp_path: Path) -> None:
    marker = tmp_path / "first"
    with serve(f"prepare=hang-first:{marker}", "pre_fork=1", "min_fork=2", "fork_delay=0.01",
               options=("-s", "-d", "-g", "0.3")) as server:  # -d: a stop's worker lines
        _, hanging = server.wait(rb"^hanging (\d+)$")
        stuck = int(hanging.group(1))
        server.wait(stats(total=2, idle=1))
        for _ in range(3):
            assert int(ask(server.port, "pid")) != stuck
        mark = server.mark()
        assert server.stop(signal.SIGTERM) == 0
        server.wait(rb"fast stop \(the graceful stop deadline passed\)", mark)
        server.wait(rf"worker {stuck} was killed by signal 9".encode(), mark)


def failures_within(server: Server, failed: bytes, start: int, seconds: float) -> int:
    """Read the log for `seconds` after the first line matching `failed`; count such lines."""
    first, _ = server.wait(failed, start)
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        server.program.drain_output(min(left, 0.05))
    return len(server.matches(failed, first))


def lowest_free_fd(pid: int) -> int:
    used = {int(name) for name in os.listdir(f"/proc/{pid}/fd")}
    return min(set(range(len(used) + 1)) - used)


def test_emfile_on_accept_is_logged_and_the_worker_backs_off_and_goes_on() -> None:
    # Workers accept for themselves: a worker out of descriptors says so (its
    # stderr, in the master's log), pauses accepting for a moment instead of
    # spinning on a listener that stays readable, and serves once it can.
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01") as server:
        server.wait(stats(total=1, idle=1))
        worker = int(server.matches(FORK)[0].group(2))
        soft, hard = resource.prlimit(worker, resource.RLIMIT_NOFILE)
        resource.prlimit(worker, resource.RLIMIT_NOFILE, (lowest_free_fd(worker), hard))
        failed = (f"pool 0 worker {worker}: accept on listener 0 failed: ".encode()
                  + rb"\[Errno 24\] Too many open files$")
        try:
            mark = server.mark()
            with connect(server.port) as sock:
                sock.sendall(b"pid\n")
                server.wait(failed, mark)
                window = failures_within(server, failed, mark, 0.5)
                # One try per pause (FIRST_PAUSE, 50 ms): about 10 in 0.5 s, not thousands.
                assert 2 <= window <= 30, f"{window} failed accepts in 0.5 s"
                resource.prlimit(worker, resource.RLIMIT_NOFILE, (soft, hard))
                assert int(read_line(sock)) == worker  # the waiting client is served
        finally:
            with contextlib.suppress(ProcessLookupError):
                resource.prlimit(worker, resource.RLIMIT_NOFILE, (soft, hard))
        assert int(ask(server.port, "pid")) == worker
        assert server.program.proc.poll() is None  # the master never noticed
        assert server.stop(signal.SIGTERM) == 0


def test_workers_leave_by_themselves_when_the_master_is_killed() -> None:
    with serve("pre_fork=2", "fork_delay=0.01") as server:
        server.wait(stats(total=2, idle=2))
        workers = [int(match.group(2)) for match in server.matches(FORK)]
        watches = [os.pidfd_open(pid) for pid in workers]
        try:
            os.kill(server.program.pid, signal.SIGKILL)
            for watch in watches:  # readable once the process has exited
                assert select.select([watch], [], [], 20)[0], "a worker outlived its master"
        finally:
            for watch in watches:
                os.close(watch)
