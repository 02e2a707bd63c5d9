"""Step 3b: blocking-style code with a say in how it waits: an idle timeout.

A line echo server, one client at a time, written with ``read_call`` and
``flush_call``. Each time one of them would block, it calls our wait
function instead, which waits at most ``--idle`` seconds and gives up with
``TimeoutError``. A client that stays silent that long is told so and
disconnected. Run it with
``python docs/examples/layer1/step03_idle.py [PORT] [--idle SECONDS]``.
"""

from __future__ import annotations

import argparse
import signal
from types import FrameType

from layer1_sockets import BufferedSocket, Wait, poll, tcplisten


# --8<-- [start:wait]
def idle_wait(seconds: float) -> Wait:
    """A wait function that allows at most `seconds` of silence per wait."""

    def wait(conn: BufferedSocket, direction: str) -> None:
        readers, writers = ([conn], []) if direction == "r" else ([], [conn])
        if not poll(readers, writers, seconds):
            raise TimeoutError(f"nothing happened for {seconds} seconds")

    return wait
# --8<-- [end:wait]


# --8<-- [start:serve]
def serve_lines(conn: BufferedSocket, idle: float) -> None:
    wait = idle_wait(idle)
    try:
        while line := conn.read_call(wait, 4096, b"\n"):
            conn.flush_call(wait, line)
    except TimeoutError:
        conn.flush_nb(b"ERROR idle timeout\n")  # short: the kernel takes it at once
        print("idle client dropped")
# --8<-- [end:serve]


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of silence allowed")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    with tcplisten("127.0.0.1", args.port) as listener:
        print(f"listening on port {listener.port}", flush=True)
        while True:
            conn = listener.accept()
            try:
                serve_lines(conn, args.idle)
                conn.close()  # the normal end: flush, then FIN
            except OSError as error:  # reset by the client, or the network failed
                print(f"client failed: {error!r}")
            finally:
                conn.reset()  # does nothing after close(); else drops the connection at once


if __name__ == "__main__":
    main()
