"""A server that counts: pool 0 adds to two `Counters`, pool 1 answers `snapshot()` as JSON.

Pool 0 has one worker (``max_requests=10``); a client sends one command line:

* ``hit N``: add 1 to ``hits`` and N to ``bytes``, then answer ``ok``;
* ``pid``: answer the worker's PID;
* ``crash``: raise (the worker exits with status 1);
* ``stall``: arm a 0.05 s watchdog and wait for ever (``SIGALRM`` kills it);
* ``retire``: answer ``bye`` and return `False` (the worker leaves).

Pool 1 (one worker) writes the snapshot as one JSON line to each connection.
The first lines are ``listening on port N`` (pool 0) and ``snapshot on port M``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select

from layer2_prefork import TCP, Counters, listen, run, snapshot, timeout

counting = Counters("hits", "bytes")
HITS, BYTES = counting.index("hits"), counting.index("bytes")


def work(conn):  # type: ignore[no-untyped-def]
    command, _, argument = conn.read(terminator=b"\n").decode().strip().partition(" ")
    if command == "hit":
        counting.add(HITS)
        counting.add(BYTES, int(argument))
        conn.write(b"ok\n")
    elif command == "pid":
        conn.write(f"{os.getpid()}\n".encode())
    elif command == "crash":
        raise RuntimeError("crashing on purpose")
    elif command == "stall":
        timeout(0.05)
        select.select([], [], [])
    elif command == "retire":
        conn.write(b"bye\n")
        return False
    return None


def report(conn):  # type: ignore[no-untyped-def]
    conn.read(terminator=b"\n")
    conn.write(json.dumps(dataclasses.asdict(snapshot())).encode() + b"\n")


work_pool = listen(TCP("127.0.0.1", 0), connect=work, pre_fork=1, min_fork=1, max_fork=1,
                   max_requests=10, fork_delay=0.01, fork_error_delay=0.01)
report_pool = listen(TCP("127.0.0.1", 0), connect=report, pre_fork=1, min_fork=1, max_fork=1)
print(f"listening on port {work_pool.port}", flush=True)
print(f"snapshot on port {report_pool.port}", flush=True)
run()
