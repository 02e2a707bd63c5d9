"""Step 2a: a line server on a raw socket, with a line reader built by hand.

Every line the client sends comes back in capitals. Lines longer than
``MAXLEN`` bytes are refused, and a last line without a newline is reported.
Run it with ``python docs/examples/layer1/step02_line_reader.py [PORT]``.
"""

from __future__ import annotations

import argparse
import signal
import socket
from types import FrameType

MAXLEN = 64  # longest line we accept, newline included


# --8<-- [start:reader]
class LineReader:
    """Cut a byte stream into lines, keeping whatever follows a newline."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = bytearray()  # received, not yet returned
        self.eof = False

    def readline(self, maxlen: int) -> bytes:
        """Return a line with its newline, or maxlen bytes, or what is left at EOF."""
        while True:
            end = self.buffer.find(b"\n", 0, maxlen)
            if end >= 0:
                return self.take(end + 1)
            if len(self.buffer) >= maxlen or self.eof:
                return self.take(maxlen)
            chunk = self.conn.recv(4096)
            if chunk:
                self.buffer += chunk
            else:
                self.eof = True

    def take(self, size: int) -> bytes:
        data = bytes(self.buffer[:size])
        del self.buffer[:size]  # the rest stays for the next call
        return data

    def skip_line(self) -> None:
        """Throw away input up to and including the next newline (or EOF)."""
        while True:
            piece = self.readline(4096)
            if piece == b"" or piece.endswith(b"\n"):
                return
# --8<-- [end:reader]


# --8<-- [start:serve]
def serve_lines(conn: socket.socket) -> None:
    reader = LineReader(conn)
    while True:
        line = reader.readline(MAXLEN)
        if line == b"":
            return  # EOF right after a newline: a clean end
        if line.endswith(b"\n"):
            conn.sendall(line.upper())
        elif len(line) == MAXLEN:
            reader.skip_line()
            conn.sendall(b"ERROR line too long\n")
        else:
            conn.sendall(b"ERROR no newline at end of input\n")
            return
# --8<-- [end:serve]


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    with socket.create_server(("127.0.0.1", args.port)) as listener:
        print(f"listening on port {listener.getsockname()[1]}", flush=True)
        while True:
            conn, _ = listener.accept()
            with conn:
                try:
                    serve_lines(conn)
                except OSError as error:  # reset by the client, or the network failed
                    print(f"client failed: {error!r}")


if __name__ == "__main__":
    main()
