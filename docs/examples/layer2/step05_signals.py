"""Step 5b: stopping. SIGTERM stops gracefully, SIGINT and SIGHUP at once.

Each connection is an echo that keeps its worker busy until the client
closes. Send the master ``SIGTERM`` while clients are connected: it closes
the listener at once (new clients are refused), lets every connection in
progress run to its end, retires each worker as it becomes idle (``finish``
runs and prints a line), and exits 0. Connections still open after
``--grace`` seconds are cut: their workers are killed. ``SIGINT`` (Ctrl-C)
and ``SIGHUP`` kill the workers at once. Run it with
``python docs/examples/layer2/step05_signals.py [PORT] [--grace SECONDS]``.
"""

from __future__ import annotations

import argparse
import os
import sys

from layer1_sockets import BufferedSocket
from layer2_prefork import TCP, listen, run

served = 0  # per worker: each process has its own copy after the fork


# --8<-- [start:handlers]
def connect(conn: BufferedSocket) -> None:
    global served
    served += 1
    conn.flush(f"worker {os.getpid()}\n".encode())
    while line := conn.read(4096, b"\n"):
        conn.flush(line)


def finish() -> None:
    # stderr of a worker goes to the master's log, prefixed with pool and PID
    print(f"finishing after {served} connections", file=sys.stderr, flush=True)
# --8<-- [end:handlers]


# --8<-- [start:main]
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--grace", type=float, default=30.0,
                        help="seconds a graceful stop waits for busy workers")
    args = parser.parse_args()
    pool = listen(TCP("127.0.0.1", args.port), connect=connect, finish=finish,
                  pre_fork=1, min_fork=2, max_fork=4, fork_delay=0.05)
    print(f"listening on port {pool.port}", flush=True)
    raise SystemExit(run(graceful_timeout=args.grace, stats=True))


if __name__ == "__main__":
    main()
# --8<-- [end:main]
