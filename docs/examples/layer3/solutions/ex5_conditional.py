"""Exercise 5: conditional requests with an entity tag.

An HTTP application for the layer 3 command line that serves one text,
``/``, with a strong ``ETag`` computed from its bytes. A client that sends
``If-None-Match`` with that tag (alone, in a list, weak ``W/"..."`` or
not) or with ``*`` gets ``304 Not Modified`` and no body; any other gets
the text. ``GET`` and ``HEAD`` only (others: 405 with ``Allow``); other
paths: 404. Serve it with
``python -m layer3_http docs/examples/layer3/solutions/ex5_conditional.py --listen 127.0.0.1:0``.
"""

from __future__ import annotations

import hashlib

from layer3_http import Request

TEXT = "".join(f"line {n} of a text that changes only when the server does\n"
               for n in range(1, 101)).encode()
ETAG = '"' + hashlib.sha256(TEXT).hexdigest()[:20] + '"'


# --8<-- [start:solution]
def opaque(tag: str) -> str:
    """The tag without its weakness: If-None-Match compares weakly (RFC 9110 13.1.2)."""
    return tag.removeprefix("W/")


def not_modified(request: Request) -> bool:
    tags = request.headers_csv_table["If-None-Match"]  # a list field: items of all lines
    return "*" in tags or any(opaque(tag) == ETAG for tag in tags)


def app(request: Request) -> None:
    if request.path != "":
        request.send_status("404 Not Found")
        request.send_data("not found\n")
    elif request.method not in ("GET", "HEAD"):
        request.send_status("405 Method Not Allowed")
        request.send_header("Allow", "GET, HEAD")
        request.send_data("only GET and HEAD\n")
    elif not_modified(request):
        request.send_status("304 Not Modified")  # no body, but the validator again
        request.send_header("ETag", ETAG)
    else:
        request.send_status("200 OK")
        request.send_header("Content-Type", "text/plain; charset=utf-8")
        request.send_header("ETag", ETAG)
        request.send_header("Cache-Control", "no-cache")  # "revalidate before each use"
        request.send_data(TEXT)  # for HEAD: counted, not sent
# --8<-- [end:solution]
