"""Step 2b: the same line server, on a BufferedSocket.

Behaves exactly like ``step02_line_reader.py``: every line comes back in
capitals, over-long lines are refused, an unterminated last line is
reported. The hand-made reader is gone; ``read(maxlen, terminator)`` does
its job. Run it with ``python docs/examples/layer1/step02_buffered.py [PORT]``.
"""

from __future__ import annotations

import argparse
import signal
from types import FrameType

from layer1_sockets import BufferedSocket, tcplisten

MAXLEN = 64  # longest line we accept, newline included


# --8<-- [start:serve]
def serve_lines(conn: BufferedSocket) -> None:
    while True:
        line = conn.read(MAXLEN, b"\n")
        if line == b"":
            return  # EOF right after a newline: a clean end
        if line.endswith(b"\n"):
            conn.flush(line.upper())
        elif len(line) == MAXLEN:
            conn.drain(terminator=b"\n")  # skip the rest of the line
            conn.flush(b"ERROR line too long\n")
        else:
            conn.flush(b"ERROR no newline at end of input\n")
            return
# --8<-- [end:serve]


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


# --8<-- [start:main]
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
# --8<-- [end:main]


if __name__ == "__main__":
    main()
