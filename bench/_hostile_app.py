"""The small application the hostile suite attacks beside the static files.

Served with ``python -m layer3_http bench/_hostile_app.py:app --workers 2``.
Each route is something an attack needs a handler for:

* ``/big``: 16 MiB produced by the handler (not ``sendfile``), for slow readers;
* ``/body``: reads the whole body and answers its length, for slow and
  chunked bodies and for framing questions;
* ``/form``: parses the form (urlencoded or multipart) and answers how many
  values it holds, for form bombs;
* ``/cookies``: parses the ``Cookie`` header and answers how many cookies;
* ``/who``: answers the client address the server believes (``Forwarded``);
* anything else: ``hello``.

Every answer is short text with a ``Content-Length`` and is produced by
the standard library and `layer3_http` only.
"""

from __future__ import annotations

from layer3_http import Request

BIG = 16 * 1024 * 1024
BLOCK = bytes(range(256)) * 256  # 64 KiB


def _text(request: Request, text: str) -> None:
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain")
    request.send_data(text, "\n")


def _big(request: Request) -> None:
    request.send_status("200 OK")
    request.send_header("Content-Type", "application/octet-stream")
    request.send_header("Content-Length", BIG)
    for _ in range(BIG // len(BLOCK)):
        request.send_data(BLOCK)


def app(request: Request) -> None:
    """Answer as the path asks (see the module's docstring)."""
    path = request.path or ""
    if path == "big":
        _big(request)
    elif path == "body":
        _text(request, str(len(request.body)))
    elif path == "form":
        fields = request.post_params_list
        _text(request, str(sum(len(values) for values in fields.values())))
    elif path == "cookies":
        _text(request, str(len(request.cookies)))
    elif path == "who":
        _text(request, str(request.client_address))
    else:
        _text(request, "hello")
