"""A line server for the tests of accepting workers, hand-overs and the queue.

Run it under the command line (``python -m layer2_prefork -s -d``) with
``key=value`` arguments:

* ``workers=N`` (default 2): a fixed pool of N workers;
* ``filter=line`` (default) or ``filter=none``: a `DispatchFilter` whose
  request is one line, or none;
* ``max_bytes=N``: the filter's ``max_bytes`` (default 16384);
* ``local=PATH``: a Unix listener too (listener 1; the TCP one is 0);
* ``interval=NAME:DELAY``: a timer (repeatable). Each run prints
  ``tick NAME TIME PID``; a timer named ``dying...`` kills its worker
  (SIGKILL) in its first run, after the line (a marker file in ``marker=DIR``
  says the first run happened);
* ``die_after_hold=1``: a worker that handed the master a connection whose
  first bytes start with ``die`` kills itself right after the ``H``;
* ``die_after_take=1``: the first worker that takes a run of a timer named
  ``taken...`` from the queue kills itself before it starts the run.

Each connection sends one command line; the handler answers with a line
that names its worker:

* ``pid``: ``pid=PID``;
* ``size ...``: ``pid=PID size=<bytes in the line> sha=<sha256 of the line>``
  (for heads past what a message payload holds);
* ``hold``: ``held PID``, then waits for a line, answers ``done PID``;
* ``linger SECONDS LIMIT``: answers ``lingering PID``, then calls
  ``linger(conn, SECONDS, LIMIT)`` and prints ``lingered PID <result>`` on
  stdout;
* ``send COUNT keep|close STALL``: answers ``sending COUNT PID``, then hands
  COUNT bytes of a file (``pattern(COUNT)``, written to ``DIR/body-PID`` with
  ``marker=DIR``) to the master with ``send_rest`` and prints ``sent PID
  <result>``; with ``keep`` the connection is parked afterwards, and its
  next line is answered as any other.

Every answer line is also printed on stdout as ``served PID <command>``.
"""

from __future__ import annotations

import hashlib
import os
import signal
import sys
import time

from layer1_sockets import BufferedSocket
from layer2_prefork import (
    TCP,
    DispatchFilter,
    Event,
    Interval,
    Local,
    linger,
    listen,
    send_rest,
)
from layer2_prefork.worker import _loop as _worker

settings: dict[str, str] = {"workers": "2", "filter": "line", "max_bytes": "16384",
                            "local": "", "marker": "", "die_after_hold": "",
                            "die_after_take": ""}
intervals: list[Interval] = []
for argument in sys.argv[1:]:
    key, _, value = argument.partition("=")
    if key == "interval":
        name, delay = value.split(":")
        intervals.append(Interval(name, float(delay)))
    elif key in settings:
        settings[key] = value
    else:
        raise SystemExit(f"unknown argument {argument!r}")


def say(line: str) -> None:
    """One line on stdout in one system call: lines of processes never mix."""
    os.write(1, (line + "\n").encode())


def pattern(count: int) -> bytes:
    """The bytes ``send`` sends: not one repeated byte, so a shift or a gap shows."""
    block = bytes(range(251)) * 261  # 65511 bytes: no power of two
    return (block * (count // len(block) + 1))[:count]


def first_run(name: str) -> bool:
    try:
        os.close(os.open(os.path.join(settings["marker"], name), os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


def tick(event: Event) -> None:
    name = event.interval or ""
    say(f"tick {name} {time.monotonic():.6f} {os.getpid()}")
    if name.startswith("dying") and first_run(name):
        os.kill(os.getpid(), signal.SIGKILL)


def send(conn: BufferedSocket, count: int, keep: bool, stall: float) -> None:
    pid = os.getpid()
    path = os.path.join(settings["marker"], f"body-{pid}")
    with open(path, "wb") as body:
        body.write(pattern(count))
    conn.flush(f"sending {count} {pid}\n".encode())
    with open(path, "rb") as body:
        result = send_rest(conn, body.fileno(), 0, count, keep_alive=keep, stall=stall,
                           linger_timeout=5.0)
    say(f"sent {pid} {result}")


def connect(conn: BufferedSocket | Event) -> None:
    if isinstance(conn, Event):
        tick(conn)
        return
    pid = os.getpid()
    while True:
        line = conn.read(terminator=b"\n")
        if not line.endswith(b"\n"):
            return  # the client's end
        command, _, argument = line.decode(errors="replace").strip().partition(" ")
        say(f"served {pid} {command}")
        if command == "size":
            digest = hashlib.sha256(line).hexdigest()
            conn.flush(f"pid={pid} size={len(line)} sha={digest}\n".encode())
        elif command == "hold":
            conn.flush(f"held {pid}\n".encode())
            conn.read(terminator=b"\n")
            conn.flush(f"done {pid}\n".encode())
        elif command == "linger":
            seconds, limit = argument.split()
            conn.flush(f"lingering {pid}\n".encode())
            say(f"lingered {pid} {linger(conn, float(seconds), int(limit))}")
            return
        elif command == "send":
            count, mode, stall = argument.split()
            send(conn, int(count), mode == "keep", float(stall))
            if mode == "keep":
                return  # the master has the connection; its next line comes back
            return
        else:
            conn.flush(f"pid={pid}\n".encode())
        if not conn.buffered:
            return


def die_after_hold() -> None:
    """Make a worker that handed over a connection starting with ``die`` die at once."""
    hold = _worker.Worker._hold

    def hold_then_die(self: _worker.Worker, index: int, conn: object, data: bytes) -> None:
        hold(self, index, conn, data)  # type: ignore[arg-type]
        if data.startswith(b"die"):
            os.kill(os.getpid(), signal.SIGKILL)

    _worker.Worker._hold = hold_then_die  # type: ignore[method-assign,assignment]


def die_after_take() -> None:
    """Make the first worker that takes a run of a ``taken...`` timer die before the run."""
    take = _worker.Worker._take_queued

    def take_then_die(self: _worker.Worker) -> _worker.Work | None:
        work = take(self)
        if work is not None and work[1] is None:
            listener = self.spec.listeners[work[0]]
            if isinstance(listener, Interval) and listener.name.startswith("taken") \
                    and first_run(listener.name):
                os.kill(os.getpid(), signal.SIGKILL)
        return work

    _worker.Worker._take_queued = take_then_die  # type: ignore[method-assign]


def main() -> None:
    if settings["die_after_hold"]:
        die_after_hold()
    if settings["die_after_take"]:
        die_after_take()
    listeners: list[TCP | Local | Interval] = [TCP("127.0.0.1", 0)]
    if settings["local"]:
        listeners.append(Local(settings["local"]))
    listeners.extend(intervals)
    chosen: DispatchFilter | bool = False
    if settings["filter"] == "line":
        chosen = DispatchFilter(complete=lambda data: b"\n" in data,
                                max_bytes=int(settings["max_bytes"]))
    count = int(settings["workers"])
    pool = listen(*listeners, connect=connect, pre_fork=count, min_fork=count,
                  max_fork=count, fork_delay=0.01, dispatch_filter=chosen)
    say(f"listening on port {pool.port}")


main()
