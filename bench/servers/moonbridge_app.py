"""The benchmark application for our server (layer 3's request callback).

The same three answers as every other server in the benchmark (see
``wsgi_app.py``): ``Hello, World!`` as ``text/plain``; ``POST /upload``
counts the body as it streams (`Request.stream_request_body`) and answers
the count; ``POST /multipart`` streams the form field ``file`` to a file in
``$BENCH_UPLOAD_DIR`` (`Request.stream_post_param`) and answers its size;
``GET /big`` sends 16 MiB of zero bytes in 64 KiB pieces with a
``Content-Length`` (the slow-reader workload).

Serve it with the layer 3 command line::

    python -m layer3_http bench/servers/moonbridge_app.py:app \\
        --listen 127.0.0.1:8083 --workers 2 --request-body-size-limit 1073741824 \\
        --maximum-input-chunk-size 65536
"""

from __future__ import annotations

import os
import tempfile
from typing import BinaryIO

from layer3_http import PostMetadata, Request

HELLO = b"Hello, World!"
PIECE = 64 * 1024
BIG = 16 * 1024 * 1024
BLOCK = bytes(PIECE)


def count_upload(request: Request) -> int:
    """Stream the body, counting it."""
    total = 0

    def piece(data: bytes) -> None:
        nonlocal total
        total += len(data)

    request.stream_request_body(piece)
    return total


def save_upload(request: Request) -> int:
    """Stream the ``file`` field to a file; return its size."""
    folder = os.environ.get("BENCH_UPLOAD_DIR", tempfile.gettempdir())
    written = 0
    with open(os.path.join(folder, f"upload-{os.getpid()}.bin"), "wb") as out:

        def part(data: bytes = b"", metadata: PostMetadata | None = None,
                 file: BinaryIO = out) -> None:
            nonlocal written
            file.write(data)
            written += len(data)

        request.stream_post_param("file", part)
        request.process_request_body()
    return written


def app(request: Request) -> None:
    """The request callback."""
    if request.path == "big":
        request.send_status("200 OK")
        request.send_header("Content-Type", "application/octet-stream")
        request.send_header("Content-Length", BIG)
        for _ in range(BIG // PIECE):
            request.send_data(BLOCK)
        return
    if request.path == "upload":
        body = str(count_upload(request)).encode()
    elif request.path == "multipart":
        body = str(save_upload(request)).encode()
    else:
        body = HELLO
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain")
    request.send_data(body)
