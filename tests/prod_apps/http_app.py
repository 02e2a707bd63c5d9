"""An HTTP callback for the production tests: who served the request, and how.

Served with ``python -m layer3_http tests/prod_apps/http_app.py``. Routes:

* ``/who``: JSON with the worker's PID, the client address and port, the
  scheme, the peer's TLS certificate subject (if any) and how many requests
  this connection has carried so far;
* ``/echo``: the request body back (read whole), as ``application/octet-stream``.
"""

from __future__ import annotations

import json
import os

from layer1_sockets import BufferedSocket
from layer3_http import Request

connections: list[BufferedSocket] = []  # kept, so that identities are never reused
counts: list[int] = []


def carried(request: Request) -> int:
    """The number of this request on its connection (1 for the first)."""
    for index, sock in enumerate(connections):
        if sock is request.socket:
            counts[index] += 1
            return counts[index]
    connections.append(request.socket)
    counts.append(1)
    return 1


def who(request: Request) -> None:
    tls = request.socket.ssl_object
    certificate = tls.getpeercert() if tls is not None else None
    subject = dict(item[0] for item in certificate["subject"]) if certificate else None
    body = {"pid": os.getpid(), "client": request.client_address, "port": request.origin.port,
            "peer": request.origin.peer, "scheme": request.scheme,
            "subject": subject, "nth": carried(request)}
    request.send_status(200)
    request.send_header("Content-Type", "application/json")
    request.send_data(json.dumps(body))


def echo(request: Request) -> None:
    body = request.body
    request.send_status(200)
    request.send_header("Content-Type", "application/octet-stream")
    request.send_data(body)


def app(request: Request) -> None:
    if request.path == "echo":
        echo(request)
    else:
        who(request)
