"""Exercise 1: split the request target into a path and a query, by hand.

The server of step 1, with a better answer: the path, percent-decoded,
and every field of the query on a line of its own, decoded the way
browsers encode forms (``+`` is a space, ``%XX`` a byte, the bytes UTF-8).
A ``%`` not followed by two hex digits, bytes that are not UTF-8, and a
NUL are refused with 400. Run it with
``python docs/examples/layer3/solutions/ex1_paths.py [PORT]``.
"""

from __future__ import annotations

import argparse
import re
import signal
from types import FrameType

from layer1_sockets import BufferedSocket, poll, tcplisten, timeref

LINE_LIMIT = 8192
REQUEST_LINE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (/[\x21-\x7e]*) HTTP/1\.[01]")
PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


class Refusal(Exception):
    """The request cannot be served (the status is "400 Bad Request" here)."""


# --8<-- [start:solution]
def percent_decode(text: str, plus_is_space: bool) -> str:
    """Decode %XX escapes (and + in a query) into bytes, then the bytes as UTF-8."""
    raw = text.encode("ascii")  # the target holds visible ASCII only
    if plus_is_space:
        raw = raw.replace(b"+", b" ")
    if raw.count(b"%") != len(PERCENT.findall(raw)):
        raise Refusal("a % not followed by two hex digits")
    decoded = PERCENT.sub(lambda match: bytes([int(match[1], 16)]), raw)
    if b"\x00" in decoded:
        raise Refusal("a NUL in the target")
    try:
        return decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise Refusal("the target is not UTF-8") from None


def describe_target(target: str) -> str:
    path, _, query = target.partition("?")  # the first "?" ends the path
    lines = [f"path: {percent_decode(path, plus_is_space=False)}"]
    for field in query.split("&"):
        if field:  # "a=1&&b=2" has an empty field: skip it
            name, _, value = field.partition("=")  # no "=": the value is ""
            name = percent_decode(name, plus_is_space=True)
            value = percent_decode(value, plus_is_space=True)
            lines.append(f"query: {name} = {value}")
    return "".join(line + "\n" for line in lines)
# --8<-- [end:solution]


def answer(conn: BufferedSocket, status: str, text: str) -> None:
    body = text.encode("utf-8")
    conn.flush(f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
               f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode("ascii"), body)


def serve(conn: BufferedSocket) -> None:
    line = conn.read(LINE_LIMIT + 2, b"\n")
    match = REQUEST_LINE.fullmatch(line.removesuffix(b"\r\n")) if line.endswith(b"\r\n") else None
    if match is None:
        answer(conn, "400 Bad Request", "400 Bad Request\n")
        return
    while (field := conn.read(LINE_LIMIT + 2, b"\n")) not in (b"\r\n", b""):
        if not field.endswith(b"\n"):
            answer(conn, "431 Request Header Fields Too Large", "431\n")
            return
    try:
        answer(conn, "200 OK", describe_target(match[2].decode("ascii")))
    except Refusal as refusal:
        answer(conn, "400 Bad Request", f"400 Bad Request: {refusal}\n")


def end_politely(conn: BufferedSocket) -> None:
    """FIN, then discard what the client still sends (two seconds at most), then close."""
    conn.finish()
    started = timeref()

    def wait(sock: BufferedSocket, direction: str) -> None:
        if not poll([sock], [], max(0.0, 2.0 - timeref(started))):
            raise TimeoutError("the client did not close")

    try:
        conn.drain_call(wait, 1024 * 1024)
    except (TimeoutError, OSError):
        pass
    conn.close()


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
                serve(conn)
                end_politely(conn)
            except OSError:
                conn.reset()


if __name__ == "__main__":
    main()
