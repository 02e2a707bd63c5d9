"""Step 2a: HTTP by hand: parse the header fields strictly.

The request line is read as in step 1 (its functions are imported from
``step01_request_line.py``). Then every field line is split into a name and
a value and checked: a line that starts with whitespace (obsolete line
folding), a name followed by whitespace before its colon, a name that is
not a token, or a control character in a value is refused with 400; more
than ``FIELD_LIMIT`` fields or more than ``HEAD_LIMIT`` bytes with 431. An
HTTP/1.1 request needs exactly one ``Host``. The answer lists the fields as
the server understood them, one per line.

Run it with ``python docs/examples/layer3/step02_fields.py [PORT]`` and try
``curl -i -H 'Accept: text/plain' -H 'Accept: */*' http://127.0.0.1:PORT/``.
"""

from __future__ import annotations

import argparse
import re
import signal

from step01_request_line import (
    HEAD_LIMIT,
    LINE_LIMIT,
    Refusal,
    answer,
    end_politely,
    parse_request_line,
    read_line,
    stop,
)

from layer1_sockets import BufferedSocket, tcplisten

FIELD_LIMIT = 100  # most header fields (431 past it)
NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a token, like the method
CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # controls other than HTAB, and DEL


# --8<-- [start:field]
def parse_field_line(line: bytes) -> tuple[str, str]:
    """Split `name ":" OWS value OWS` (RFC 9112 section 5), refusing anything else."""
    if line[:1] in (b" ", b"\t"):
        raise Refusal("400 Bad Request")  # obs-fold: a continuation of the previous line
    name, colon, value = line.partition(b":")
    if not colon or NAME.fullmatch(name) is None:
        raise Refusal("400 Bad Request")  # no colon, or "Name :", or not a token
    if CONTROL.search(value):
        raise Refusal("400 Bad Request")  # NUL, CR or another control in the value
    return name.decode("ascii"), value.strip(b" \t").decode("iso-8859-1")
# --8<-- [end:field]


# --8<-- [start:head]
Head = tuple[str, str, str, list[tuple[str, str]]]


def read_head(conn: BufferedSocket) -> Head | None:
    """Read request line and fields up to the blank line; None if the client just closed."""
    line = read_line(conn, LINE_LIMIT, "414 URI Too Long")
    if line is None:
        return None
    method, target, version = parse_request_line(line)
    fields: list[tuple[str, str]] = []
    budget = HEAD_LIMIT
    while True:
        if budget <= 0:
            raise Refusal("431 Request Header Fields Too Large")
        line = read_line(conn, budget, "431 Request Header Fields Too Large")
        if line is None:
            raise Refusal("400 Bad Request")  # EOF inside the head
        if line == b"":
            break  # the blank line: the head is complete
        if len(fields) == FIELD_LIMIT:
            raise Refusal("431 Request Header Fields Too Large")
        fields.append(parse_field_line(line))
        budget -= len(line) + 2
    hosts = [value for name, value in fields if name.lower() == "host"]
    if len(hosts) > 1 or (version == "HTTP/1.1" and not hosts):
        raise Refusal("400 Bad Request")  # HTTP/1.1: exactly one Host (RFC 9112 3.2)
    return method, target, version, fields
# --8<-- [end:head]


# --8<-- [start:serve]
def serve(conn: BufferedSocket) -> None:
    try:
        head = read_head(conn)
    except Refusal as refusal:
        print(f"refused: {refusal.status}", flush=True)
        answer(conn, refusal.status, refusal.status + "\n")
        return
    if head is None:
        return
    method, target, version, fields = head
    print(f"{method} {target} {version} with {len(fields)} fields", flush=True)
    if method not in ("GET", "HEAD"):
        answer(conn, "501 Not Implemented", f"{method} is not implemented here\n")
        return
    text = "".join(f"{name.lower()}: {value!r}\n" for name, value in fields)
    answer(conn, "200 OK", text, head_only=method == "HEAD")
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
