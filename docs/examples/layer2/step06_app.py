"""Step 6a: the whole ``listen()`` API in one server.

One pool serves a TCP port and (with ``--socket PATH``) a Unix socket, and
runs a ``heartbeat`` Interval. Each worker ``prepare``s once after it is
forked and ``finish``es before it leaves. A client gets a greeting, then
sends commands, one per line:

* ``BIG n``: allocate n MiB and free them again (beyond ``--memory-limit``
  the allocation fails with ``MemoryError``, and the worker is replaced);
* ``KEEP n``: allocate n MiB and keep them (a leak: once the worker's
  resident size exceeds the limit, it retires after this connection);
* ``BYE``: answer ``bye``; ``connect`` returns ``False``, so this worker
  retires after this connection;
* anything else is echoed.

Run it directly, ``python docs/examples/layer2/step06_app.py [PORT] [--socket PATH]``,
or under the command line, which adds logging, a pidfile and detaching:
``python -m layer2_prefork -s -p app.pid docs/examples/layer2/step06_app.py [PORT] ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from layer1_sockets import BufferedSocket
from layer2_prefork import TCP, Event, Interval, ListenerSpec, Local, listen, run

MIB = 1024 * 1024
leaked: list[bytearray] = []


class Worker:
    """What one worker process knows about itself (every worker has its own)."""

    started = 0.0
    connections = 0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)  # a worker's stderr: the master's log


# --8<-- [start:handlers]
def prepare() -> None:
    Worker.started = time.monotonic()  # e.g. open a database connection here
    log("prepared")


def connect(conn: BufferedSocket | Event) -> bool:
    if isinstance(conn, Event):  # the heartbeat Interval
        log(f"heartbeat {Worker.connections} connections so far")
        return True
    Worker.connections += 1
    try:
        return converse(conn)
    except ConnectionError:  # the client reset: its fault, no reason to replace the worker
        conn.reset()
        return True


def converse(conn: BufferedSocket) -> bool:
    via = "tcp" if conn.remote_tcpport is not None else "unix"
    conn.flush(f"worker {os.getpid()} via {via}, connection {Worker.connections}\n".encode())
    while line := conn.read(256, b"\n"):
        match line.split():
            case [b"BIG", size]:
                block = bytearray(int(size) * MIB)  # MemoryError beyond the limit
                conn.flush(b"allocated %d MiB\n" % (len(block) // MIB))
                del block
            case [b"KEEP", size]:
                leaked.append(bytearray(int(size) * MIB))
                conn.flush(b"keeping %d MiB\n" % (sum(map(len, leaked)) // MIB))
            case [b"BYE"]:
                conn.flush(b"bye\n")
                return False  # retire this worker after this connection
            case _:
                conn.flush(line)
    return True


def finish() -> None:
    seconds = time.monotonic() - Worker.started
    log(f"finishing after {Worker.connections} connections in {seconds:.1f} s")
# --8<-- [end:handlers]


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--socket", help="also listen on this Unix socket")
    parser.add_argument("--heartbeat", type=float, default=10.0)
    parser.add_argument("--memory-limit", type=int, default=256, help="MiB per worker")
    return parser.parse_args()


# --8<-- [start:listen]
def main() -> None:
    args = options()
    listeners: list[ListenerSpec] = [TCP("127.0.0.1", args.port),
                                     Interval("heartbeat", args.heartbeat)]
    if args.socket:
        listeners.append(Local(args.socket))
    pool = listen(*listeners, prepare=prepare, connect=connect, finish=finish,
                  pre_fork=1, min_fork=2, max_fork=8, fork_delay=0.1,
                  memory_limit=args.memory_limit * MIB)
    print(f"listening on port {pool.port}", flush=True)
    for address in pool.addresses[1:]:
        print(f"listening on {address}", flush=True)
    raise SystemExit(run())


if __name__ == "__main__":
    main()
# --8<-- [end:listen]
