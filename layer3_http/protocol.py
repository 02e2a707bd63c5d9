"""HTTP/1.1 without I/O: the building blocks under `layer3_http` (as h11 is to its users).

Bytes in, values or events out, no sockets: the request head parser, the
body decoders, the multipart and form parsers, the header tables and the
response writer. `layer3_http` serves applications with them; a program
that does its own I/O (a proxy, a test client, a teaching step) can use
them alone::

    from layer3_http.protocol import HeadParser, body_decoder

    head = HeadParser().feed(b"POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 5\\r\\n\\r\\n")
    decoder = body_decoder(head)
    pieces = decoder.feed(b"hello")

Each parser gives the same result, or the same `ClientError`, however its
input is split.
"""

from ._errors import ClientError, reason_phrase
from ._forms import parse_cookies, parse_query, parse_urlencoded
from ._framing import BodyDecoder, ChunkedDecoder, LengthDecoder, body_decoder
from ._head import BodyKind, HeadParser, RequestHead
from ._multipart import (
    MultipartEnd,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    parse_content_type,
)
from ._response import ResponseWriter, has_content, http_date, parse_status
from ._tables import HeaderTables

__all__ = [
    "BodyDecoder",
    "BodyKind",
    "ChunkedDecoder",
    "ClientError",
    "HeadParser",
    "HeaderTables",
    "LengthDecoder",
    "MultipartEnd",
    "MultipartParser",
    "PartData",
    "PartEnd",
    "PartStart",
    "RequestHead",
    "ResponseWriter",
    "body_decoder",
    "has_content",
    "http_date",
    "parse_content_type",
    "parse_cookies",
    "parse_query",
    "parse_status",
    "parse_urlencoded",
    "reason_phrase",
]
