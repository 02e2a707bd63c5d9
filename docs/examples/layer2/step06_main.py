"""Step 6b: a ``Main`` listener runs one job; when it ends, the server stops.

The pool has a TCP listener and a ``Main`` listener named ``job``. One
worker runs the job as soon as the server starts: it connects ``--requests``
times to the pool's own TCP port, where the other workers answer with their
PIDs, and prints a summary. When the job returns, the master stops
gracefully and exits 0, with nobody sending it a signal. Run it with
``python docs/examples/layer2/step06_main.py [PORT] [--requests N]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

from layer1_sockets import BufferedSocket, tcpconnect
from layer2_prefork import TCP, Event, Main, listen, run

args = argparse.Namespace()


# --8<-- [start:job]
def say(line: str) -> None:
    """Print a line in one write, so that lines of several processes never mix."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def job() -> None:
    answers: Counter[bytes] = Counter()
    for _ in range(args.requests):
        with tcpconnect("127.0.0.1", args.port) as conn:
            answers[conn.read(64, b"\n").strip()] += 1
    workers = ", ".join(pid.decode() for pid in sorted(answers))
    say(f"job in worker {os.getpid()}: {args.requests} answers, from workers {workers}")


def connect(conn: BufferedSocket | Event) -> None:
    if isinstance(conn, Event):
        assert conn.main == "job"
        job()
    else:
        conn.flush(f"{os.getpid()}\n".encode())
# --8<-- [end:job]


# --8<-- [start:main]
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--requests", type=int, default=20)
    parser.parse_args(namespace=args)
    pool = listen(TCP("127.0.0.1", args.port), Main("job"), connect=connect,
                  pre_fork=2, min_fork=3, fork_delay=0.05)
    args.port = pool.port  # the workers, forked later, inherit the real port
    say(f"listening on port {pool.port}")
    raise SystemExit(run())


if __name__ == "__main__":
    main()
# --8<-- [end:main]
