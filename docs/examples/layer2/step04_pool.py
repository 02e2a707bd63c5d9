"""Step 4: a pool that grows under load and shrinks after, on layer2_prefork.

From here on the master is ``layer2_prefork``'s. The handler greets the
client with its worker's PID and echoes lines until the client closes, so
each open connection keeps one worker busy. The pool options come from the
command line; the log (on stderr) has a ``stats`` line each time the
pool's counts change, so you can watch it grow to ``--max-fork`` while
clients hold connections, and shrink back, one worker per ``--exit-delay``,
when they leave. With ``--broken FILE``, ``prepare`` fails while FILE exists
(think of a database that is down), and the pool slows its forking down to
one per ``--fork-error-delay``. Run it with
``python docs/examples/layer2/step04_pool.py [PORT] [--pre-fork N] [--min-fork N] ...``.
"""

from __future__ import annotations

import argparse
import os

from layer1_sockets import BufferedSocket
from layer2_prefork import TCP, listen, run

args = argparse.Namespace()  # set in main(), before the first fork


# --8<-- [start:handler]
def prepare() -> None:
    if args.broken and os.path.exists(args.broken):
        raise RuntimeError(f"{args.broken} exists: cannot prepare")


def connect(conn: BufferedSocket) -> None:
    conn.flush(f"worker {os.getpid()}\n".encode())
    while line := conn.read(4096, b"\n"):  # busy until the client closes
        conn.flush(line)
# --8<-- [end:handler]


def options() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--pre-fork", type=int, default=1)
    parser.add_argument("--min-fork", type=int, default=1)
    parser.add_argument("--max-fork", type=int, default=4)
    parser.add_argument("--fork-delay", type=float, default=0.25)
    parser.add_argument("--exit-delay", type=float, default=2.0)
    parser.add_argument("--fork-error-delay", type=float, default=2.0)
    parser.add_argument("--idle-timeout", type=float, default=0.0)
    parser.add_argument("--broken", metavar="FILE", help="prepare() fails while FILE exists")
    parser.parse_args(namespace=args)


# --8<-- [start:main]
def main() -> None:
    options()
    pool = listen(
        TCP("127.0.0.1", args.port),
        prepare=prepare,
        connect=connect,
        pre_fork=args.pre_fork,                  # idle workers to keep ready
        min_fork=args.min_fork,                  # never fewer workers than this
        max_fork=args.max_fork,                  # never more
        fork_delay=args.fork_delay,              # at most one fork per fork_delay
        fork_error_delay=args.fork_error_delay,  # ...or per this, after a failure
        exit_delay=args.exit_delay,              # retire one surplus idle worker per exit_delay
        idle_timeout=args.idle_timeout,          # retire a worker idle this long (0 = never)
    )
    print(f"listening on port {pool.port}", flush=True)
    raise SystemExit(run(stats=True))


if __name__ == "__main__":
    main()
# --8<-- [end:main]
