"""Step 4: ending a connection without losing the last word.

An upload server. The client sends ``SIZE n`` and a newline, then n bytes;
the server answers ``OK n bytes sha256=...`` or an error. Uploads over
``LIMIT`` are refused at once, before their bytes are read, and the server
then ends the connection so that the client still gets the refusal: it
half-closes with ``finish()``, drains what the client keeps sending, and
only then closes. A head that is not ``SIZE n`` gets a reset.

``--careless`` makes the server ``close()`` right after refusing, so you can
watch the kernel turn that into a reset. Run it with
``python docs/examples/layer1/step04_ending.py [PORT] [--careless]``.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import signal
from types import FrameType

from layer1_sockets import BufferedSocket, poll, tcplisten, timeref

LIMIT = 64 * 1024  # the largest upload we accept
DRAIN_LIMIT = 64 * 1024 * 1024  # the most we read and throw away to end politely
DRAIN_SECONDS = 10.0  # the longest we wait for the client to stop sending
HEAD = re.compile(rb"SIZE (\d{1,12})\n")


# --8<-- [start:handle]
def handle(conn: BufferedSocket, careless: bool) -> None:
    head = HEAD.fullmatch(conn.read(64, b"\n"))
    if head is None:
        print("not an upload: reset")
        conn.reset()  # RST: the client learns at once that we gave up
        return
    size = int(head[1])
    if size > LIMIT:
        conn.flush(b"ERROR too large\n")
        if careless:
            conn.close()  # unread input: the kernel sends RST, not FIN
        else:
            end_politely(conn)
        return
    conn.flush(receive_upload(conn, size))
    end_politely(conn)


def receive_upload(conn: BufferedSocket, size: int) -> bytes:
    digest, left = hashlib.sha256(), size
    while left > 0:
        chunk = conn.read(min(left, 65536))  # shorter than asked: EOF came
        if not chunk:
            return b"ERROR upload cut short\n"
        digest.update(chunk)
        left -= len(chunk)
    return f"OK {size} bytes sha256={digest.hexdigest()}\n".encode()
# --8<-- [end:handle]


# --8<-- [start:end]
def end_politely(conn: BufferedSocket) -> None:
    """FIN first, then read and discard until the client closes too."""
    conn.finish()  # flush, then FIN: the client reads our answer, then EOF
    started = timeref()

    def wait(sock: BufferedSocket, direction: str) -> None:
        left = DRAIN_SECONDS - timeref(started)
        if left <= 0 or not poll([sock], [], left):
            raise TimeoutError("the client did not stop sending")

    try:
        drained = conn.drain_call(wait, DRAIN_LIMIT)
        print(f"drained {drained} bytes")
    except (TimeoutError, OSError) as error:
        print(f"gave up draining: {error!r}")
    conn.close()
# --8<-- [end:end]


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--careless", action="store_true", help="close() without draining")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    with tcplisten("127.0.0.1", args.port) as listener:
        print(f"listening on port {listener.port}", flush=True)
        while True:
            conn = listener.accept()
            try:
                handle(conn, args.careless)
            except OSError as error:  # one client's failure must not end the server
                print(f"client failed: {error!r}")
                conn.reset()


if __name__ == "__main__":
    main()
