"""The benchmark application on the standard library's threaded ``http.server``.

One process, one thread per connection (``ThreadingHTTPServer``), HTTP/1.1
with keep-alive. The answers are those of every server in the benchmark
(see ``wsgi_app.py``), ``GET /big`` included. ``http.server`` does not decode chunked request
bodies, so the handler does, with the small `ChunkedReader` below.

Usage::

    python bench/servers/stdlib_server.py --listen 127.0.0.1:8082
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase

from _multipart import boundary_of, save_file_part

HELLO = b"Hello, World!"
PIECE = 64 * 1024
BIG = 16 * 1024 * 1024
BLOCK = bytes(PIECE)


class LengthReader:
    """``read(n)`` over a body of known length."""

    def __init__(self, stream: BufferedIOBase, length: int) -> None:
        self.stream = stream
        self.left = length

    def read(self, size: int) -> bytes:
        if self.left <= 0:
            return b""
        piece = self.stream.read(min(size, self.left))
        if not piece:
            raise ConnectionError("the body ended early")
        self.left -= len(piece)
        return piece


class ChunkedReader:
    """``read(n)`` over a chunked body, decoding it."""

    def __init__(self, stream: BufferedIOBase) -> None:
        self.stream = stream
        self.left = 0
        self.done = False

    def read(self, size: int) -> bytes:
        if self.done:
            return b""
        if self.left == 0:
            self.left = int(self.stream.readline(1024).split(b";", 1)[0], 16)
            if self.left == 0:
                while self.stream.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self.done = True
                return b""
        piece = self.stream.read(min(size, self.left))
        if not piece:
            raise ConnectionError("the body ended early")
        self.left -= len(piece)
        if self.left == 0:
            self.stream.readline(16)  # the CRLF after the chunk's data
        return piece


class Handler(BaseHTTPRequestHandler):
    """GET: Hello, World!  POST /upload: count.  POST /multipart: save the file field."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, format: str, *args: object) -> None:
        """Log nothing (the peers log no access lines either)."""

    def answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body_reader(self) -> LengthReader | ChunkedReader:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return ChunkedReader(self.rfile)
        return LengthReader(self.rfile, int(self.headers.get("Content-Length", "0")))

    def do_GET(self) -> None:
        if self.path == "/big":  # 16 MiB in 64 KiB pieces (the slow-reader workload)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(BIG))
            self.end_headers()
            for _ in range(BIG // PIECE):
                self.wfile.write(BLOCK)
            return
        self.answer(HELLO)

    def do_POST(self) -> None:
        reader = self.body_reader()
        if self.path == "/multipart":
            folder = os.environ.get("BENCH_UPLOAD_DIR", tempfile.gettempdir())
            with open(os.path.join(folder, f"upload-{os.getpid()}.bin"), "wb") as out:
                count = save_file_part(reader.read, boundary_of(self.headers["Content-Type"]),
                                       out)
        else:
            count = 0
            while piece := reader.read(PIECE):
                count += len(piece)
        self.answer(str(count).encode())


def main() -> int:
    cli = argparse.ArgumentParser(description="http.server running the benchmark app")
    cli.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any)")
    arguments = cli.parse_args()
    host, _, port = arguments.listen.rpartition(":")
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 1024
    server = ThreadingHTTPServer((host, int(port)), Handler)
    print(f"listening on port {server.server_address[1]}", flush=True)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(0))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
