"""Exercise 2: length-prefixed frames on a BufferedSocket.

A frame is a length in decimal digits, a newline, and that many bytes. The
server answers every frame with a frame holding the same bytes reversed.
A bad length line or a frame over ``MAX_FRAME`` gets ``ERROR bad length``;
EOF inside a frame gets ``ERROR frame cut short``. Run it with
``python docs/examples/layer1/solutions/ex2_frames.py [PORT]``.
"""

from __future__ import annotations

import argparse
import re
import signal
from types import FrameType

from layer1_sockets import BufferedSocket, tcplisten

MAX_FRAME = 1024 * 1024
LENGTH = re.compile(rb"(0|[1-9][0-9]{0,8})\n")


# --8<-- [start:solution]
class FrameError(Exception):
    """The client broke the framing rules; the message says how."""


def read_frame(conn: BufferedSocket) -> bytes | None:
    """The payload of the next frame, or None at EOF between frames."""
    head = conn.read(10, b"\n")  # nine digits and the newline at most
    if head == b"":
        return None
    match = LENGTH.fullmatch(head)
    if match is None or int(match[1]) > MAX_FRAME:
        raise FrameError("bad length")
    size = int(match[1])
    payload = conn.read(size) if size else b""  # read(0) would be a ValueError
    if len(payload) < size:
        raise FrameError("frame cut short")
    return payload


def serve_frames(conn: BufferedSocket) -> None:
    try:
        while (payload := read_frame(conn)) is not None:
            conn.flush(b"%d\n" % len(payload), payload[::-1])
    except FrameError as error:
        conn.flush(f"ERROR {error}\n".encode())
# --8<-- [end:solution]


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    with tcplisten("127.0.0.1", args.port) as listener:
        print(f"listening on port {listener.port}", flush=True)
        while True:
            conn = listener.accept()
            try:
                serve_frames(conn)
                conn.close()  # the normal end: flush, then FIN
            except OSError as error:  # reset by the client, or the network failed
                print(f"client failed: {error!r}")
            finally:
                conn.reset()  # does nothing after close(); else drops the connection at once


if __name__ == "__main__":
    main()
