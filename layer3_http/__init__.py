"""HTTP/1.1 on the pre-forking listener (Moonbridge's HTTP module).

Write a callback that takes a `Request`, turn it into a layer 2 handler
with `generate_handler`, and serve it with `layer2_prefork.listen` and
`layer2_prefork.run`, or from the command line with
``python -m layer3_http module:callback``.
"""

from ._body import BodyDecoder, LengthDecoder, body_decoder
from ._chunked import ChunkedDecoder
from ._errors import ClientError, HTTPError, RequestAPIError, reason_phrase
from ._forms import FirstValues, ValueLists, parse_cookies, parse_query, parse_urlencoded
from ._handler import Handler, generate_handler
from ._head import BodyKind, HeadParser, RequestHead
from ._multipart import (
    MultipartEnd,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    parse_content_type,
)
from ._options import Options
from ._post import PostMetadata, PostStream
from ._request import Request
from ._response import ResponseWriter, http_date, parse_status
from ._static import static_handler
from ._tables import Flags, HeaderTables

__all__ = [
    "BodyDecoder",
    "BodyKind",
    "ChunkedDecoder",
    "ClientError",
    "FirstValues",
    "Flags",
    "HTTPError",
    "Handler",
    "HeadParser",
    "HeaderTables",
    "LengthDecoder",
    "MultipartEnd",
    "MultipartParser",
    "Options",
    "PartData",
    "PartEnd",
    "PartStart",
    "PostMetadata",
    "PostStream",
    "Request",
    "RequestAPIError",
    "RequestHead",
    "ResponseWriter",
    "ValueLists",
    "body_decoder",
    "generate_handler",
    "http_date",
    "parse_content_type",
    "parse_cookies",
    "parse_query",
    "parse_status",
    "parse_urlencoded",
    "reason_phrase",
    "static_handler",
]
