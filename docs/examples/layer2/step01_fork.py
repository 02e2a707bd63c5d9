"""Step 1: a pre-forked accept loop, with nothing but os.fork().

The parent binds one listening socket and forks ``--workers`` children.
Every child blocks in ``accept()`` on that same socket, and the kernel hands
each new connection to exactly one of them. A child greets its client with
its PID and echoes lines until the client closes. The parent serves nobody:
it waits for children to die, reaps them with ``os.wait()`` and forks a
replacement for each. ``SIGTERM`` stops the parent and every child.

With ``--poll`` the children wait in ``select()`` first and then accept
without blocking, as event loops do. Each greeting says how often the child
was woken while it waited for that connection: with ``--poll`` every waiting
child wakes for every connection (the thundering herd). Run it with
``python docs/examples/layer2/step01_fork.py [PORT] [--workers N] [--poll]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import select
import signal
import socket
import traceback
from types import FrameType
from typing import NoReturn

from layer1_sockets import BufferedSocket


# --8<-- [start:listen]
def open_listener(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    return listener
# --8<-- [end:listen]


# --8<-- [start:child]
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def serve(conn: BufferedSocket, greeting: str) -> None:
    conn.flush(greeting.encode())
    while line := conn.read(4096, b"\n"):
        conn.flush(line)


def wait_and_accept(listener: socket.socket, poll: bool) -> socket.socket:
    if not poll:
        return listener.accept()[0]  # the kernel wakes exactly one waiting child
    while True:
        select.select([listener], [], [])  # every waiting child wakes up...
        try:
            return listener.accept()[0]
        except BlockingIOError:  # ...and all but one find nothing
            pass


def times_woken() -> int:
    """How often this process has gone to sleep waiting (and been woken again)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_nvcsw


def child(listener: socket.socket, poll: bool) -> None:
    """The life of one child: accept, serve, accept again, until killed."""
    for number in STOP_SIGNALS:  # undo the parent's handlers, then unblock
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    while True:
        before = times_woken()
        conn = BufferedSocket(wait_and_accept(listener, poll))
        greeting = f"worker {os.getpid()} woken {times_woken() - before}\n"
        try:
            serve(conn, greeting)
            conn.close()
        except OSError:  # the client reset the connection
            conn.reset()
# --8<-- [end:child]


# --8<-- [start:fork]
def spawn(listener: socket.socket, poll: bool, children: set[int]) -> None:
    """Fork one child and record its PID. The child never returns from here."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # no stop before we know its PID
    try:
        pid = os.fork()
        if pid == 0:  # in the child
            try:
                child(listener, poll)
            except BaseException:
                traceback.print_exc()
            os._exit(1)  # never fall back into the parent's code
        children.add(pid)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    print(f"worker {pid} started", flush=True)
# --8<-- [end:fork]


# --8<-- [start:supervise]
def describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"exited with status {code}" if code >= 0 else f"was killed by signal {-code}"


def supervise(listener: socket.socket, workers: int, poll: bool, children: set[int]) -> NoReturn:
    for _ in range(workers):
        spawn(listener, poll, children)
    while True:
        pid, status = os.wait()  # blocks until some child ends
        children.discard(pid)
        print(f"worker {pid} {describe(status)}; forking a replacement", flush=True)
        spawn(listener, poll, children)
# --8<-- [end:supervise]


# --8<-- [start:main]
def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def stop_children(children: set[int]) -> None:
    for pid in children:
        os.kill(pid, signal.SIGTERM)
    for pid in children:
        os.waitpid(pid, 0)  # reap: no zombie, no orphan is left behind
        print(f"worker {pid} stopped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--poll", action="store_true", help="select() before accept()")
    args = parser.parse_args()
    listener = open_listener(args.port)
    listener.setblocking(not args.poll)
    print(f"listening on port {listener.getsockname()[1]}", flush=True)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children: set[int] = set()
    try:
        supervise(listener, args.workers, args.poll, children)
    finally:
        for number in STOP_SIGNALS:  # one stop is enough
            signal.signal(number, signal.SIG_IGN)
        stop_children(children)
        listener.close()


if __name__ == "__main__":
    main()
# --8<-- [end:main]
