"""The application behind the whole-server fuzzer: it reads every request completely.

Served with ``python -m layer3_http tests/layer3_http/apps/fuzz_app.py``.
Whatever the path, the callback reads the request's input the way the
request asks for it, so every body reaches its decoder: a form
(urlencoded or multipart) is parsed into fields, anything else is read
whole. It answers a short text: the method, the path, and the number of
form values or body bytes. It never waits and never fails on purpose, so
a worker that dies under the fuzzer died of the server's code.
"""

from __future__ import annotations

from layer3_http import Request

FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def app(request: Request) -> None:
    """Read the request's form or body; answer what was read."""
    content_type = str(request.headers_value["Content-Type"] or "").lower()
    if content_type.startswith(FORMS):
        fields = request.post_params_list
        read = f"{sum(len(values) for values in fields.values())} values"
    else:
        read = f"{len(request.body)} bytes"
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain")
    request.send_data(f"{request.method} /{request.path} {read}\n")
