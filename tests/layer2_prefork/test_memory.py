"""memory_limit: a hard address-space cap (MemoryError) and a soft resident-size retirement."""

from __future__ import annotations

import pytest
from prefork_support import FORK, ask, connect, read_line, serve, stats

MiB = 1 << 20


def test_an_allocation_beyond_the_cap_raises_memory_error_and_the_worker_is_replaced() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01",
               f"memory_limit={64 * MiB}") as server:
        server.wait(stats(total=1, idle=1))
        worker = int(server.matches(FORK)[0].group(2))
        assert ask(server.port, f"alloc {8 * MiB}") == f"allocated {8 * MiB}\n".encode()
        with connect(server.port) as sock:
            sock.sendall(f"alloc {256 * MiB}\n".encode())
            with pytest.raises(ConnectionResetError):
                sock.recv(100)
        server.wait(rf"pool 0 worker {worker}: MemoryError".encode())
        exit_index, _ = server.wait(rf"worker {worker} exited with status 1".encode())
        server.wait(FORK, exit_index)
        assert int(ask(server.port, "pid")) != worker


def test_a_worker_whose_resident_size_passes_the_limit_retires_gracefully() -> None:
    # The cap is the address space at fork plus the limit, so keeping a little less
    # than the limit succeeds, and the resident size (which includes the interpreter)
    # ends above the limit.
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01", "finish=print",
               f"memory_limit={40 * MiB}") as server:
        server.wait(stats(total=1, idle=1))
        worker = int(server.matches(FORK)[0].group(2))
        with connect(server.port) as sock:
            sock.sendall(f"keep {36 * MiB}\n".encode())
            assert read_line(sock) == f"kept {worker}\n".encode()
            assert sock.recv(100) == b""
        server.wait(rf"pool 0 worker {worker}: resident size \d+ bytes exceeds memory_limit"
                    .encode())
        server.wait(rf"^finished {worker}$".encode())
        exit_index, _ = server.wait(rf"worker {worker} exited with status 0".encode())
        server.wait(FORK, exit_index)
        assert int(ask(server.port, "pid")) != worker
