"""A WSGI application without a framework: what PEP 3333 asks of one.

Run it with::

    python -m layer3_http --wsgi wsgi_app:app --listen 127.0.0.1:8000

``/`` answers who asked (``REMOTE_ADDR``, ``wsgi.url_scheme``); ``/count``
streams the request body from ``wsgi.input`` and counts its lines;
``/clock`` streams a response piece by piece (each piece leaves the
server before the next is made).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

StartResponse = Callable[..., Callable[[bytes], object]]


# --8<-- [start:app]
def app(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    path = environ["PATH_INFO"]
    if path == "/count":
        lines = sum(1 for _ in environ["wsgi.input"])  # the body, line by line
        yield from reply(start_response, f"{lines} lines\n")
    elif path == "/clock":
        start_response("200 OK", [("Content-Type", "text/plain")])
        for tick in range(3):
            yield f"tick {tick} at {time.monotonic():.3f}\n".encode()
    else:
        who = environ.get("REMOTE_ADDR", "unix")
        yield from reply(start_response, f"hello {who} over {environ['wsgi.url_scheme']}\n")


def reply(start_response: StartResponse, text: str) -> Iterator[bytes]:
    body = text.encode()
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8"),
                              ("Content-Length", str(len(body)))])
    yield body
# --8<-- [end:app]
