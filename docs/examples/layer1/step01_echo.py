"""Step 1: an echo server on a raw socket.

Run it with ``python docs/examples/layer1/step01_echo.py [PORT]`` and talk to
it with ``nc 127.0.0.1 PORT``. It serves one client at a time and logs every
``recv`` so you can see how the kernel chops the byte stream.
"""

from __future__ import annotations

import argparse
import signal
import socket
from types import FrameType


# --8<-- [start:listen]
def open_listener(port: int) -> socket.socket:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen()
    return listener
# --8<-- [end:listen]


# --8<-- [start:echo]
def echo(conn: socket.socket) -> None:
    while True:
        chunk = conn.recv(4096)
        if not chunk:  # b"": the client closed its side, no more data will come
            return
        print(f"recv returned {len(chunk)} bytes")
        conn.sendall(chunk)
# --8<-- [end:echo]


# --8<-- [start:serve]
def serve(listener: socket.socket) -> None:
    while True:
        conn, (host, port) = listener.accept()
        with conn:
            print(f"client {host}:{port} connected")
            try:
                echo(conn)
            except OSError as error:  # reset by the client, or the network failed
                print(f"client failed: {error!r}")
            print("client gone")
# --8<-- [end:serve]


# --8<-- [start:main]
def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)  # unwinds the with blocks, which close the sockets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    with open_listener(args.port) as listener:
        print(f"listening on port {listener.getsockname()[1]}", flush=True)
        serve(listener)


if __name__ == "__main__":
    main()
# --8<-- [end:main]
