"""Exercise 7: deadlines for the connections the master holds.

Step 7's master holds a silent connection for ever, and a half-typed line
too: they cost no worker, but each one costs the master a descriptor, and
descriptors run out. This server gives its dispatch filter two deadlines.
A held connection that has said nothing for ``--idle`` seconds (since it
was accepted, or since it was parked after its last answer) is closed
quietly. A line that was started but is not complete ``--line-timeout``
seconds after its first byte gets ``too slow`` and the connection is
closed. Both are done by the master, without a worker ever seeing the
connection. The handler is step 7's (imported from ``step07_parking.py``,
which must sit next to this file's folder). Run it with
``python docs/examples/layer2/solutions/ex7_deadlines.py [PORT] [--idle SECONDS]
[--line-timeout SECONDS]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import step07_parking as step07

from layer2_prefork import TCP, DispatchFilter, listen, run


# --8<-- [start:solution]
def deadlines(idle: float, line_timeout: float) -> DispatchFilter:
    """Step 7's filter, with the two deadlines the master enforces."""
    return DispatchFilter(step07.line_arrived, idle_timeout=idle,
                          request_timeout=line_timeout, timeout_response=b"too slow\n",
                          max_bytes=step07.MAX_LINE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--idle", type=float, default=10.0,
                        help="seconds a held connection may stay silent")
    parser.add_argument("--line-timeout", type=float, default=5.0,
                        help="seconds from a line's first byte to its end")
    args = parser.parse_args()
    pool = listen(TCP("127.0.0.1", args.port), connect=step07.connect,
                  pre_fork=1, min_fork=2, max_fork=2,
                  dispatch_filter=deadlines(args.idle, args.line_timeout))
    print(f"listening on port {pool.port}", flush=True)
    raise SystemExit(run())
# --8<-- [end:solution]


if __name__ == "__main__":
    main()
