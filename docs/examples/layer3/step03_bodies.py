"""Step 3a: HTTP by hand: read a request body, framed by Content-Length or chunked.

The head is read as in step 2 (``step02_fields.py``). Then the server
decides how the body is framed, refusing every ambiguous case: both
``Transfer-Encoding`` and ``Content-Length`` (400), ``chunked`` missing or
not the last transfer coding (400), another coding before it (501), a
``Content-Length`` that is not plain digits, or is sent twice or as a list (400),
a body over ``BODY_LIMIT`` (413). A client
that sent ``Expect: 100-continue`` gets ``100 Continue`` before the body is
read. The body is hashed as it arrives (memory stays flat) and the answer
says how many bytes came and their SHA-256.

Run it with ``python docs/examples/layer3/step03_bodies.py [PORT]`` and
send it a body with ``curl --data-binary @FILE http://127.0.0.1:PORT/``
(add ``-H 'Transfer-Encoding: chunked'`` for a chunked one).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import signal
from collections.abc import Callable

from step01_request_line import Refusal, answer, end_politely, read_line, stop
from step02_fields import read_head

from layer1_sockets import BufferedSocket, tcplisten

BODY_LIMIT = 64 * 1024 * 1024  # layer 3's default request_body_size_limit
DIGITS = re.compile(r"[0-9]{1,18}")
CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,16})(;.*)?")  # hex size, extensions ignored
BLOCK = 65536


# --8<-- [start:framing]
def body_framing(version: str, fields: list[tuple[str, str]]) -> int | None:
    """Return the body length, or None for a chunked body (RFC 9112 section 6)."""
    encodings = [value for name, value in fields if name.lower() == "transfer-encoding"]
    lengths = [value for name, value in fields if name.lower() == "content-length"]
    if encodings and lengths:
        raise Refusal("400 Bad Request")  # two framings: which one ends the body?
    if encodings:
        if version == "HTTP/1.0":
            raise Refusal("400 Bad Request")  # HTTP/1.0 has no chunked coding
        codings = [item.strip().lower() for value in encodings for item in value.split(",")]
        if codings.count("chunked") != 1 or codings[-1] != "chunked":
            raise Refusal("400 Bad Request")  # chunked must be last: else where is the end?
        if len(codings) > 1:
            raise Refusal("501 Not Implemented")  # "gzip, chunked": we do not decode gzip
        return None
    if not lengths:
        return 0  # no framing field: no body
    if len(lengths) > 1 or "," in lengths[0]:
        raise Refusal("400 Bad Request")  # "5, 6", and even "5, 5": refuse, never guess
    if not DIGITS.fullmatch(lengths[0].strip()):
        raise Refusal("400 Bad Request")  # "-1", "+5", "0x10"
    length = int(lengths[0])
    if length > BODY_LIMIT:
        raise Refusal("413 Content Too Large")  # refused before a byte is read
    return length
# --8<-- [end:framing]


# --8<-- [start:length]
def read_length_body(conn: BufferedSocket, length: int, take: Callable[[bytes], None]) -> None:
    while length > 0:
        piece = conn.read(min(length, BLOCK))  # shorter than asked only at EOF
        if not piece:
            raise Refusal("400 Bad Request")  # the client closed inside the body
        take(piece)
        length -= len(piece)
# --8<-- [end:length]


# --8<-- [start:chunked]
def read_chunked_body(conn: BufferedSocket, take: Callable[[bytes], None]) -> None:
    received = 0
    while True:
        line = read_line(conn, 1024, "400 Bad Request")  # chunk-size [; extensions]
        match = CHUNK_SIZE.fullmatch(line or b"")
        if match is None:
            raise Refusal("400 Bad Request")  # EOF, or not a hex size
        size = int(match[1], 16)
        if size == 0:
            break  # the last chunk
        received += size
        if received > BODY_LIMIT:
            raise Refusal("413 Content Too Large")
        read_length_body(conn, size, take)
        if conn.read(2) != b"\r\n":
            raise Refusal("400 Bad Request")  # chunk data must end with CRLF
    while True:  # trailer fields up to a blank line: read and ignored
        line = read_line(conn, 8192, "400 Bad Request")
        if line is None:
            raise Refusal("400 Bad Request")
        if line == b"":
            return
# --8<-- [end:chunked]


# --8<-- [start:serve]
def receive(conn: BufferedSocket) -> tuple[int, str] | None:
    head = read_head(conn)
    if head is None:
        return None
    method, target, version, fields = head
    print(f"{method} {target} {version}", flush=True)
    length = body_framing(version, fields)
    expect = [value.lower() for name, value in fields if name.lower() == "expect"]
    if expect and expect != ["100-continue"]:
        raise Refusal("417 Expectation Failed")
    if expect and version == "HTTP/1.1" and length != 0:
        conn.flush(b"HTTP/1.1 100 Continue\r\n\r\n")  # "go ahead": the client waits for it
    digest, size = hashlib.sha256(), 0

    def take(piece: bytes) -> None:
        nonlocal size
        digest.update(piece)
        size += len(piece)

    if length is None:
        read_chunked_body(conn, take)
    else:
        read_length_body(conn, length, take)
    return size, digest.hexdigest()


def serve(conn: BufferedSocket) -> None:
    try:
        received = receive(conn)
    except Refusal as refusal:
        print(f"refused: {refusal.status}", flush=True)
        answer(conn, refusal.status, refusal.status + "\n")
        return
    if received is not None:
        size, sha256 = received
        print(f"received {size} bytes", flush=True)
        answer(conn, "200 OK", f"received {size} bytes, sha256 {sha256}\n")
# --8<-- [end:serve]


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
            except OSError as error:
                print(f"client failed: {error!r}", flush=True)
                conn.reset()


if __name__ == "__main__":
    main()
