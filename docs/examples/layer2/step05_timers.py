"""Step 5a: timers. The watchdog ``timeout()`` and an ``Interval`` listener.

Every connection runs under a watchdog of ``--limit`` seconds: when it
expires, the kernel kills the worker with ``SIGALRM`` and the master forks
a replacement. The client sends commands, one per line:

* ``LEFT``: how many seconds the watchdog has left;
* ``SLEEP s``: work (sleep) for ``s`` seconds, then answer;
* ``STEP s t``: work for ``s`` seconds under a sub-limit of ``t`` seconds.

An ``Interval`` listener named ``tick`` runs every ``--tick`` seconds in an
idle worker and works for ``--work`` seconds; each run prints a line with
the time it started (``time.monotonic()``). With ``--strict`` the runs keep
a fixed schedule instead of pausing ``--tick`` seconds after each run. Run
it with ``python docs/examples/layer2/step05_timers.py [PORT] [--limit S]``
and ``[--tick S] [--work S] [--strict]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from layer1_sockets import BufferedSocket
from layer2_prefork import TCP, Event, Interval, listen, run, timeout

args = argparse.Namespace()


# --8<-- [start:watchdog]
def answer(command: list[bytes]) -> bytes:
    match command:
        case [b"LEFT"]:
            return b"%.2f s left" % timeout()
        case [b"SLEEP", seconds]:
            time.sleep(float(seconds))
            return b"slept " + seconds
        case [b"STEP", seconds, limit]:
            timeout(float(limit), time.sleep, float(seconds))  # the shorter limit wins
            return b"step done, %.2f s left" % timeout()
    return b"ERROR unknown command"


def serve(conn: BufferedSocket) -> None:
    timeout(args.limit)  # kill this worker if the connection takes longer
    while line := conn.read(256, b"\n"):
        conn.flush(answer(line.split()) + b"\n")
# --8<-- [end:watchdog]


# --8<-- [start:tick]
def say(line: str) -> None:
    """Print a line in one write, so that lines of several processes never mix."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def tick(event: Event) -> None:
    say(f"{event.interval} started at {time.monotonic():.3f} in worker {os.getpid()}")
    time.sleep(args.work)  # the run's work
# --8<-- [end:tick]


# --8<-- [start:main]
def connect(conn: BufferedSocket | Event) -> None:
    if conn.interval:  # an Interval listener fired (a socket's interval is None)
        assert isinstance(conn, Event)
        tick(conn)
    else:
        assert isinstance(conn, BufferedSocket)
        serve(conn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--limit", type=float, default=5.0, help="watchdog per connection")
    parser.add_argument("--tick", type=float, default=2.0, help="Interval delay")
    parser.add_argument("--work", type=float, default=0.5, help="seconds each tick works")
    parser.add_argument("--strict", action="store_true", help="a fixed schedule")
    parser.parse_args(namespace=args)
    pool = listen(TCP("127.0.0.1", args.port), Interval("tick", args.tick, strict=args.strict),
                  connect=connect, pre_fork=1, min_fork=2, fork_delay=0.05)
    say(f"listening on port {pool.port}")
    raise SystemExit(run(stats=False))


if __name__ == "__main__":
    main()
# --8<-- [end:main]
