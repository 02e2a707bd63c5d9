"""Exercise 2: hand the listening socket over to a new server, refusing nobody.

A one-process server that greets each client with its PID and closes. Run
it with ``--handoff PATH`` and it also listens on the Unix socket PATH for
a successor. Start a second copy with ``--take-over PATH``: it connects to
PATH and receives the listening socket itself, as ``SCM_RIGHTS``; it
prints the same port and serves from then on, while the first one stops
accepting and exits. The kernel's backlog belongs to the socket, not to a
process, so no client is refused and none is lost: whoever is listening
takes the next one. Run it with
``python docs/examples/layer2/solutions/ex2_handoff.py [PORT] --handoff PATH``, then
``python docs/examples/layer2/solutions/ex2_handoff.py --take-over PATH --handoff PATH``.
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import socket
from types import FrameType


# --8<-- [start:solution]
def take_over(path: str) -> socket.socket:
    """Ask the server at path for its listening socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel:
        channel.connect(path)
        data, fds, _, _ = socket.recv_fds(channel, 1, 1)
    if data != b"L" or len(fds) != 1:
        raise RuntimeError("no listening socket came")
    return socket.socket(fileno=fds[0])


def hand_over(handoff: socket.socket, listener: socket.socket) -> None:
    """Give the listening socket to the successor that connected to us."""
    successor, _ = handoff.accept()
    with successor:
        socket.send_fds(successor, [b"L"], [listener.fileno()])
    listener.close()  # our reference only: the socket lives on in the successor
    print(f"server {os.getpid()} handed its listener over", flush=True)


def serve(listener: socket.socket, handoff: socket.socket | None) -> None:
    with selectors.DefaultSelector() as selector:
        selector.register(listener, selectors.EVENT_READ)
        if handoff is not None:
            selector.register(handoff, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select():
                if key.fileobj is handoff and handoff is not None:
                    selector.unregister(listener)
                    hand_over(handoff, listener)
                    return
                greet(listener)


def greet(listener: socket.socket) -> None:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return
    with conn:
        conn.setblocking(True)
        conn.sendall(f"server {os.getpid()}\n".encode())
# --8<-- [end:solution]


def open_handoff(path: str) -> socket.socket:
    if os.path.exists(path):
        os.unlink(path)  # the predecessor's file: we replace it (it has stopped listening)
    handoff = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    handoff.bind(path)
    handoff.listen()
    return handoff


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--handoff", metavar="PATH", help="let a successor take over here")
    parser.add_argument("--take-over", metavar="PATH", help="take over from the server at PATH")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    if args.take_over:
        listener = take_over(args.take_over)
    else:
        listener = socket.create_server(("127.0.0.1", args.port))
    listener.setblocking(False)
    print(f"listening on port {listener.getsockname()[1]}", flush=True)
    handoff = None
    try:
        handoff = open_handoff(args.handoff) if args.handoff else None
        serve(listener, handoff)
    finally:
        listener.close()
        if handoff is not None:
            handoff.close()


if __name__ == "__main__":
    main()
