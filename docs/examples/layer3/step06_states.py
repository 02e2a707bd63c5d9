"""Step 6: the request state machine: answering early, refusing, failing.

An HTTP application for the layer 3 command line, one path per way
through the states of a request:

* ``/``: a short answer (for keep-alive and the timeouts);
* ``/progress``: ``defer_reading()``: the head and a first line go out
  before the body is read, then the body is counted, then the last line;
* ``/refuse``: ``monologue()``: 413 without reading the body; the
  connection closes after the answer;
* ``/download?mb=N``: N MiB of answer whatever the client sends; a body
  the client sends first is read while the answer waits to be written
  (``&defer=1`` turns that off, and the two sides deadlock until
  ``stall_timeout``);
* ``/fail?when=before``: the handler raises before answering (the client
  gets a 500); ``when=after``: after the answer began (the connection is
  reset).

Serve it with
``python -m layer3_http docs/examples/layer3/step06_states.py --listen 127.0.0.1:0``
(add ``--idle-timeout 5 --request-header-timeout 5`` to watch the timeouts).
"""

from __future__ import annotations

from layer3_http import Request

MIB = 1024 * 1024


def plain(request: Request, status: str = "200 OK") -> None:
    request.send_status(status)
    request.send_header("Content-Type", "text/plain; charset=utf-8")


def hello(request: Request) -> None:
    plain(request)
    request.send_data("hello\n")


# --8<-- [start:early]
def progress(request: Request) -> None:
    request.defer_reading()  # answering must not read the body for us
    plain(request)
    request.send_data("receiving\n")
    request.flush()  # the head and the first chunk are on the wire now
    size = 0

    def count(piece: bytes) -> None:
        nonlocal size
        size += len(piece)

    request.stream_request_body(count)  # now the body, to its end
    request.send_data(f"received {size} bytes\n")


def refuse(request: Request) -> None:
    request.monologue()  # ignore the body, no 100 Continue, close after the answer
    plain(request, "413 Content Too Large")
    request.send_data("not today\n")
# --8<-- [end:early]


# --8<-- [start:download]
def download(request: Request) -> None:
    if request.get_params.get("defer") == "1":
        request.defer_reading()  # the writer no longer reads the body: deadlock ahead
    megabytes = min(int(request.get_params.get("mb", "1")), 64)
    plain(request)
    request.send_header("Content-Length", megabytes * MIB)
    block = b"x" * MIB
    for _ in range(megabytes):
        request.send_data(block)  # may block: the client is not reading yet
# --8<-- [end:download]


# --8<-- [start:fail]
def fail(request: Request) -> None:
    if request.get_params.get("when") == "after":
        plain(request)
        request.send_data(b"x" * 4096)
        request.flush()  # the head is out: a 500 is no longer possible
    raise RuntimeError("a bug in the handler")
# --8<-- [end:fail]


def not_found(request: Request) -> None:
    plain(request, "404 Not Found")
    request.send_data(f"no page /{request.path}\n")


def app(request: Request) -> None:
    routes = {"": hello, "progress": progress, "refuse": refuse, "download": download,
              "fail": fail}
    routes.get(request.path or "", not_found)(request)
