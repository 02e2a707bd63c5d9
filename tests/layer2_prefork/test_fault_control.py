"""Faults: whatever a worker writes on its control socket, the master survives it.

A handler in ``tests/hostile_apps/fault_server.py`` (run through
``scripts/fault_control.py``, which gives it the worker's real control
socket) writes bytes of its choosing to its worker's control socket
(``control HEX``), sends a descriptor there (``control-fd``), or closes it
(``close-control``). For each, the master kills that worker (or reaps it
when it leaves), forks a replacement, keeps serving, and keeps its own
descriptor count: a descriptor smuggled in by a worker is closed, not
leaked. A request held in the other worker meanwhile completes. (The first garbage test, an unknown
message kind: ``test_robustness.py``; the decoder on its own, fed any
bytes: ``test_protocol.py``.)
"""

from __future__ import annotations

import os
import re

import pytest
from prefork_support import FORK, SCRIPTS, ask, connect, read_line, serve, stats

FAULT_SERVER = SCRIPTS / "fault_control.py"

GARBAGE = {
    "unknown kind": b"Z\x00\x00\x00\x00\x00",
    "the original's idle, no message any more": b"I\x00\x00\x00\x00\x00",
    "goodbye with a payload": b"B\x00\x00\x00\x00\x01x",
    "done with a huge length": b"D\x00\xff\xff\xff\xff",
    "goodbye announcing a descriptor": b"B\x01\x00\x00\x00\x00",
    "connect, a master-to-worker kind": b"C\x00\x00\x00\x00\x02\x00\x00",
    "terminate, a master-to-worker kind": b"T\x00\x00\x00\x00\x00",
    "done for a listener that is no timer": b"D\x00\x00\x00\x00\x02\x00\x00",
    "park without its connection": b"P\x00\x00\x00\x00\x02\x00\x00",
    "hold announcing a descriptor it lacks": b"H\x01\x00\x00\x00\x02\x00\x00",
    "a mebibyte of noise": bytes(range(256)) * 4096,
}
KILLED = "killing worker {pid} (it broke the control protocol"


def descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def misbehave(command: str, *, killed: bool) -> None:
    """Run `command` in one worker while another holds a request; check the aftermath."""
    with serve("pre_fork=2", "min_fork=2", "max_fork=2", "fork_delay=0.01",
               script=FAULT_SERVER) as server:
        server.wait(stats(total=2, idle=2))
        master = server.program.pid
        before = descriptors(master)
        with connect(server.port) as held, connect(server.port) as bad:
            held.sendall(b"hold\n")
            neighbour = int(read_line(held).split()[1])
            mark = server.mark()
            bad.sendall(command.encode() + b"\n")
            victim = int(read_line(bad).split()[1])
            assert victim != neighbour
            if killed:
                server.wait(re.escape(KILLED.format(pid=victim)).encode(), mark)
            exit_index, _ = server.wait(rf"worker {victim} (?:exited|was killed)".encode(), mark)
            held.sendall(b"go\n")
            assert read_line(held) == f"done {neighbour}\n".encode()
        server.wait(FORK, exit_index)
        server.wait(stats(total=2, idle=2), exit_index)
        assert int(ask(server.port, "pid")) not in (victim, 0)
        assert server.program.proc.poll() is None
        assert descriptors(master) == before


@pytest.mark.parametrize("garbage", GARBAGE.values(), ids=GARBAGE.keys())
def test_garbage_on_the_control_socket_costs_only_that_worker(garbage: bytes) -> None:
    misbehave(f"control {garbage.hex()}", killed=True)


def test_a_descriptor_sent_to_the_master_is_closed_and_the_worker_killed() -> None:
    misbehave("control-fd", killed=True)


def test_a_worker_that_closes_its_control_socket_is_replaced() -> None:
    misbehave("close-control", killed=False)
