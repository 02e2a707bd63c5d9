"""HTTP/1.1 on the pre-forking listener (Moonbridge's HTTP module).

Write a callback that takes a `Request`, turn it into a layer 2 handler
with `generate_handler`, and serve it with `layer2_prefork.listen` and
`layer2_prefork.run`, or from the command line with
``python -m layer3_http module:callback``. A WSGI application runs the same
way through `wsgi_callback` (``python -m layer3_http --wsgi module:app``);
`tls_context`, `AccessLog` and `TrustedProxies` are the options for
HTTPS, access logs and reverse proxies.
"""

from ._accesslog import AccessEntry, AccessLog, configure_access_log
from ._errors import ClientError, HTTPError, RequestAPIError, reason_phrase
from ._forms import FirstValues, ValueLists, parse_cookies, parse_query, parse_urlencoded
from ._framing import BodyDecoder, ChunkedDecoder, LengthDecoder, body_decoder
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
from ._options import Options, tls_context
from ._post import PostMetadata, PostStream
from ._proxy import Origin, TrustedProxies
from ._request import Request
from ._response import ResponseWriter, http_date, parse_status
from ._static import static_handler
from ._tables import Flags, HeaderTables
from ._wsgi import FileWrapper, wsgi_callback, wsgi_environ

__all__ = [
    "AccessEntry",
    "AccessLog",
    "BodyDecoder",
    "BodyKind",
    "ChunkedDecoder",
    "ClientError",
    "FileWrapper",
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
    "Origin",
    "PartData",
    "PartEnd",
    "PartStart",
    "PostMetadata",
    "PostStream",
    "Request",
    "RequestAPIError",
    "RequestHead",
    "ResponseWriter",
    "TrustedProxies",
    "ValueLists",
    "body_decoder",
    "configure_access_log",
    "generate_handler",
    "http_date",
    "parse_content_type",
    "parse_cookies",
    "parse_query",
    "parse_status",
    "parse_urlencoded",
    "reason_phrase",
    "static_handler",
    "tls_context",
    "wsgi_callback",
    "wsgi_environ",
]
