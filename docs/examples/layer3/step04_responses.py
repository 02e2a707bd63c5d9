"""Step 4: responses on layer 3: status, headers, data, and how the body is framed.

An HTTP application for the layer 3 command line, one path per kind of
response:

* ``/hello``: a short text (it goes out in one write, with a Content-Length);
* ``/count?n=N``: N numbered lines (past ``minimum_output_chunk_size``
  pending bytes the body is sent chunked);
* ``/ticks?n=N``: N lines, each flushed at once (one chunk per line);
* ``/sized?n=N``: N bytes with a Content-Length declared first (never chunked);
* ``/empty``: 204 No Content;
* ``/cached``: a page with an ETag; 304 Not Modified when the client has it;
* ``/last``: a response after which the server closes the connection.

``HEAD`` works on every path: layer 3 sends the head ``GET`` would get.

Serve it with
``python -m layer3_http docs/examples/layer3/step04_responses.py --listen 127.0.0.1:0``.
"""

from __future__ import annotations

from collections.abc import Callable

from layer3_http import Request

ETAG = '"v1"'


def number(request: Request, default: int) -> int:
    """The `n` query parameter, bounded to 0..1 000 000."""
    text = request.get_params.get("n", "")
    return min(int(text), 1_000_000) if text.isdigit() else default


def text_response(request: Request, status: str = "200 OK") -> None:
    request.send_status(status)
    request.send_header("Content-Type", "text/plain; charset=utf-8")


# --8<-- [start:simple]
def hello(request: Request) -> None:
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain; charset=utf-8")
    request.send_data("hello, ", "world\n")  # str goes out as UTF-8
    # returning finishes the response: request.finish() is called for us


def count(request: Request) -> None:
    text_response(request)
    for line in range(1, number(request, 10) + 1):
        request.send_data(f"line {line}\n")  # collected until 1 KiB is pending
# --8<-- [end:simple]


# --8<-- [start:flush]
def ticks(request: Request) -> None:
    text_response(request)
    for tick in range(1, number(request, 3) + 1):
        request.send_data(f"tick {tick}\n")
        request.flush()  # out now: the head, then one chunk per tick


def sized(request: Request) -> None:
    size = number(request, 100_000)
    text_response(request)
    request.send_header("Content-Length", size)  # declared: no chunks, and enforced
    for start in range(0, size, 4096):
        request.send_data(b"x" * min(4096, size - start))
# --8<-- [end:flush]


# --8<-- [start:bodyless]
def empty(request: Request) -> None:
    request.send_status("204 No Content")  # never a body, never a Content-Length


def cached(request: Request) -> None:
    if ETAG in request.headers_csv_table["If-None-Match"]:
        request.send_status("304 Not Modified")  # "what you have is still good"
        request.send_header("ETag", ETAG)
        return
    text_response(request)
    request.send_header("ETag", ETAG)
    request.send_data("this page has version 1\n")


def last(request: Request) -> None:
    request.close_after_finish()  # before the head is sent: adds Connection: close
    text_response(request)
    request.send_data("goodbye\n")
# --8<-- [end:bodyless]


def index(request: Request) -> None:
    text_response(request)
    request.send_data("".join(f"/{path}\n" for path in ROUTES if path))


def not_found(request: Request) -> None:
    text_response(request, "404 Not Found")
    request.send_data(f"no page /{request.path}\n")


# --8<-- [start:app]
ROUTES: dict[str, Callable[[Request], None]] = {
    "": index, "hello": hello, "count": count, "ticks": ticks, "sized": sized,
    "empty": empty, "cached": cached, "last": last,
}


def app(request: Request) -> None:
    ROUTES.get(request.path or "", not_found)(request)
# --8<-- [end:app]
