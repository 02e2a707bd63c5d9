"""Exercise 5: a polite QUIT for the line server of chapter 2.

Lines come back in capitals, as in ``step02_buffered.py``. The line
``QUIT`` is answered with ``BYE``, and then the server ends the
connection so that the client receives every answer up to and including
``BYE`` even if it has already sent more: ``finish()``, a bounded drain,
``close()``. Run it with
``python docs/examples/layer1/solutions/ex5_quit.py [PORT]``.
"""

from __future__ import annotations

import argparse
import signal
from types import FrameType

from layer1_sockets import BufferedSocket, poll, tcplisten, timeref

MAXLEN = 64
DRAIN_LIMIT = 16 * 1024 * 1024
DRAIN_SECONDS = 10.0


# --8<-- [start:solution]
def serve_lines(conn: BufferedSocket) -> None:
    while line := conn.read(MAXLEN, b"\n"):
        if line.rstrip(b"\r\n") == b"QUIT":
            conn.flush(b"BYE\n")
            end_politely(conn)
            return
        conn.write(line.upper())  # queued: answers to pipelined lines go out together
        if conn.buffered == 0:
            conn.flush()  # nothing more is waiting: send what we have
    conn.close()


def end_politely(conn: BufferedSocket) -> None:
    conn.finish()
    started = timeref()

    def wait(sock: BufferedSocket, direction: str) -> None:
        left = DRAIN_SECONDS - timeref(started)
        if left <= 0 or not poll([sock], [], left):
            raise TimeoutError("the client did not stop sending")

    try:
        print(f"drained {conn.drain_call(wait, DRAIN_LIMIT)} bytes")
    except (TimeoutError, OSError) as error:
        print(f"gave up draining: {error!r}")
    conn.close()
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
                serve_lines(conn)
                conn.close()  # the normal end: flush, then FIN
            except OSError as error:  # reset by the client, or the network failed
                print(f"client failed: {error!r}")
            finally:
                conn.reset()  # does nothing after close(); else drops the connection at once


if __name__ == "__main__":
    main()
