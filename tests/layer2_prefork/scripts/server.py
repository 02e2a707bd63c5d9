"""A configurable test server: listen() options and behaviours from argv.

Arguments are ``key=value``: any listen() option (``pre_fork=2``,
``fork_delay=0.05``, ...; values are Python literals), plus

* ``tcp=0`` (default) / ``tcp=none``: a TCP listener on 127.0.0.1, that port;
* ``local=PATH``: a Unix listener;
* ``interval=NAME:DELAY[:strict]`` and ``main=NAME``: timer listeners (repeatable);
* ``prepare=ok|raise|print|hang-first:PATH``; ``finish=print``;
* ``close_timeout=SECONDS``: how long the automatic close waits for a slow peer;
* ``pools=2``: declare the same pool twice (each on its own port).

A client sends one command line; see ``connect`` for the commands.
"""

from __future__ import annotations

import ast
import functools
import os
import select
import sys
import time

from layer2_prefork import (
    TCP,
    Interval,
    Local,
    Main,
    StartupError,
    listen,
    run,
    timeout,
    timeout_each,
)
from layer2_prefork.worker import _loop as _worker
from layer2_prefork.worker import _timeout

kept: list[bytes] = []


def say(line: str) -> None:
    """Write one line to stdout in one system call: lines from processes never mix."""
    os.write(1, (line + "\n").encode())


def prepare_with(mode: str) -> None:
    if mode == "raise":
        raise RuntimeError("prepare failed on purpose")
    if mode == "print":
        say(f"prepared {os.getpid()}")
    if mode.startswith("hang-first:"):
        try:
            os.close(os.open(mode.split(":", 1)[1], os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
        say(f"hanging {os.getpid()}")
        while True:
            os.sched_yield()


def say_finished() -> None:
    say(f"finished {os.getpid()}")


def control_socket() -> int:
    """The worker's control socket (a worker also holds its pool's listeners and queue)."""
    worker = _worker.current()
    if worker is None:
        raise RuntimeError("no control socket")
    return worker.control.fileno()


def handle_event(event: object) -> object:
    name = getattr(event, "interval", None)
    if name:
        say(f"tick {name} {time.monotonic():.6f} {os.getpid()}")
        if name.startswith("slow"):
            select.select([], [], [], 0.15)  # simulated work that takes 0.15 s
        return None
    say(f"main {event.main} {os.getpid()}")  # type: ignore[attr-defined]
    return None


def connect(conn):  # type: ignore[no-untyped-def]
    if conn.interval is not None or not hasattr(conn, "read"):
        return handle_event(conn)
    command, _, argument = conn.read(terminator=b"\n").decode().strip().partition(" ")
    pid = os.getpid()
    if command == "pid":
        conn.write(f"{pid}\n".encode())
    elif command == "echo":
        conn.write(argument.encode() + b"\n")
    elif command == "hold":
        conn.write(f"held {pid}\n".encode()).flush()
        conn.read(terminator=b"\n")
        conn.write(f"done {pid}\n".encode())
    elif command == "raise":
        raise RuntimeError("connect failed on purpose")
    elif command == "false":
        conn.write(f"bye {pid}\n".encode())
        return False
    elif command == "stderr":
        print(argument, file=sys.stderr, flush=True)
        conn.write(b"ok\n")
    elif command == "spin":
        timeout(float(argument))
        conn.write(f"spinning {pid}\n".encode()).flush()
        while True:
            pass
    elif command == "arm":
        timeout(float(argument))
        conn.write(f"armed {pid}\n".encode())
    elif command == "each":  # a lazy limit left stale, kept between connections from 0.1 s on
        _timeout.REST_FAR = 0.1
        timeout_each(float(argument), lambda: None)
        conn.write(f"each {pid}\n".encode())
    elif command == "alloc":
        block = bytearray(int(argument))
        conn.write(f"allocated {len(block)}\n".encode())
    elif command == "keep":
        kept.append(b"x" * int(argument))
        conn.write(f"kept {pid}\n".encode())
    elif command == "garbage":  # answer first: the master may kill the worker at once
        conn.write(b"sent\n").flush()
        os.write(control_socket(), b"garbage!")
    elif command == "nested":
        for call in (lambda: listen(TCP("127.0.0.1", 0), connect=connect), run):
            try:
                call()
            except StartupError as error:
                conn.write(f"{error}\n".encode())
    elif command == "unflushed":
        conn.write_nb(b"x" * int(argument))  # queued; whatever did not fit is left to close
        return None
    conn.flush()
    return None


def main() -> None:
    options: dict[str, object] = {}
    listeners: list[object] = []
    tcp: str = "0"
    pools = 1
    prepare = finish = None
    for argument in sys.argv[1:]:
        key, _, value = argument.partition("=")
        if key == "tcp":
            tcp = value
        elif key == "local":
            listeners.append(Local(value))
        elif key == "interval":
            name, delay, *strict = value.split(":")
            listeners.append(Interval(name, float(delay), strict=bool(strict)))
        elif key == "main":
            listeners.append(Main(value))
        elif key == "prepare":
            prepare = functools.partial(prepare_with, value)
        elif key == "finish":
            finish = say_finished
        elif key == "pools":
            pools = int(value)
        elif key == "close_timeout":
            _worker.CLOSE_TIMEOUT = float(value)
        else:
            options[key] = ast.literal_eval(value)
    if tcp != "none":
        listeners.insert(0, TCP("127.0.0.1", int(tcp)))
    for _ in range(pools):
        pool = listen(*listeners, prepare=prepare, connect=connect, finish=finish,
                      **options)  # type: ignore[arg-type]
        if any(isinstance(listener, TCP) for listener in listeners):
            say(f"listening on port {pool.port}")
        else:
            print("ready", flush=True)


main()
if __name__ == "__main__":
    sys.exit(run())
