"""The application of the keep-alive parking tests: who answered, on which connection.

Served with ``python -m layer3_http tests/layer3_http/apps/parking_app.py
--listen 127.0.0.1:0 --workers 2``. Every request, whatever its path, is
answered with JSON: the worker's PID, the client's port (one TCP
connection keeps its port, so a client sees whether its requests shared
one), the method, the request target and the request body (read whole, as latin-1
text).
"""

from __future__ import annotations

import json
import os

from layer3_http import Request


def app(request: Request) -> None:
    body = request.body
    request.send_status("200 OK")
    request.send_header("Content-Type", "application/json")
    request.send_data(json.dumps({
        "pid": os.getpid(), "port": request.origin.port, "method": request.method,
        "path": request.head.target, "body": body.decode("latin-1"),
    }), "\n")
