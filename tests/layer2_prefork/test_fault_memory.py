"""Faults: a handler that leaks memory meets ``memory_limit`` and its worker is replaced.

Two ways to leak, two outcomes (``tests/hostile_apps/fault_server.py``):

* a slow leak, a few MiB kept per request: after the request that takes
  the worker's resident size past the limit, the worker retires gracefully
  (exit status 0) and a new one takes its place, so every request is
  answered;
* a runaway allocation inside one request: the address-space cap turns it
  into a `MemoryError`, the worker exits 1 and is replaced; only that
  request is lost, a request held in another worker completes.

(One oversized allocation, and one request keeping nearly the limit:
``test_memory.py``.)
"""

from __future__ import annotations

from pathlib import Path

from prefork_support import EXIT, FORK, ask, connect, read_line, serve, stats

FAULT_SERVER = Path(__file__).resolve().parent.parent / "hostile_apps" / "fault_server.py"
MiB = 1 << 20
LIMIT = 48 * MiB
LEAK = 4 * MiB


def test_a_slow_leak_retires_the_worker_without_losing_a_request() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01",
               f"memory_limit={LIMIT}", script=FAULT_SERVER) as server:
        server.wait(stats(total=1, idle=1))
        first = int(server.matches(FORK)[0].group(2))
        answers = []
        for _ in range(LIMIT // LEAK + 2):  # more than enough to pass the limit
            answers.append(ask(server.port, f"leak {LEAK}").split())
            if int(answers[-1][1]) != first:
                break
        pids = [int(pid) for _, pid, _ in answers]
        assert all(word == b"leaked" for word, _, _ in answers)  # every request answered
        assert pids[0] == first and pids[-1] != first, pids
        leaked = int(answers[-2][2])
        assert LEAK <= leaked <= LIMIT  # retired once the leak took it past the limit
        server.wait(rf"pool 0 worker {first}: resident size \d+ bytes exceeds memory_limit"
                    .encode())
        server.wait(rf"worker {first} exited with status 0".encode())


def test_a_runaway_allocation_costs_only_its_request() -> None:
    with serve("pre_fork=2", "min_fork=2", "max_fork=2", "fork_delay=0.01",
               f"memory_limit={LIMIT}", script=FAULT_SERVER) as server:
        server.wait(stats(total=2, idle=2))
        with connect(server.port) as held, connect(server.port) as runaway:
            held.sendall(b"hold\n")
            neighbour = int(read_line(held).split()[1])
            mark = server.mark()
            runaway.sendall(b"runaway\n")
            try:
                assert runaway.recv(100) == b""
            except ConnectionResetError:
                pass
            _, memory_error = server.wait(rb"pool 0 worker (\d+): MemoryError", mark)
            victim = int(memory_error.group(1))
            assert victim != neighbour
            exit_index, _ = server.wait(rf"worker {victim} exited with status 1".encode(), mark)
            held.sendall(b"go\n")
            assert read_line(held) == f"done {neighbour}\n".encode()
        server.wait(FORK, exit_index)
        server.wait(stats(total=2, idle=2), exit_index)
        assert [match.group(2) for match in server.matches(EXIT, mark)] == [str(victim).encode()]
        assert int(ask(server.port, "pid")) != victim
