"""The chunked body decoder: chunked bytes in, body pieces out.

`ChunkedDecoder` is fed the bytes that follow a head announcing
`Transfer-Encoding: chunked`, in pieces of any size, and returns the body
data they carry (RFC 9112 section 7.1)::

    chunk-size [ chunk-ext ] CRLF  chunk-data CRLF   (repeated)
    0 [ chunk-ext ] CRLF  *( trailer-field CRLF )  CRLF

The decoder is a small state machine: SIZE (a size line) -> DATA (that
many bytes) -> DATA_END (exactly CRLF) -> SIZE ... until a size of zero,
then TRAILER (field lines until an empty line) -> DONE. Bytes after the
final CRLF are not consumed; they wait in `leftover` (the next pipelined
request).

Invariants: every piece returned is non-empty and at most `piece_size`
bytes; the decoder buffers at most one unfinished size or trailer line (a
bounded number of bytes) plus what one call fed it; the body total never
passes `body_size_limit` (413 as soon as a chunk size would pass it);
extensions are checked and ignored, trailers are checked and discarded.
On bad input it raises `ClientError` and nothing else, the same error for
any split of the input, and the error is sticky.

Moonbridge: the chunked branch of the original's body reader, which
rejected the final `0` chunk, so every chunked request failed.
"""

from __future__ import annotations

import enum
import re

from ._errors import ClientError
from ._lines import InputBuffer, Limit, ReadHint, parse_field_line

__all__ = ["ChunkedDecoder"]

_HEX = re.compile(rb"[0-9A-Fa-f]+")
_TOKEN = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_EXTENSIONS = re.compile(
    rb"(?:[ \t]*;[ \t]*" + _TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + _TOKEN + b"|" + _QUOTED + rb"))?)*"
)


class _State(enum.Enum):
    SIZE = enum.auto()
    DATA = enum.auto()
    DATA_END = enum.auto()
    TRAILER = enum.auto()
    DONE = enum.auto()


FREE_CHUNKS = 16384
"""Chunks a body may have of any size; past them, they must average `SMALLEST_AVERAGE` bytes."""
SMALLEST_AVERAGE = 64
"""The smallest average chunk size past `FREE_CHUNKS` chunks (else 400).

Decoding costs time per chunk, not per byte: a body of a million 1-byte
chunks (6 MB on the wire, far within the body limit) took a worker some
16 seconds and 130 MiB. No client needs that: browsers, curl and proxies
send chunks of kilobytes. So the first 16,384 chunks may be of any size
(a stream of small messages is fine), and after them the chunks so far
must average 64 bytes; a body of tiny chunks is refused within about 0.3 s
of a worker's time. nginx and Apache have no such rule, but their cost per
chunk is a few instructions; Go's server accepts any chunk size.
"""


