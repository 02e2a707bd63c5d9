"""A line server that parks its connection between two lines (`layer2_prefork.park`).

Run it under the command line, with ``key=value`` arguments:

* ``linger=SECONDS`` (default 0.05): what the handler passes to `park`;
* ``filter=line`` (default) or ``filter=none``: a `DispatchFilter` whose
  request is one line, or ``dispatch_filter=False``;
* ``idle=SECONDS`` and ``request=SECONDS``: the filter's ``idle_timeout``
  and ``request_timeout`` (default: none); its ``timeout_response`` is
  ``late``;
* ``certfile=PATH`` and ``keyfile=PATH``: for the ``tls`` command.

The pool is fixed at two workers. Each line is a command, answered with one
line that names the worker: ``pid=<pid> line=<the line>``. After each
answer the handler calls ``park(conn, linger)`` and returns if the
connection was parked; otherwise it waits for the next line (or, once the
server stops gracefully, closes the connection). Commands:

* anything: answered as above, then parked (if `park` agrees);
* ``hold``: answered, never parked (the connection keeps its worker);
* ``die``: answered, parked, then the worker kills itself with SIGKILL;
* ``waiting SECONDS``: wait up to SECONDS for a message from the master,
  then answer ``waiting=<work_waiting()>``; never parked;
* ``tls``: answer ``tls``, start TLS (server side), then answer, in TLS,
  ``tls park=<what park returned> pid=<pid>``; the connection stays TLS.

A line cut short by the client's end (no newline) is answered with
``partial=<the bytes> pid=<pid>``, then the connection is closed.
"""

from __future__ import annotations

import os
import select
import signal
import ssl
import sys
from typing import Literal

from lines import next_line

from layer1_sockets import BufferedSocket
from layer2_prefork import (
    TCP,
    DispatchFilter,
    listen,
    park,
    stop_fd,
    work_waiting,
)

settings = {"linger": "0.05", "filter": "line", "idle": "", "request": "",
            "certfile": "", "keyfile": ""}
for argument in sys.argv[1:]:
    key, _, value = argument.partition("=")
    if key not in settings:
        raise SystemExit(f"unknown argument {argument!r}")
    settings[key] = value

LINGER = float(settings["linger"])


def seconds(text: str) -> float | None:
    return float(text) if text else None


def start_tls(conn: BufferedSocket) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings["certfile"], settings["keyfile"] or None)
    conn.flush(b"tls\n")
    conn.starttls(context, server_side=True, timeout=20)
    parked = park(conn, LINGER)
    conn.flush(f"tls park={parked} pid={os.getpid()}\n".encode())


def connect(conn: BufferedSocket) -> None:
    pid = os.getpid()
    while line := next_line(conn):
        if not line.endswith(b"\n"):
            conn.flush(b"partial=" + line + f" pid={pid}\n".encode())
            return
        command, _, argument = line.decode().strip().partition(" ")
        if command == "tls":
            start_tls(conn)
            continue
        if command == "waiting":
            control = stop_fd()
            assert control is not None
            select.select([control], [], [], float(argument))
            conn.flush(f"waiting={work_waiting()} pid={pid}\n".encode())
            continue
        conn.flush(f"pid={pid} line={line.decode().strip()}\n".encode())
        if command != "hold" and park(conn, LINGER):
            if command == "die":
                os.kill(pid, signal.SIGKILL)
            return


def main() -> None:
    chosen: DispatchFilter | Literal[False] = False
    if settings["filter"] == "line":
        chosen = DispatchFilter(complete=lambda data: b"\n" in data,
                                idle_timeout=seconds(settings["idle"]),
                                request_timeout=seconds(settings["request"]),
                                timeout_response=b"late\n")
    pool = listen(TCP("127.0.0.1", 0), connect=connect, pre_fork=2, min_fork=2, max_fork=2,
                  fork_delay=0.01, dispatch_filter=chosen)
    os.write(1, f"listening on port {pool.port}\n".encode())


main()
