"""Faults: running out of file descriptors (EMFILE) never kills the master.

The tests lower a process's ``RLIMIT_NOFILE`` (``prlimit``) to the
descriptors it already holds, so that the next one it needs fails:

* a burst of clients while the worker cannot accept (workers accept for
  themselves): every accept fails and is logged with the worker's prefix,
  the worker pauses accepting (50 ms) and tries again, and once descriptors
  are available again every client of the burst is served;
* a worker dies while the master cannot create the socket pairs for a
  replacement: the fork fails and is logged, is retried at
  ``fork_error_delay``, and succeeds once descriptors are available;
* a handler that exhausts its own worker's descriptors fails its request
  only: the worker is replaced, and the master's descriptor count does not
  change.

(One waiting client through an accept failure and its back-off:
``test_robustness.py::test_emfile_on_accept_is_logged_and_the_worker_backs_off_and_goes_on``.)
"""

from __future__ import annotations

import os
import resource
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prefork_support import FORK, ask, connect, read_line, serve, stats

FAULT_SERVER = Path(__file__).resolve().parent.parent / "hostile_apps" / "fault_server.py"


def descriptors(pid: int) -> set[int]:
    return {int(name) for name in os.listdir(f"/proc/{pid}/fd")}


@contextmanager
def out_of_descriptors(pid: int) -> Iterator[None]:
    """Lower the process's descriptor limit to what it holds now; restore it afterwards."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    used = descriptors(pid)
    lowest_free = min(set(range(len(used) + 1)) - used)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (lowest_free, hard))
    try:
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))


def test_a_burst_of_clients_while_accept_fails_is_served_afterwards() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01",
               script=FAULT_SERVER) as server:
        server.wait(stats(total=1, idle=1))
        worker = int(server.matches(FORK)[0].group(2))
        failed = (f"pool 0 worker {worker}: accept on listener 0 failed: ".encode()
                  + rb"\[Errno 24\]")
        mark = server.mark()
        burst: list[socket.socket] = []
        try:
            with out_of_descriptors(worker):
                for _ in range(8):
                    sock = connect(server.port)
                    sock.sendall(b"pid\n")
                    burst.append(sock)
                first, _ = server.wait(failed, mark)
                server.wait(failed, first + 1)  # tried again after its pause
                assert server.program.proc.poll() is None
            answers = {int(read_line(sock)) for sock in burst}  # nothing was lost
            assert answers == {worker}  # the one worker served them all, in turn
        finally:
            for sock in burst:
                sock.close()
        assert server.program.proc.poll() is None
        assert int(ask(server.port, "pid")) == worker


def test_a_replacement_that_cannot_be_forked_is_retried() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01",
               "fork_error_delay=0.2", script=FAULT_SERVER) as server:
        server.wait(stats(total=1, idle=1))
        master = server.program.pid
        worker = int(server.matches(FORK)[0].group(2))
        mark = server.mark()
        with out_of_descriptors(master):
            os.kill(worker, signal.SIGKILL)
            server.wait(rf"worker {worker} was killed by signal 9".encode(), mark)
            first, _ = server.wait(rb"cannot fork a worker: \[Errno 24\]", mark)
            server.wait(rb"cannot fork a worker: \[Errno 24\]", first + 1)  # retried
            assert server.program.proc.poll() is None
        server.wait(FORK, mark)
        server.wait(stats(total=1, idle=1), mark)
        assert int(ask(server.port, "pid")) != worker


def test_a_handler_out_of_descriptors_costs_only_its_worker() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01",
               script=FAULT_SERVER) as server:
        server.wait(stats(total=1, idle=1))
        master = server.program.pid
        before = descriptors(master)
        mark = server.mark()
        with connect(server.port) as sock:
            sock.sendall(b"files\n")
            victim = int(read_line(sock).split()[1])
            try:
                assert sock.recv(100) == b""
            except ConnectionResetError:
                pass
        server.wait(rb"OSError: \[Errno 24\] Too many open files", mark)
        exit_index, _ = server.wait(rf"worker {victim} exited with status 1".encode(), mark)
        server.wait(stats(total=1, idle=1), exit_index)
        assert int(ask(server.port, "pid")) != victim
        assert len(descriptors(master)) == len(before)  # the master lost nothing
