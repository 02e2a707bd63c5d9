"""HTTP/1.1 on the pre-forking listener (Moonbridge's HTTP module).

Write a callback that takes a `Request`, turn it into a layer 2 handler
with `generate_handler`, and serve it with `layer2_prefork.listen` and
`layer2_prefork.run`, or from the command line with
``python -m layer3_http module:callback``. A WSGI application runs the same
way through `wsgi_callback` (``python -m layer3_http --wsgi module:app``);
`tls_context`, `AccessLog` and `TrustedProxies` are the options for
HTTPS, access logs and reverse proxies; `serve_metrics` adds a metrics
endpoint on a listener of its own (``--metrics``).

The I/O-free building blocks underneath (the head parser, the body
decoders, the multipart parser, the response writer) are
`layer3_http.protocol`.
"""

from ._accesslog import AccessEntry, AccessLog, configure_access_log
from ._errors import ClientError, HTTPError, RequestAPIError
from ._forms import PostMetadata, PostStream
from ._handler import Handler, generate_handler
from ._metrics import serve_metrics
from ._options import Options, tls_context
from ._proxy import Origin, TrustedProxies
from ._request import Request
from ._static import static_handler
from ._tables import FirstValues, Flags, ValueLists
from ._wsgi import FileWrapper, wsgi_callback, wsgi_environ

__all__ = [
    "AccessEntry",
    "AccessLog",
    "ClientError",
    "FileWrapper",
    "FirstValues",
    "Flags",
    "HTTPError",
    "Handler",
    "Options",
    "Origin",
    "PostMetadata",
    "PostStream",
    "Request",
    "RequestAPIError",
    "TrustedProxies",
    "ValueLists",
    "configure_access_log",
    "generate_handler",
    "serve_metrics",
    "static_handler",
    "tls_context",
    "wsgi_callback",
    "wsgi_environ",
]
