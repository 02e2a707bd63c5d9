"""Exercise 7: refuse an upload that is too large before it is sent.

An HTTP application for the layer 3 command line that accepts uploads
of at most ``LIMIT`` bytes and counts them. A ``Content-Length`` over
the limit is refused with 413 from the head alone (``monologue()``): a
client that waits for ``100 Continue`` never sends the body. A chunked
body, whose size nobody knows in advance, is counted as it arrives and
refused with 413 as soon as it passes the limit. Serve it with
``python -m layer3_http docs/examples/layer3/solutions/ex7_refuse_early.py --listen 127.0.0.1:0``.
"""

from __future__ import annotations

from layer3_http import ClientError, Request

LIMIT = 1024 * 1024


# --8<-- [start:solution]
def app(request: Request) -> None:
    announced = request.head.content_length  # None for chunked (or no body)
    if announced is not None and announced > LIMIT:
        request.monologue()  # no 100 Continue, the body is never read
        request.send_status("413 Content Too Large")
        request.send_data(f"at most {LIMIT} bytes, not {announced}\n")
        return
    size = 0

    def count(piece: bytes) -> None:
        nonlocal size
        size += len(piece)
        if size > LIMIT:  # the client's fault: the server answers 413 and closes
            raise ClientError(413, f"chunked upload past {LIMIT} bytes")

    request.stream_request_body(count)
    request.send_status("200 OK")
    request.send_data(f"received {size} bytes\n")
# --8<-- [end:solution]