class ChunkedDecoder:
    """Incremental decoder of one chunked request body.

    Args:
        body_size_limit: Most body bytes (chunk data) allowed (413 past it).
        piece_size: Most bytes in one returned piece.
        size_digit_limit: Most hex digits in a chunk size, leading zeros
            included (400 past it).
        extension_limit: Most bytes of chunk extensions on one size line
            (400 past it).
        trailer_count_limit: Most trailer fields (431 past it).
        trailer_size_limit: Most bytes of the trailer section (431 past it).

    Examples:
        >>> decoder = ChunkedDecoder()
        >>> decoder.feed(b"5\\r\\nhello\\r\\n0\\r\\n")
        [b'hello']
        >>> decoder.done
        False
        >>> decoder.feed(b"\\r\\nGET / HTTP/1.1\\r\\n"), decoder.done, decoder.leftover
        ([], True, b'GET / HTTP/1.1\\r\\n')

    Moonbridge: the chunked part of the body reader behind
    `stream_request_body`; `body_size_limit` is `request_body_size_limit`
    and `piece_size` is `maximum_input_chunk_size`.
    """

    def __init__(
        self,
        *,
        body_size_limit: int = 64 * 1024 * 1024,
        piece_size: int = 16384,
        size_digit_limit: int = 16,
        extension_limit: int = 1024,
        trailer_count_limit: int = 100,
        trailer_size_limit: int = 65536,
    ) -> None:
        if piece_size < 1 or size_digit_limit < 1:
            raise ValueError("piece_size and size_digit_limit must be at least 1")
        if min(body_size_limit, extension_limit, trailer_count_limit, trailer_size_limit) < 0:
            raise ValueError("limits must not be negative")
        self._body_size_limit = body_size_limit
        self._piece_size = piece_size
        self._digit_limit = size_digit_limit
        self._extension_limit = extension_limit
        self._size_line = Limit(size_digit_limit + extension_limit, 400, "chunk size line")
        self._trailer_total = Limit(trailer_size_limit, 431, "trailer section")
        self._trailer_count_limit = trailer_count_limit
        self._buffer = InputBuffer()
        self._state = _State.SIZE
        self._remaining = 0  # bytes of the current chunk still to come
        self._received = 0
        self._chunks = 0
        self._trailer_used = 0
        self._trailer_count = 0
        self._error: ClientError | None = None
        self._leftover = b""

    @property
    def done(self) -> bool:
        """True once the final CRLF arrived (the body is complete)."""
        return self._state is _State.DONE

    @property
    def received(self) -> int:
        """Body bytes decoded so far."""
        return self._received

    @property
    def leftover(self) -> bytes:
        """Bytes fed after the end of the body (empty until `done`)."""
        return self._leftover

    def next_read(self) -> ReadHint:
        """Return a read that cannot pass the end of the current element."""
        if self._state is _State.DATA:
            return ReadHint(min(self._remaining, self._piece_size), None)
        if self._state is _State.DONE:
            return ReadHint(0, None)
        return ReadHint(self._piece_size, b"\n")

    # --8<-- [start:feed]
    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the body data they complete.

        Args:
            data: The next bytes of the connection, any amount.

        Returns:
            Body pieces in order (possibly none); check `done` afterwards.

        Raises:
            ClientError: The body breaks the chunked syntax or a limit.
            ValueError: The body was already complete.
        """
        if self._error is not None:
            raise self._error
        if self._state is _State.DONE:
            raise ValueError("the chunked body is complete; the caller owns later bytes")
        self._buffer.append(data)
        pieces: list[bytes] = []
        try:
            while self._step(pieces):
                pass
        except ClientError as error:
            self._error = error
            raise
        return pieces

    def _step(self, pieces: list[bytes]) -> bool:
        """Advance by one element; return False when more input is needed."""
        buffer = self._buffer
        if self._state is _State.DATA:
            if not buffer:
                return False
            piece = buffer.take(min(self._remaining, self._piece_size))
            self._remaining -= len(piece)
            self._received += len(piece)
            pieces.append(piece)
            if not self._remaining:
                self._state = _State.DATA_END
            return True
        if self._state is _State.SIZE:
            line = buffer.take_line(self._size_line)
            if line is not None:
                self._size_line_done(line)
        elif self._state is _State.DATA_END:
            line = buffer.take_line(Limit(0, 400, "chunk data (no CRLF after it)"))
            if line is not None:
                self._state = _State.SIZE
        else:
            line = buffer.take_line(None, self._trailer_total, self._trailer_used)
            if line is not None:
                self._trailer_line_done(line)
        return line is not None and self._state is not _State.DONE
    # --8<-- [end:feed]

    # --8<-- [start:lines]
    def _size_line_done(self, line: bytes) -> None:
        match = _HEX.match(line)
        if match is None:
            raise ClientError(400, "chunk size is not hexadecimal")
        if match.end() > self._digit_limit:
            raise ClientError(400, f"chunk size longer than {self._digit_limit} hex digits")
        extensions = line[match.end() :]
        if len(extensions) > self._extension_limit:
            raise ClientError(400, f"chunk extensions longer than {self._extension_limit} bytes")
        if _EXTENSIONS.fullmatch(extensions) is None:
            raise ClientError(400, "malformed chunk extension")
        size = int(match[0], 16)
        if self._received + size > self._body_size_limit:
            raise ClientError(413, f"body larger than {self._body_size_limit} bytes")
        self._chunks += bool(size)  # the last chunk (size 0) is free
        if self._chunks > FREE_CHUNKS and self._received < (self._chunks - 1) * SMALLEST_AVERAGE:
            raise ClientError(400, f"more than {FREE_CHUNKS} chunks averaging fewer than "
                                   f"{SMALLEST_AVERAGE} bytes")
        self._remaining = size
        self._state = _State.DATA if size else _State.TRAILER

    def _trailer_line_done(self, line: bytes) -> None:
        self._trailer_used += len(line) + 2
        if not line:
            self._state = _State.DONE
            self._leftover = self._buffer.take_all()
            return
        self._trailer_count += 1
        if self._trailer_count > self._trailer_count_limit:
            raise ClientError(431, f"more than {self._trailer_count_limit} trailer fields")
        parse_field_line(line)  # checked, then discarded
    # --8<-- [end:lines]
