"""Exercise 5: a strict Interval that cleans a spool directory, under a watchdog.

Every ``--every`` seconds, on a fixed schedule (``strict=True``), one idle
worker removes the files in ``--spool`` that are older than ``--max-age``
seconds and logs how many it removed. The cleanup runs under a sub-limit
of ``--limit`` seconds: a cleanup that hangs (a dead network file system)
is killed, and the next run starts on schedule in another worker.
``--pause`` makes each removal take that long, to try the watchdog. A TCP
listener answers each client with the number of files waiting. Run it
with ``python docs/examples/layer2/solutions/ex5_cleanup.py [PORT] --spool DIR``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from layer1_sockets import BufferedSocket
from layer2_prefork import TCP, Event, Interval, listen, run, timeout

args = argparse.Namespace()


# --8<-- [start:solution]
def clean(spool: Path, max_age: float) -> int:
    removed = 0
    now = time.time()
    for path in spool.iterdir():
        if path.is_file() and now - path.stat().st_mtime > max_age:
            time.sleep(args.pause)  # a slow file system
            path.unlink(missing_ok=True)  # another run may have been faster
            removed += 1
    return removed


def connect(conn: BufferedSocket | Event) -> None:
    if isinstance(conn, Event):
        removed = timeout(args.limit, clean, args.spool, args.max_age)
        print(f"cleanup removed {removed} files", file=sys.stderr, flush=True)
    else:
        waiting = sum(1 for path in args.spool.iterdir() if path.is_file())
        conn.flush(f"{waiting} files waiting\n".encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--every", type=float, default=60.0)
    parser.add_argument("--max-age", type=float, default=3600.0)
    parser.add_argument("--limit", type=float, default=30.0)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.parse_args(namespace=args)
    pool = listen(TCP("127.0.0.1", args.port), Interval("cleanup", args.every, strict=True),
                  connect=connect, min_fork=2, fork_delay=0.05)
    print(f"listening on port {pool.port}", flush=True)
    raise SystemExit(run())
# --8<-- [end:solution]


if __name__ == "__main__":
    main()
