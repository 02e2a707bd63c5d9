"""Faults: a worker killed with SIGKILL in the middle of a request costs that request only.

The server is ``tests/hostile_apps/fault_server.py`` with a fixed pool of
three workers. Clients hold requests open in the workers (``hold``), the
test kills one worker, and checks that the killed worker's client sees its
connection end, the other held requests complete normally in their own
workers, the master forks a replacement, and the pool serves at full
strength again. (An idle worker killed and replaced:
``test_pool.py::test_a_killed_worker_is_replaced``.)
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

from prefork_support import FORK, Server, ask, connect, read_line, serve, stats

FAULT_SERVER = Path(__file__).resolve().parent.parent / "hostile_apps" / "fault_server.py"
POOL = ("pre_fork=3", "min_fork=3", "max_fork=3", "fork_delay=0.01")


def hold(port: int) -> tuple[socket.socket, int]:
    """A request held open in a worker; return its connection and the worker's PID."""
    sock = connect(port)
    sock.sendall(b"hold\n")
    word, pid = read_line(sock).split()
    assert word == b"held"
    return sock, int(pid)


def ended(sock: socket.socket) -> bool:
    """The connection ended without an answer (EOF or reset)."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def release(sock: socket.socket, pid: int) -> None:
    """Let a held request finish; it must complete in the same worker."""
    sock.sendall(b"go\n")
    assert read_line(sock) == f"done {pid}\n".encode()
    sock.close()


def full_strength(server: Server) -> set[int]:
    """Three requests held at once: three workers serve them; return their PIDs."""
    held = [hold(server.port) for _ in range(3)]
    for sock, pid in held:
        release(sock, pid)
    pids = {pid for _, pid in held}
    assert len(pids) == 3
    return pids


def test_a_worker_killed_mid_request_costs_only_that_request() -> None:
    with serve(*POOL, script=FAULT_SERVER) as server:
        server.wait(stats(total=3, idle=3))
        held = [hold(server.port) for _ in range(3)]
        (victim_sock, victim), *others = held
        mark = server.mark()
        os.kill(victim, signal.SIGKILL)
        assert ended(victim_sock)
        for sock, pid in others:
            release(sock, pid)  # the neighbours finish, in their own workers
        exit_index, _ = server.wait(rf"worker {victim} was killed by signal 9".encode(), mark)
        server.wait(FORK, exit_index)
        server.wait(stats(total=3, idle=3), exit_index)
        after = full_strength(server)
        assert victim not in after and {pid for _, pid in others} <= after
        victim_sock.close()


def test_kills_under_steady_load_lose_only_the_killed_requests() -> None:
    kills = 5
    with serve(*POOL, script=FAULT_SERVER) as server:
        server.wait(stats(total=3, idle=3))
        victims = []
        for _ in range(kills):
            mark = server.mark()
            (victim_sock, victim), (other_sock, other) = hold(server.port), hold(server.port)
            os.kill(victim, signal.SIGKILL)
            assert int(ask(server.port, "pid")) not in (victim, other)  # the third worker
            assert ended(victim_sock)
            release(other_sock, other)
            victim_sock.close()
            exit_index, _ = server.wait(rf"worker {victim} was killed by signal 9".encode(), mark)
            server.wait(stats(total=3, idle=3), exit_index)
            victims.append(victim)
        assert len(set(victims)) == kills
        assert not set(victims) & full_strength(server)
        assert server.program.proc.poll() is None  # the master lives


def test_every_worker_killed_at_once_is_replaced() -> None:
    with serve(*POOL, script=FAULT_SERVER) as server:
        server.wait(stats(total=3, idle=3))
        held = [hold(server.port) for _ in range(3)]
        mark = server.mark()
        for _, pid in held:
            os.kill(pid, signal.SIGKILL)
        for sock, pid in held:
            assert ended(sock)
            sock.close()
            server.wait(rf"worker {pid} was killed by signal 9".encode(), mark)
        server.wait(stats(total=3, idle=3), mark)
        assert not {pid for _, pid in held} & full_strength(server)
