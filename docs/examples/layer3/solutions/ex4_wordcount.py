"""Exercise 4: count the lines, words and bytes of a body, as ``wc`` does, streamed.

An HTTP application for the layer 3 command line. ``POST`` (or ``PUT``)
any body, with a ``Content-Length`` or chunked; the answer is
``LINES WORDS BYTES``. The body is never held in memory: each piece is
counted as it arrives, and a word cut in two by the end of a piece is
counted once. Serve it with
``python -m layer3_http docs/examples/layer3/solutions/ex4_wordcount.py --listen 127.0.0.1:0``
(``--maximum-input-chunk-size 3`` makes the pieces tiny, which is a good
test), then ``curl --data-binary @FILE http://127.0.0.1:PORT/``.
"""

from __future__ import annotations

from layer3_http import Request


# --8<-- [start:solution]
class Counter:
    """Counts like ``wc``: words are runs of bytes other than ASCII whitespace."""

    def __init__(self) -> None:
        self.lines = self.words = self.bytes = 0
        self.in_word = False  # did the previous piece end inside a word?

    def __call__(self, piece: bytes) -> None:
        self.bytes += len(piece)
        self.lines += piece.count(b"\n")
        self.words += len(piece.split())  # bytes.split(): on any ASCII whitespace
        if self.in_word and not piece[:1].isspace():
            self.words -= 1  # the first word of this piece continues the last one
        self.in_word = not piece[-1:].isspace()


def app(request: Request) -> None:
    counter = Counter()
    request.stream_request_body(counter)  # pieces of at most maximum_input_chunk_size
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain; charset=utf-8")
    request.send_data(f"{counter.lines} {counter.words} {counter.bytes}\n")
# --8<-- [end:solution]
