"""Step 7: keep-alive parking. Many idle connections, two workers, nobody waits.

A line server on layer 2, no HTTP. A client sends lines; each line is
answered with the PID of the worker that read it (``worker PID: line``),
and the connection stays open for more. Between two lines the handler
calls ``park()``: if the client has nothing more to say within
``--linger`` seconds, the connection goes back to the master, and the
worker is free for someone else. The pool's ``DispatchFilter`` tells the
master when a held connection is ready for a worker again: as soon as a
whole line has arrived. So new connections, and parked ones, reach a
worker only with a line to answer, and a client that connects and says
nothing, or types slowly, costs no worker at all.

With ``--no-park`` the server behaves as every pre-forking server did
before: no filter, no parking, one connection per worker for as long as
it lasts; the third client of two workers waits. Run it with
``python docs/examples/layer2/step07_parking.py [PORT] [--workers N]
[--linger SECONDS] [--no-park]``, or under ``python -m layer2_prefork -d`` to see every ``PARK`` and
``CONNECT`` in the log.
"""

from __future__ import annotations

import argparse
import os

from layer1_sockets import BufferedSocket, poll
from layer2_prefork import TCP, DispatchFilter, listen, park, run, stopping

MAX_LINE = 4096
settings = argparse.Namespace(linger=0.05, park=True)  # set in main(), before the fork


# --8<-- [start:filter]
def line_arrived(data: bytes) -> bool:
    """The dispatch filter's test: a whole line is there (the master calls it)."""
    return b"\n" in data


LINES = DispatchFilter(line_arrived, max_bytes=MAX_LINE)
# --8<-- [end:filter]


# --8<-- [start:handler]
def connect(conn: BufferedSocket) -> None:
    """Answer each line with this worker's PID; park the connection between lines."""
    while line := conn.read(MAX_LINE, b"\n"):
        conn.flush(f"worker {os.getpid()}: ".encode(), line)
        if settings.park and park(conn, linger=settings.linger):
            return  # the master holds the connection now; this worker is idle
        # park() said no: the next line is here already (pipelined, or it came
        # within the linger), or parking is off, or a graceful stop began.
        if stopping() and not poll([conn], [], 0):
            return  # stopping, and no next line under way: close the connection
# --8<-- [end:handler]


def options() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--linger", type=float, default=0.05,
                        help="seconds to wait for the next line before parking")
    parser.add_argument("--no-park", dest="park", action="store_false",
                        help="no filter, no parking: one connection per worker")
    parser.parse_args(namespace=settings)


# --8<-- [start:main]
def main() -> None:
    options()
    pool = listen(TCP("127.0.0.1", settings.port), connect=connect,
                  pre_fork=1, min_fork=settings.workers, max_fork=settings.workers,
                  dispatch_filter=LINES if settings.park else False)
    print(f"listening on port {pool.port}", flush=True)
    raise SystemExit(run())


if __name__ == "__main__":
    main()
# --8<-- [end:main]
