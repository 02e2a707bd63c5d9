"""Exercise 2: keep-alive by hand: several requests on one connection.

A by-hand server like step 2 that keeps the connection open after each
answer: HTTP/1.1 unless the client sends ``Connection: close``, HTTP/1.0
only when it sends ``Connection: keep-alive``. Pipelined requests are
answered in order, and the answers to requests already waiting in the
buffer go out together. The answer says which request of the connection
it is. The server takes no bodies (a request with one gets 501 and the
connection closes), closes a connection after ``MAX_REQUESTS`` requests
or ``IDLE_SECONDS`` without a new one, and serves one connection at a
time. Run it with
``python docs/examples/layer3/solutions/ex2_keepalive.py [PORT]``.
"""

from __future__ import annotations

import argparse
import re
import signal
from types import FrameType

from layer1_sockets import BufferedSocket, poll, tcplisten, timeref

LINE_LIMIT = 8192
MAX_REQUESTS = 100
IDLE_SECONDS = 5.0
REQUEST_LINE = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (/[\x21-\x7e]*) (HTTP/1\.[01])")
FIELD = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*")

Head = tuple[str, str, str, dict[str, list[str]]]


class Refusal(Exception):
    """The request cannot be served; the argument is the status line."""


def read_line(conn: BufferedSocket) -> str | None:
    line = conn.read(LINE_LIMIT + 2, b"\n")
    if not line:
        return None
    if not line.endswith(b"\r\n") or b"\r" in line[:-2]:
        raise Refusal("400 Bad Request")
    return line[:-2].decode("iso-8859-1")


def read_head(conn: BufferedSocket) -> Head | None:
    line = read_line(conn)
    if line is None:
        return None  # the client closed between two requests
    request = REQUEST_LINE.fullmatch(line)
    if request is None:
        raise Refusal("400 Bad Request")
    fields: dict[str, list[str]] = {}
    while (line := read_line(conn)) != "":
        field = FIELD.fullmatch(line or "")
        if field is None or len(fields) > 100:
            raise Refusal("400 Bad Request")
        fields.setdefault(field[1].lower(), []).append(field[2])
    return request[1], request[2], request[3], fields


# --8<-- [start:solution]
def keep_alive(version: str, fields: dict[str, list[str]]) -> bool:
    """HTTP/1.1 keeps the connection unless told to close; 1.0 only when asked."""
    options = {item.strip().lower() for value in fields.get("connection", [])
               for item in value.split(",")}
    if version == "HTTP/1.1":
        return "close" not in options
    return "keep-alive" in options and "close" not in options


def respond(conn: BufferedSocket, status: str, text: str, version: str, keep: bool) -> None:
    body = text.encode("utf-8")
    connection = "Connection: close\r\n" if not keep else (
        "Connection: keep-alive\r\n" if version == "HTTP/1.0" else "")
    conn.write(f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
               f"Content-Length: {len(body)}\r\n{connection}\r\n".encode("ascii"), body)
    if not keep or conn.buffered == 0:
        conn.flush()  # no further request waiting: send the answers collected so far


def serve(conn: BufferedSocket) -> None:
    for number in range(1, MAX_REQUESTS + 1):
        if conn.buffered == 0 and not poll([conn], [], IDLE_SECONDS):
            return  # idle too long between requests
        try:
            head = read_head(conn)
        except Refusal as refusal:
            respond(conn, str(refusal), f"{refusal}\n", "HTTP/1.1", keep=False)
            return
        if head is None:
            return
        method, target, version, fields = head
        if "transfer-encoding" in fields or fields.get("content-length", ["0"]) != ["0"]:
            # The body is unread, so the next request would start inside it: close.
            respond(conn, "501 Not Implemented", "no bodies here\n", version, keep=False)
            return
        keep = keep_alive(version, fields) and number < MAX_REQUESTS
        respond(conn, "200 OK", f"request {number} on this connection: {method} {target}\n",
                version, keep)
        if not keep:
            return
# --8<-- [end:solution]


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
