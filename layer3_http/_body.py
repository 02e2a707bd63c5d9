"""Request body framing: one interface for Content-Length and chunked bodies.

The socket side never needs to know how a body is framed. It asks
`body_decoder` for a decoder matching the head, then loops::

    decoder = body_decoder(head, body_size_limit=..., piece_size=...)
    while not decoder.done:
        data = sock.read_call(wait, *decoder.next_read())
        if not data:
            raise ClientError(400, "connection closed inside the body")
        for piece in decoder.feed(data):
            ...  # hand the piece to the handler, the form parser, or drop it

`next_read()` never asks for bytes past the end of the body, so with it
`leftover` stays empty; a caller that reads larger blocks finds the bytes
after the body in `leftover` once `done` is true.

Invariants shared by both decoders (`BodyDecoder`): `feed` returns
non-empty pieces of at most `piece_size` bytes; the body never passes
`body_size_limit` (413, raised before any byte of an oversized body is
returned, as soon as its size is announced); bad input raises
`ClientError` and nothing else.

Moonbridge: the body reading inside `generate_handler`
(`request_body_size_limit`, `maximum_input_chunk_size`).
"""

from __future__ import annotations

from typing import Protocol

from ._chunked import ChunkedDecoder
from ._errors import ClientError
from ._head import BodyKind, RequestHead
from ._lines import ReadHint

__all__ = ["BodyDecoder", "LengthDecoder", "body_decoder"]


class BodyDecoder(Protocol):
    """What `LengthDecoder` and `ChunkedDecoder` both offer."""

    @property
    def done(self) -> bool:
        """True once the whole body arrived."""
        ...

    @property
    def received(self) -> int:
        """Body bytes decoded so far."""
        ...

    @property
    def leftover(self) -> bytes:
        """Bytes fed after the end of the body."""
        ...

    def next_read(self) -> ReadHint:
        """The largest read that stays inside the body."""
        ...

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the body pieces they complete."""
        ...


# --8<-- [start:length]
class LengthDecoder:
    """Counts off a body of known length (`Content-Length`).

    Args:
        length: The announced body length.
        body_size_limit: Most body bytes allowed.
        piece_size: Most bytes in one returned piece.

    Raises:
        ClientError: 413 when `length` is past `body_size_limit`.

    Examples:
        >>> decoder = LengthDecoder(5, piece_size=3)
        >>> decoder.feed(b"hel"), decoder.done
        ([b'hel'], False)
        >>> decoder.feed(b"lo GET"), decoder.done, decoder.leftover
        ([b'lo'], True, b' GET')
        >>> LengthDecoder(0).done
        True
    """

    def __init__(
        self, length: int, *, body_size_limit: int = 64 * 1024 * 1024, piece_size: int = 16384
    ) -> None:
        if length < 0 or piece_size < 1:
            raise ValueError("length must not be negative and piece_size must be positive")
        if length > body_size_limit:
            raise ClientError(413, f"body of {length} bytes, limit {body_size_limit}")
        self._remaining = length
        self._piece_size = piece_size
        self._received = 0
        self._leftover = b""

    @property
    def done(self) -> bool:
        """True once `length` bytes arrived."""
        return self._remaining == 0

    @property
    def received(self) -> int:
        """Body bytes counted so far."""
        return self._received

    @property
    def leftover(self) -> bytes:
        """Bytes fed after the end of the body."""
        return self._leftover

    def next_read(self) -> ReadHint:
        """Return a read of at most the rest of the body and one piece."""
        return ReadHint(min(self._remaining, self._piece_size), None)

    def feed(self, data: bytes) -> list[bytes]:
        """Add received bytes; return the body pieces among them.

        Raises:
            ValueError: The body was already complete.
        """
        if self.done:
            raise ValueError("the body is complete; the caller owns later bytes")
        body, self._leftover = data[: self._remaining], data[self._remaining :]
        self._remaining -= len(body)
        self._received += len(body)
        size = self._piece_size
        return [body[start : start + size] for start in range(0, len(body), size)]
# --8<-- [end:length]


# --8<-- [start:body-decoder]
def body_decoder(
    head: RequestHead, *, body_size_limit: int = 64 * 1024 * 1024, piece_size: int = 16384
) -> BodyDecoder:
    """Return the decoder for the body `head` announces.

    A head without a body gets a `LengthDecoder` of length 0, which is
    `done` from the start (one shared instance: it never changes).

    Args:
        head: The parsed request head.
        body_size_limit: Most body bytes allowed (413 past it).
        piece_size: Most bytes in one returned piece.

    Raises:
        ClientError: 413 when a `Content-Length` is past the limit.

    Examples:
        >>> from layer3_http._head import HeadParser
        >>> head = HeadParser().feed(b"POST / HTTP/1.1\\r\\nHost: x\\r\\n"
        ...                          b"Transfer-Encoding: chunked\\r\\n\\r\\n")
        >>> type(body_decoder(head)).__name__
        'ChunkedDecoder'
    """
    if head.body_kind is BodyKind.NONE:
        return _NO_BODY
    if head.body_kind is BodyKind.CHUNKED:
        return ChunkedDecoder(body_size_limit=body_size_limit, piece_size=piece_size)
    assert head.content_length is not None
    return LengthDecoder(head.content_length, body_size_limit=body_size_limit,
                         piece_size=piece_size)


# Most requests have no body: they share one decoder, done from the start. It
# cannot change (`feed` refuses, `next_read` asks for nothing), so sharing is safe.
_NO_BODY = LengthDecoder(0)
# --8<-- [end:body-decoder]
