"""A layer 2 server whose handler misbehaves on request, for the fault tests.

Run as ``python -m layer2_prefork -s tests/hostile_apps/fault_server.py
key=value ...``: every ``key=value`` is a `listen()` option (a Python
literal, ``pre_fork=2``, ``memory_limit=67108864``, ...). It prints
``listening on port N`` and serves a line protocol on 127.0.0.1: the client
sends one command line, the handler answers with one line (or does
something worse):

| command | the handler |
| --- | --- |
| ``pid`` | answers its PID |
| ``hold`` | answers ``held PID``, waits for a line, answers ``done PID`` |
| ``work S`` | takes S seconds (as real work would), answers ``worked PID`` |
| ``leak N`` | keeps N more bytes for ever, answers ``leaked PID TOTAL`` |
| ``runaway`` | allocates 1 MiB after 1 MiB until memory runs out (never answers) |
| ``spin S`` | arms ``timeout(S)``, answers ``spinning PID``, loops for ever |
| ``block S`` | arms ``timeout(S)``, answers ``blocking PID``, waits in ``select`` for ever |
| ``files`` | limits itself to 64 descriptors, answers ``opening PID``, opens files (raises) |
| ``control HEX`` | answers ``sent PID``, writes the bytes HEX to its control socket |
| ``control-fd`` | answers ``sent PID``, sends an idle frame with a descriptor on it |
| ``close-control`` | answers ``closed PID``, closes its control socket |

The worker's control socket is found as the one Unix stream socket that is
neither fd 0-2 nor the connection (the worker has no other).
"""

from __future__ import annotations

import ast
import os
import resource
import select
import socket
import stat
import sys

from layer2_prefork import TCP, listen, run, timeout

MiB = 1 << 20
kept: list[bytes] = []


def control_socket(connection_fd: int) -> int:
    """The descriptor of this worker's control socket."""
    for name in sorted(os.listdir("/proc/self/fd"), key=int):
        fd = int(name)
        if fd <= 2 or fd == connection_fd:
            continue
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                return fd
        except OSError:
            continue
    raise RuntimeError("no control socket")


def answer(conn, text: str) -> None:  # type: ignore[no-untyped-def]
    conn.write(f"{text}\n".encode()).flush()


def misbehave(conn, command: str, argument: str) -> None:  # type: ignore[no-untyped-def]
    """The commands that hurt the worker."""
    pid = os.getpid()
    if command == "runaway":
        while True:
            kept.append(bytes(MiB))
    elif command == "spin":
        timeout(float(argument))
        answer(conn, f"spinning {pid}")
        while True:
            pass
    elif command == "block":
        timeout(float(argument))
        answer(conn, f"blocking {pid}")
        select.select([], [], [])
    elif command == "files":
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))  # run out soon
        answer(conn, f"opening {pid}")
        opened = []
        while True:
            opened.append(os.open(os.devnull, os.O_RDONLY))
    elif command == "control":  # answer first: the master may kill the worker at once
        answer(conn, f"sent {pid}")
        os.write(control_socket(conn.fileno()), bytes.fromhex(argument))
    elif command == "control-fd":
        answer(conn, f"sent {pid}")
        with socket.socket(fileno=os.dup(control_socket(conn.fileno()))) as control:
            socket.send_fds(control, [b"I\x00\x00\x00\x00\x00"],
                            [os.open(os.devnull, os.O_RDONLY)])
    elif command == "close-control":
        answer(conn, f"closed {pid}")
        os.close(control_socket(conn.fileno()))


def connect(conn):  # type: ignore[no-untyped-def]
    command, _, argument = conn.read(terminator=b"\n").decode().strip().partition(" ")
    pid = os.getpid()
    if command == "pid":
        answer(conn, str(pid))
    elif command == "hold":
        answer(conn, f"held {pid}")
        conn.read(terminator=b"\n")
        answer(conn, f"done {pid}")
    elif command == "work":
        select.select([], [], [], float(argument))  # the time some real work would take
        answer(conn, f"worked {pid}")
    elif command == "leak":
        kept.append(b"x" * int(argument))
        answer(conn, f"leaked {pid} {sum(len(block) for block in kept)}")
    else:
        misbehave(conn, command, argument)


def main() -> None:
    options = {}
    for argument in sys.argv[1:]:
        key, _, value = argument.partition("=")
        options[key] = ast.literal_eval(value)
    pool = listen(TCP("127.0.0.1", 0), connect=connect, **options)
    print(f"listening on port {pool.port}", flush=True)


main()
if __name__ == "__main__":
    sys.exit(run())
