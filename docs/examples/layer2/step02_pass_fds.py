"""Step 2: a master that accepts, and hands each connection to a child.

Only the master accepts. For each connection it picks the next child in
turn (round robin) and sends it the connected socket over a Unix socket
pair, as ``SCM_RIGHTS`` ancillary data (``socket.send_fds``). The child
receives a descriptor of its own for the same connection
(``socket.recv_fds``), greets the client with its PID and the descriptor
number it got, and echoes lines until the client sends ``QUIT`` or closes.
The master then has nothing left to do with the connection, so it closes its
copy at once; ``--keep-copies`` keeps the copies instead (in a list, as a
program that records its connections might), to show what goes wrong.
After each hand-over the master prints how many descriptors it holds.

When its socket pair reaches EOF (the master is gone) a child exits.
``SIGTERM`` stops the master and every child. Run it with
``python docs/examples/layer2/step02_pass_fds.py [PORT] [--workers N] [--keep-copies]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import traceback
from dataclasses import dataclass
from types import FrameType

from layer1_sockets import BufferedSocket

STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


@dataclass
class Child:
    pid: int
    channel: socket.socket  # the master's end of the child's socket pair


# --8<-- [start:child]
def child_loop(channel: socket.socket) -> None:
    """Receive connections from the master, one at a time, until it goes away."""
    while True:
        data, fds, flags, _ = socket.recv_fds(channel, 1, 1)
        if not data:  # EOF: the master closed its end (or died)
            return
        if flags & socket.MSG_CTRUNC or len(fds) != 1:
            raise RuntimeError("a message without its descriptor")
        conn = BufferedSocket(socket.socket(fileno=fds[0]))
        try:
            serve(conn, f"worker {os.getpid()} got fd {fds[0]}\n")
            conn.close()
        except OSError:  # the client reset the connection
            conn.reset()


def serve(conn: BufferedSocket, greeting: str) -> None:
    conn.flush(greeting.encode())
    while line := conn.read(4096, b"\n"):
        if line.strip() == b"QUIT":
            return
        conn.flush(line)
# --8<-- [end:child]


# --8<-- [start:fork]
def spawn(listener: socket.socket, children: list[Child]) -> None:
    """Fork a child with its own socket pair; it keeps one end, we keep the other."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        pid = os.fork()
        if pid == 0:  # in the child: drop everything that belongs to the master
            code = 1
            try:
                for number in STOP_SIGNALS:
                    signal.signal(number, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
                listener.close()
                ours.close()
                for other in children:
                    other.channel.close()
                child_loop(theirs)
                code = 0
            except BaseException:
                traceback.print_exc()
            os._exit(code)
        children.append(Child(pid, ours))
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    theirs.close()
    print(f"worker {pid} started", flush=True)
# --8<-- [end:fork]


# --8<-- [start:hand_over]
def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def dispatch(listener: socket.socket, children: list[Child], keep_copies: bool) -> None:
    turn = 0
    kept: list[socket.socket] = []  # with --keep-copies: the bug, kept in plain sight
    while True:
        conn, (_, port) = listener.accept()
        child = children[turn % len(children)]  # blind: busy or not, it is its turn
        turn += 1
        socket.send_fds(child.channel, [b"C"], [conn.fileno()])
        if keep_copies:
            kept.append(conn)
        else:
            conn.close()  # the child has its own descriptor now
        print(f"connection from port {port} handed to worker {child.pid}; "
              f"open descriptors in the master: {open_descriptors()}", flush=True)
# --8<-- [end:hand_over]


# --8<-- [start:main]
def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def stop_children(children: list[Child]) -> None:
    for child in children:
        os.kill(child.pid, signal.SIGTERM)
        child.channel.close()
    for child in children:
        os.waitpid(child.pid, 0)
        print(f"worker {child.pid} stopped", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep-copies", action="store_true",
                        help="do not close the master's copy of each connection (a bug)")
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", args.port))
    print(f"listening on port {listener.getsockname()[1]}", flush=True)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children: list[Child] = []
    try:
        for _ in range(args.workers):
            spawn(listener, children)
        dispatch(listener, children, args.keep_copies)
    finally:
        for number in STOP_SIGNALS:
            signal.signal(number, signal.SIG_IGN)
        stop_children(children)
        listener.close()


if __name__ == "__main__":
    main()
# --8<-- [end:main]
