"""Exercise 1: a reverse server on a raw socket.

The client sends a message and half-closes; the server answers with the
message reversed, byte by byte, and closes. The message ends where the
stream ends, so the server cannot answer before EOF. Messages over
``LIMIT`` bytes are refused. Run it with
``python docs/examples/layer1/solutions/ex1_reverse.py [PORT]``.
"""

from __future__ import annotations

import argparse
import signal
import socket
from types import FrameType

LIMIT = 1024 * 1024


# --8<-- [start:solution]
def receive_all(conn: socket.socket, limit: int) -> bytes | None:
    """Everything until EOF, or None if the client sends more than limit bytes."""
    parts, size = [], 0
    while chunk := conn.recv(65536):
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def serve(listener: socket.socket) -> None:
    while True:
        conn, _ = listener.accept()
        with conn:
            try:
                message = receive_all(conn, LIMIT)
                conn.sendall(b"ERROR too large\n" if message is None else message[::-1])
            except OSError as error:
                print(f"client failed: {error!r}")
# --8<-- [end:solution]


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    with socket.create_server(("127.0.0.1", args.port)) as listener:
        print(f"listening on port {listener.getsockname()[1]}", flush=True)
        serve(listener)


if __name__ == "__main__":
    main()
