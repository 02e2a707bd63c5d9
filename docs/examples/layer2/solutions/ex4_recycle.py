"""Exercise 4: recycle each worker after N connections.

Long-running processes collect garbage of the other kind: caches that only
grow, fragmented memory, leaks in a library. A classic remedy is to let
each worker serve a fixed number of connections and then leave, so that a
fresh process takes its place. Here ``connect()`` counts the connections of
its worker and returns ``False`` after ``--connections`` of them. A worker
that leaves this way ended normally, so the master forks its replacement
at once, even with a long ``fork_delay``. Run it with
``python docs/examples/layer2/solutions/ex4_recycle.py [PORT] [--connections N]``.
"""

from __future__ import annotations

import argparse
import os

from layer1_sockets import BufferedSocket
from layer2_prefork import TCP, listen, run

args = argparse.Namespace()


# --8<-- [start:solution]
served = 0  # this worker's count: every worker has its own copy


def connect(conn: BufferedSocket) -> bool:
    global served
    served += 1
    conn.flush(f"worker {os.getpid()} connection {served} of {args.connections}\n".encode())
    return served < int(args.connections)  # False: retire after this connection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--connections", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.parse_args(namespace=args)
    pool = listen(TCP("127.0.0.1", args.port), connect=connect,
                  pre_fork=args.workers, min_fork=args.workers, max_fork=args.workers,
                  fork_delay=30)  # no effect on replacing a worker that left normally
    print(f"listening on port {pool.port}", flush=True)
    raise SystemExit(run())
# --8<-- [end:solution]


if __name__ == "__main__":
    main()
