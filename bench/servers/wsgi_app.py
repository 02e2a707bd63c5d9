"""The benchmark application as WSGI, for gunicorn (sync and gthread) and waitress.

The same three answers as every other server in the benchmark:

* ``POST /upload``: read the body in 64 KiB pieces, count the bytes, answer
  the count as text (the server decodes chunked bodies for us);
* ``POST /multipart``: stream the form field ``file`` to a file in
  ``$BENCH_UPLOAD_DIR`` (see `_multipart`), answer its size;
* ``GET /big``: 16 MiB of zero bytes with ``Content-Length``, given to the
  server as 256 pieces of 64 KiB (the slow-reader workload);
* anything else: ``Hello, World!`` as ``text/plain``.

Serve it with, for example, ``gunicorn -w 2 wsgi_app:app`` from this folder
(granian, uWSGI and bjoern serve the same callable; see ``bjoern_server.py``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable
from typing import Any

from _multipart import boundary_of, save_file_part

HELLO = b"Hello, World!"
PIECE = 64 * 1024
BIG = 16 * 1024 * 1024
BLOCK = bytes(PIECE)

StartResponse = Callable[[str, list[tuple[str, str]]], object]


def count_body(stream: Any) -> int:
    """Read a body stream to its end; return its length."""
    total = 0
    while True:
        piece = stream.read(PIECE)
        if not piece:
            return total
        total += len(piece)


def save_upload(stream: Any, content_type: str) -> int:
    """Stream the ``file`` field of a multipart body to a file; return its size."""
    folder = os.environ.get("BENCH_UPLOAD_DIR", tempfile.gettempdir())
    path = os.path.join(folder, f"upload-{os.getpid()}.bin")
    with open(path, "wb") as out:
        return save_file_part(stream.read, boundary_of(content_type), out)


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """The WSGI callable."""
    path = environ.get("PATH_INFO", "/")
    if path == "/big":
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(BIG))])
        return (BLOCK for _ in range(BIG // PIECE))
    if path == "/upload":
        body = str(count_body(environ["wsgi.input"])).encode()
    elif path == "/multipart":
        body = str(save_upload(environ["wsgi.input"], environ.get("CONTENT_TYPE", ""))).encode()
    else:
        body = HELLO
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
