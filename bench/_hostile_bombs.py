"""The one-request attacks: bombs, framing tricks and questions of policy.

Each attack sends one crafted request per connection, again and again for
the duration (at most `count` times, at least once), reads every answer
until the server closes, and checks it: an answer the server should not
have given is a problem of the row (a dotfile served, a protocol-relative
redirect, a spoofed address believed, a request smuggled past the
framing, a 500 where the client's input deserved a 4xx or the range an
answer). The bombs are built once per attack, so their size costs the
client time only once:

* form bombs: ``&a`` repeated to `size` bytes (urlencoded), or `parts`
  tiny multipart parts;
* header bombs: 10,000 header fields; one 2 MiB field; a ``Cookie`` of
  900 KiB;
* a million tiny chunks: a chunked body of 1-byte chunks (`count`
  chunks), on as many connections at once as the server has workers
  (each costs a worker CPU time per chunk);
* ``Content-Length: 5, 5`` and ``Content-Length`` with
  ``Transfer-Encoding``, each followed by a hidden request;
* ``Range: bytes=1000...0-`` with 4,400 zeros (more digits than Python's
  `int` converts by default);
* ``/.env``, ``GET //docs`` (a folder: its slash redirect) and
  ``Forwarded: for=127.0.0.1`` from the untrusted source 127.0.0.2.

Invariants: requests are bounded in count, size and time; every socket
is closed (`exchange`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from _hostile_net import Reply, Tally, exchange
from _hostile_procs import Target

Check = Callable[[Reply, Tally], None]
Attack = Callable[[Target, float, int], Tally]
CLOSE = "Connection: close\r\n"
ANSWER_TIMEOUT = 120.0


def repeat(request: bytes, check: Check | None = None, count: int = 50,
           source: str | None = None, parallel: bool = False) -> Attack:
    """Send `request` on new connections for the duration (1 to `count` rounds).

    With `parallel`, each round sends it on half the attack's connections at
    once (as many as the server has workers).
    """

    def one(target: Target, timeout: float, tally: Tally) -> None:
        start = time.monotonic()
        reply = exchange(target, request, timeout=timeout, source=source)
        tally.took(time.monotonic() - start)
        tally.add(reply.outcome)
        if reply.outcome == "500":
            tally.problem("500: the input broke a handler")
        if check is not None:
            check(reply, tally)

    def attack(target: Target, duration: float, connections: int) -> Tally:
        tally = Tally()
        end = time.monotonic() + duration
        timeout = max(ANSWER_TIMEOUT, duration)
        width = max(1, connections // 2) if parallel else 1
        with ThreadPoolExecutor(width) as pool:
            for _ in range(count):
                list(pool.map(lambda _: one(target, timeout, tally), range(width)))
                if time.monotonic() >= end:
                    break
        return tally

    return attack


def post(path: str, body: bytes, *fields: str) -> bytes:
    head = "".join(field + "\r\n" for field in fields)
    return (f"POST {path} HTTP/1.1\r\nHost: bomb\r\n{CLOSE}{head}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def get(path: str, *fields: str) -> bytes:
    head = "".join(field + "\r\n" for field in fields)
    return f"GET {path} HTTP/1.1\r\nHost: bomb\r\n{CLOSE}{head}\r\n".encode("latin-1")


def urlencoded_bomb(path: str, size: int) -> Attack:
    return repeat(post(path, b"&a" * (size // 2),
                       "Content-Type: application/x-www-form-urlencoded"), count=4)


def multipart_bomb(path: str, parts: int) -> Attack:
    part = b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\nb\r\n'
    return repeat(post(path, part * parts + b"--B--\r\n",
                       "Content-Type: multipart/form-data; boundary=B"), count=4)


def many_headers(path: str, count: int = 10_000) -> Attack:
    return repeat(get(path, *(f"X-{index}: v" for index in range(count))), count=10)


def huge_header(path: str, size: int = 2 << 20) -> Attack:
    return repeat(get(path, "X-Huge: " + "a" * size), count=4)


def huge_cookie(path: str, size: int = 900 << 10) -> Attack:
    pairs = "; ".join(f"c{index}=v" for index in range(size // 10))
    return repeat(get(path, "Cookie: " + pairs[:size]), count=10)


def tiny_chunks(path: str, count: int) -> Attack:
    head = (f"POST {path} HTTP/1.1\r\nHost: bomb\r\n{CLOSE}"
            "Transfer-Encoding: chunked\r\n\r\n").encode()

    def check(reply: Reply, tally: Tally) -> None:
        if reply.outcome == "200" and reply.body.strip() != str(count).encode():
            tally.problem(f"the handler saw {reply.body.strip()[:20]!r}, not {count} bytes")

    return repeat(head + b"1\r\na\r\n" * count + b"0\r\n\r\n", check, count=2, parallel=True)


HIDDEN = b"GET /hidden HTTP/1.1\r\nHost: bomb\r\nConnection: close\r\n\r\n"


def _only(allowed: list[list[int]]) -> Check:
    def check(reply: Reply, tally: Tally) -> None:
        if reply.statuses not in allowed:
            tally.problem(f"answers {reply.statuses}, expected one of {allowed}")

    return check


def double_length(path: str) -> Attack:
    """``Content-Length: 5, 5``: one request of 5 bytes, or a refusal; never 'hello' as a head.

    Read as 5 bytes, the next request starts where it should and gets its own
    answer (any but 400); read any other way, ``hello`` begins a request
    that is refused.
    """
    request = (f"POST {path} HTTP/1.1\r\nHost: bomb\r\nContent-Length: 5, 5\r\n\r\n"
               "hello").encode() + HIDDEN

    def check(reply: Reply, tally: Tally) -> None:
        statuses = reply.statuses
        if statuses != [400] and (len(statuses) != 2 or statuses[1] == 400):
            tally.problem(f"answers {statuses}: the body was not read as 5 bytes")

    return repeat(request, check, count=20)


def length_and_chunked(path: str) -> Attack:
    """``Content-Length`` with ``Transfer-Encoding: chunked``: refused, the rest never read."""
    request = (f"POST {path} HTTP/1.1\r\nHost: bomb\r\nContent-Length: 6\r\n"
               "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").encode() + HIDDEN
    return repeat(request, _only([[400]]), count=20)


def huge_range(path: str) -> Attack:
    def check(reply: Reply, tally: Tally) -> None:
        if not reply.outcome.isdigit():
            tally.problem(f"no answer ({reply.outcome})")  # a 500 is flagged by `repeat`

    return repeat(get(path, "Range: bytes=1" + "0" * 4400 + "-"), check, count=20)


def dotfile(path: str) -> Attack:
    def check(reply: Reply, tally: Tally) -> None:
        if reply.outcome == "200":
            tally.problem(f"served {path}")

    return repeat(get(path), check, count=20)


def double_slash(path: str) -> Attack:
    def check(reply: Reply, tally: Tally) -> None:
        location = reply.header("Location") or ""
        if location.startswith("//") or location.startswith("/\\"):
            tally.problem(f"redirected to {location} (another host)")

    return repeat(get(path), check, count=20)


def forwarded_spoof(path: str, claimed: str = "127.0.0.1", source: str = "127.0.0.2") -> Attack:
    def check(reply: Reply, tally: Tally) -> None:
        if reply.outcome == "200" and reply.body.strip() == claimed.encode():
            tally.problem(f"believed Forwarded: for={claimed} from untrusted {source}")

    return repeat(get(path, f"Forwarded: for={claimed}"), check, count=20, source=source)
