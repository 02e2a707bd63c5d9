"""Exercise 1: a graceful stop for the pre-forked children of step 1.

As step 1 (blocking ``accept()`` only), but ``SIGTERM`` stops politely:
the parent shuts the shared listening socket down, which makes every
``accept()`` fail (on Linux with ``EINVAL``) in every process at once. A
child waiting in ``accept()`` therefore leaves at once; a child serving a
client finishes with it first, and leaves when it comes back to
``accept()``. The parent replaces nobody any more and exits 0 when the last
child has ended. New clients are refused from the moment of the stop.
Run it with ``python docs/examples/layer2/solutions/ex1_graceful.py [PORT] [--workers N]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import traceback
from types import FrameType

from layer1_sockets import BufferedSocket

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def serve(conn: BufferedSocket) -> None:
    conn.flush(f"worker {os.getpid()}\n".encode())
    while line := conn.read(4096, b"\n"):
        conn.flush(line)


# --8<-- [start:solution]
def say(line: str) -> None:
    """Print a line in one write, so that lines of several processes never mix."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def child(listener: socket.socket) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C still ends everything at once
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the polite stop comes through the socket
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    while True:
        try:
            sock, _ = listener.accept()
        except OSError:  # EINVAL: the listener was shut down, the server stops
            say(f"worker {os.getpid()} leaves")
            return
        conn = BufferedSocket(sock)
        try:
            serve(conn)  # a stop meanwhile does not disturb this client
            conn.close()
        except OSError:
            conn.reset()


def stop_gracefully(listener: socket.socket, children: set[int]) -> None:
    listener.shutdown(socket.SHUT_RDWR)  # every accept(), in every process, fails now
    listener.close()
    while children:
        pid, status = os.wait()
        children.discard(pid)
        say(f"worker {pid} exited with status {os.waitstatus_to_exitcode(status)}")
# --8<-- [end:solution]


def spawn(listener: socket.socket, children: set[int]) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                child(listener)
                code = 0
            except BaseException:
                traceback.print_exc()
            os._exit(code)
        children.add(pid)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    say(f"worker {pid} started")


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", args.port))
    say(f"listening on port {listener.getsockname()[1]}")
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children: set[int] = set()
    try:
        for _ in range(args.workers):
            spawn(listener, children)
        while True:
            pid, status = os.wait()
            children.discard(pid)
            code = os.waitstatus_to_exitcode(status)
            say(f"worker {pid} ended ({code}); forking a replacement")
            spawn(listener, children)
    finally:
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        stop_gracefully(listener, children)


if __name__ == "__main__":
    main()
