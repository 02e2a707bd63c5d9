"""Exercise 4: a deadline per line, instead of an idle timeout.

Like ``step03_idle.py``, a line echo server, but each line must be
complete within ``--seconds`` of the moment the server starts waiting for
it, however the bytes trickle in. A client that is too slow is told so and
disconnected. Run it with
``python docs/examples/layer1/solutions/ex4_deadline.py [PORT] [--seconds S]``.
"""

from __future__ import annotations

import argparse
import signal
from types import FrameType

from layer1_sockets import BufferedSocket, Wait, poll, tcplisten, timeref


# --8<-- [start:solution]
def deadline_wait(seconds: float) -> Wait:
    """A wait function for one operation that must end within `seconds` from now."""
    started = timeref()

    def wait(conn: BufferedSocket, direction: str) -> None:
        left = seconds - timeref(started)
        readers, writers = ([conn], []) if direction == "r" else ([], [conn])
        if left <= 0 or not poll(readers, writers, left):
            raise TimeoutError(f"not done within {seconds} seconds")

    return wait


def serve_lines(conn: BufferedSocket, seconds: float) -> None:
    try:
        while line := conn.read_call(deadline_wait(seconds), 4096, b"\n"):
            conn.flush_call(deadline_wait(seconds), line)
    except TimeoutError:
        conn.flush_nb(b"ERROR too slow\n")
        print("slow client dropped")
# --8<-- [end:solution]


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=10.0, help="time allowed per line")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    with tcplisten("127.0.0.1", args.port) as listener:
        print(f"listening on port {listener.port}", flush=True)
        while True:
            conn = listener.accept()
            try:
                serve_lines(conn, args.seconds)
                conn.close()  # the normal end: flush, then FIN
            except OSError as error:  # reset by the client, or the network failed
                print(f"client failed: {error!r}")
            finally:
                conn.reset()  # does nothing after close(); else drops the connection at once


if __name__ == "__main__":
    main()
