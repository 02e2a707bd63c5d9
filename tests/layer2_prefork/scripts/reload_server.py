"""A line server whose `prepare` loads a version from a file, for the reload tests.

Run it under the command line with ``version=PATH``: each worker's
`prepare` reads PATH once (the "application" it loads); ``broken`` in
the file makes `prepare` raise, as a deploy that fails to import would.
The pool is fixed at two workers with a line `DispatchFilter`. Each line
is answered ``pid=<pid> version=<version> line=<line>`` and the
connection is then parked (`park`), so the master holds it between two
lines. ``slow`` is answered ``started pid=<pid> version=<version>``, then
the handler waits for the next line and answers it ``done pid=<pid>
version=<version>`` (work under way during a reload) before it parks.
"""

from __future__ import annotations

import os
import sys

from lines import next_line

from layer1_sockets import BufferedSocket
from layer2_prefork import TCP, DispatchFilter, listen, park

settings = {"version": ""}
for argument in sys.argv[1:]:
    key, _, value = argument.partition("=")
    if key not in settings:
        raise SystemExit(f"unknown argument {argument!r}")
    settings[key] = value

loaded = "none"


def prepare() -> None:
    """Load "the application": the version in the file (``broken`` fails)."""
    global loaded
    with open(settings["version"], encoding="ascii") as file:
        text = file.read().strip()
    if text == "broken":
        raise RuntimeError("this version is broken")
    loaded = text


def connect(conn: BufferedSocket) -> None:
    me = f"pid={os.getpid()} version={loaded}"
    while line := next_line(conn):
        text = line.decode().strip()
        if text == "slow":
            conn.flush(f"started {me}\n".encode())
            next_line(conn)
            conn.flush(f"done {me}\n".encode())
        else:
            conn.flush(f"{me} line={text}\n".encode())
        if park(conn, 0.05):
            return


pool = listen(TCP("127.0.0.1", 0), prepare=prepare, connect=connect, pre_fork=2, min_fork=2,
              max_fork=2, fork_delay=0.01,
              dispatch_filter=DispatchFilter(complete=lambda data: b"\n" in data))
os.write(1, f"listening on port {pool.port}\n".encode())
