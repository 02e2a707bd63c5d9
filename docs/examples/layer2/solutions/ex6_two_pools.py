"""Exercise 6: two pools, so that slow work cannot starve quick work.

``listen()`` is called twice. Pool 0 answers quick requests on one port;
pool 1 runs slow jobs on another port, with at most ``--slow-workers``
workers. When every slow worker is busy, further jobs wait in pool 1's
backlog, and pool 0 does not notice: it has its own workers, its own
sizes, its own backlog. A job starts with ``JOB`` (answer ``started``) and
ends when the client sends any line (answer ``done``), so you can hold a
slow worker as long as you like. Run it with
``python docs/examples/layer2/solutions/ex6_two_pools.py [PORT] [--slow-workers N]``;
the slow pool's port is printed on the second line.
"""

from __future__ import annotations

import argparse
import os

from layer1_sockets import BufferedSocket
from layer2_prefork import TCP, listen, run


# --8<-- [start:solution]
def quick(conn: BufferedSocket) -> None:
    conn.flush(f"quick answer from worker {os.getpid()}\n".encode())


def slow(conn: BufferedSocket) -> None:
    if conn.read(64, b"\n").strip() == b"JOB":
        conn.flush(f"started in worker {os.getpid()}\n".encode())
        conn.read(64, b"\n")  # the job "runs" until the client says so
        conn.flush(b"done\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--slow-workers", type=int, default=1)
    args = parser.parse_args()
    quick_pool = listen(TCP("127.0.0.1", args.port), connect=quick,
                        pre_fork=2, max_fork=8, fork_delay=0.05)
    slow_pool = listen(TCP("127.0.0.1", 0), connect=slow, pre_fork=0,
                       min_fork=args.slow_workers, max_fork=args.slow_workers)
    print(f"listening on port {quick_pool.port}", flush=True)
    print(f"slow jobs on port {slow_pool.port}", flush=True)
    raise SystemExit(run(stats=True))
# --8<-- [end:solution]


if __name__ == "__main__":
    main()
