"""Exercise 3: a master that survives a worker which breaks the protocol.

Step 3's master believes every frame a child sends. This one checks each
frame against what a child may say: a known kind (``I`` or ``B``), an empty
payload, no ``I`` from a child that is already idle, and no frame longer
than the header allows. A child that breaks a rule is killed with
``SIGKILL``; the master logs why, reaps it, forks a replacement and goes on.

To have a rude child to test with, a client can tell its child to
misbehave: ``GARBAGE`` writes an unknown kind, ``TWICE`` says ``I`` twice,
``HUGE`` announces a payload of 2 GiB. Everything else is step 3 (imported
from ``step03_control.py``, which must sit next to this file's folder). Run
it with ``python docs/examples/layer2/solutions/ex3_guard.py [PORT] [--workers N]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import step03_control as step03

from layer1_sockets import BufferedSocket


# --8<-- [start:solution]
class ProtocolError(Exception):
    pass


def next_kind(buffer: bytearray) -> bytes | None:
    """Cut the next frame off buffer and return its kind; None if it is incomplete."""
    if len(buffer) < step03.HEADER.size:
        return None
    kind, fds, length = step03.HEADER.unpack_from(buffer)
    if bytes([kind]) not in (step03.IDLE, step03.GOODBYE):
        raise ProtocolError(f"unknown kind {kind:#04x}")
    if fds or length:  # I and B carry nothing; never wait for a payload of 2 GiB
        raise ProtocolError(f"{chr(kind)} announcing {length} bytes and {fds} descriptors")
    del buffer[:step03.HEADER.size]
    return bytes([kind])


class GuardedMaster(step03.Master):
    def on_message(self, child: step03.Child) -> None:
        try:
            data = child.channel.recv(4096)
        except BlockingIOError:
            return
        except ConnectionResetError:
            data = b""
        if not data:
            self.unwatch(child)
            return
        child.received += data
        try:
            while (kind := next_kind(child.received)) is not None:
                if kind == step03.IDLE and child.pid in self.idle:
                    raise ProtocolError("I from a worker that is idle already")
                self.handle(child, kind)
        except ProtocolError as error:
            self.kill(child, str(error))

    def handle(self, child: step03.Child, kind: bytes) -> None:
        print(f"worker {child.pid} says {kind.decode()}", flush=True)
        if kind == step03.IDLE and self.stopping:
            self.terminate(child)
        elif kind == step03.IDLE:
            self.idle.append(child.pid)

    def kill(self, child: step03.Child, reason: str) -> None:
        print(f"worker {child.pid} broke the protocol ({reason}); killing it", flush=True)
        os.kill(child.pid, signal.SIGKILL)
        self.unwatch(child)  # reap() collects it, and the loop forks a replacement
        if child.pid in self.idle:
            self.idle.remove(child.pid)
# --8<-- [end:solution]


channel_to_master: socket.socket | None = None  # in a child: its end of the socket pair
original_child_loop = step03.child_loop


def child_loop(channel: socket.socket) -> None:
    global channel_to_master
    channel_to_master = channel
    original_child_loop(channel)


def rude_serve(conn: BufferedSocket, greeting: str) -> None:
    """Step 3's serve(), with three ways to break the protocol on request."""
    assert channel_to_master is not None
    conn.flush(greeting.encode())
    while line := conn.read(4096, b"\n"):
        match line.strip():
            case b"GARBAGE":  # then wait for the master's verdict
                channel_to_master.sendall(step03.HEADER.pack(ord("X"), 0, 0))
            case b"TWICE":
                channel_to_master.sendall(step03.frame(step03.IDLE) * 2)
            case b"HUGE":
                channel_to_master.sendall(step03.HEADER.pack(ord("I"), 0, 2**31))
            case _:
                conn.flush(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    step03.serve = rude_serve
    step03.child_loop = child_loop
    listener = socket.create_server(("127.0.0.1", args.port))
    listener.setblocking(False)
    print(f"listening on port {listener.getsockname()[1]}", flush=True)
    GuardedMaster(listener, args.workers).run()


if __name__ == "__main__":
    main()
