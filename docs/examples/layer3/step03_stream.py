"""Step 3b: the same body server on layer 3, with ``stream_request_body``.

Layer 3 has already decided the framing, refused what step 3a refuses,
and answers ``Expect: 100-continue`` when the body is first needed. The
handler only says what to do with each piece of the body: here, hash it.
Memory stays flat however large the body is (up to
``request_body_size_limit``, 64 MiB by default).

Serve it with
``python -m layer3_http docs/examples/layer3/step03_stream.py --listen 127.0.0.1:0``
and send it a body with ``curl --data-binary @FILE http://127.0.0.1:PORT/``.
"""

from __future__ import annotations

import hashlib

from layer3_http import Request


# --8<-- [start:app]
def app(request: Request) -> None:
    digest, size = hashlib.sha256(), 0

    def take(piece: bytes) -> None:  # at most maximum_input_chunk_size bytes, never empty
        nonlocal size
        digest.update(piece)
        size += len(piece)

    request.stream_request_body(take)  # returns when the whole body has arrived
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain; charset=utf-8")
    request.send_data(f"received {size} bytes, sha256 {digest.hexdigest()}\n")
# --8<-- [end:app]
