"""Step 1: HTTP by hand: read a request line on a buffered socket, answer it.

The server reads the request line (method, target, version), checks it
strictly, skips the header fields up to the blank line, and answers with a
plain-text response it writes byte by byte: what it understood of the
request line. ``GET`` and ``HEAD`` are served; any other method gets
``501 Not Implemented``, and a request line it cannot accept gets the
status that says why (400, 414, 431, 505). Every response closes the
connection, politely (``finish()``, drain, ``close()``, as in part 1).

Run it with ``python docs/examples/layer3/step01_request_line.py [PORT]``
and ask it with ``curl -i http://127.0.0.1:PORT/some/path?x=1``.
"""

from __future__ import annotations

import argparse
import re
import signal
from types import FrameType

from layer1_sockets import BufferedSocket, poll, tcplisten, timeref

LINE_LIMIT = 8192  # longest request line, CRLF not counted (414 past it)
HEAD_LIMIT = 65536  # most bytes of header fields we skip (431 past it)
METHOD = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a token (RFC 9110 5.6.2)
TARGET = re.compile(rb"/[\x21-\x7e]*")  # origin-form: "/" and visible ASCII, no spaces
VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")


class Refusal(Exception):
    """The request cannot be served; `status` says why ("400 Bad Request")."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


# --8<-- [start:read]
def read_line(conn: BufferedSocket, limit: int, too_long: str) -> bytes | None:
    """Read one line ending in CRLF; return it without the CRLF, or None at EOF."""
    line = conn.read(limit + 2, b"\n")  # limit + CR + LF
    if not line:
        return None  # the client closed before sending anything more
    if not line.endswith(b"\n"):
        if len(line) == limit + 2:
            raise Refusal(too_long)  # no LF within the limit
        raise Refusal("400 Bad Request")  # EOF in the middle of a line
    if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
        raise Refusal("400 Bad Request")  # a bare LF or a bare CR
    return line[:-2]
# --8<-- [end:read]


# --8<-- [start:parse]
def parse_request_line(line: bytes) -> tuple[str, str, str]:
    """Split and check `method SP target SP version` (RFC 9112 section 3)."""
    parts = line.split(b" ")  # exactly one space between the three parts
    if len(parts) != 3:
        raise Refusal("400 Bad Request")
    method, target, version = parts
    match = VERSION.fullmatch(version)
    if match is None or METHOD.fullmatch(method) is None or TARGET.fullmatch(target) is None:
        raise Refusal("400 Bad Request")
    if match.group(1, 2) not in ((b"1", b"0"), (b"1", b"1")):
        raise Refusal("505 HTTP Version Not Supported")
    return method.decode("ascii"), target.decode("ascii"), version.decode("ascii")


def skip_header_fields(conn: BufferedSocket) -> None:
    """Read field lines up to the blank line that ends the head (chapter 2 parses them)."""
    budget = HEAD_LIMIT
    while True:
        if budget <= 0:
            raise Refusal("431 Request Header Fields Too Large")
        line = read_line(conn, budget, "431 Request Header Fields Too Large")
        if line is None:
            raise Refusal("400 Bad Request")  # EOF inside the head
        if line == b"":
            return
        budget -= len(line) + 2
# --8<-- [end:parse]


# --8<-- [start:answer]
def answer(conn: BufferedSocket, status: str, text: str, head_only: bool = False) -> None:
    """Write a complete response by hand: status line, header fields, blank line, body."""
    body = text.encode("utf-8")
    conn.write(f"HTTP/1.1 {status}\r\n".encode("ascii"))
    conn.write(b"Content-Type: text/plain; charset=utf-8\r\n")
    conn.write(b"Content-Length: %d\r\n" % len(body))  # the body's end, for the client
    conn.write(b"Connection: close\r\n")  # one request per connection, for now
    conn.write(b"\r\n")
    if not head_only:  # HEAD: the same head, no body
        conn.write(body)
    conn.flush()


def serve(conn: BufferedSocket) -> None:
    try:
        line = read_line(conn, LINE_LIMIT, "414 URI Too Long")
        if line is None:
            return  # connected and closed without a request: nothing to answer
        method, target, version = parse_request_line(line)
        skip_header_fields(conn)
    except Refusal as refusal:
        print(f"refused: {refusal.status}", flush=True)
        answer(conn, refusal.status, refusal.status + "\n")
        return
    print(f"{method} {target} {version}", flush=True)
    if method not in ("GET", "HEAD"):
        answer(conn, "501 Not Implemented", f"{method} is not implemented here\n")
        return
    text = f"method: {method}\ntarget: {target}\nversion: {version}\n"
    answer(conn, "200 OK", text, head_only=method == "HEAD")
# --8<-- [end:answer]


def end_politely(conn: BufferedSocket) -> None:
    """Part 1, chapter 4: FIN, then discard what the client still sends, then close."""
    conn.finish()
    started = timeref()

    def wait(sock: BufferedSocket, direction: str) -> None:
        left = 2.0 - timeref(started)
        if left <= 0 or not poll([sock], [], left):
            raise TimeoutError("the client did not close")

    try:
        conn.drain_call(wait, 1024 * 1024)
    except (TimeoutError, OSError):
        pass
    conn.close()


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
                serve(conn)
                end_politely(conn)
            except OSError as error:  # one client's failure must not end the server
                print(f"client failed: {error!r}", flush=True)
                conn.reset()


if __name__ == "__main__":
    main()
# --8<-- [end:main]
