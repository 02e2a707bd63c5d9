"""Helpers for the production tests: start ``python -m layer3_http``, talk to it.

Every server is a real process group started with `support.running`, so
the master and all workers are killed and reaped by PID when the test
ends. Clients are `http.client` connections and plain sockets with a
timeout on every call.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from support import ROOT, Program, running

APPS = Path(__file__).resolve().parent
DEPLOY = ROOT / "docs" / "examples" / "deploy"
WSGI_APPS = APPS / "wsgi_apps.py"
HTTP_APP = APPS / "http_app.py"
TIMEOUT = 20.0


def command(*arguments: str) -> list[str]:
    """The argv of ``python -m layer3_http`` with these arguments."""
    return [sys.executable, "-m", "layer3_http", *arguments]


@contextmanager
def server(*arguments: str, listen: Sequence[str] = ("127.0.0.1:0",),
           cwd: Path | None = None) -> Iterator[tuple[Program, int]]:
    """Run the command line with ``--listen`` for each address; yield (program, first port)."""
    listens = [part for address in listen for part in ("--listen", address)]
    with running(command(*arguments, *listens), cwd=cwd) as program:
        yield program, program.wait_for_port()


def get(port: int, path: str, *, method: str = "GET", body: bytes | None = None,
        headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None,
        source: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request on a new connection; return (status, headers, body)."""
    conn: http.client.HTTPConnection
    address = (source, 0) if source else None
    if context is not None:
        conn = http.client.HTTPSConnection("localhost", port, timeout=TIMEOUT, context=context,
                                           source_address=address)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT,
                                          source_address=address)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def get_json(port: int, path: str, **kwargs: Any) -> Any:
    status, _, body = get(port, path, **kwargs)
    assert status == 200, (status, body)
    return json.loads(body)


def raw(port: int, host: str = "127.0.0.1", source: str | None = None) -> socket.socket:
    """A plain client socket (from `source` if given) with a timeout."""
    return socket.create_connection((host, port), timeout=TIMEOUT,
                                    source_address=(source, 0) if source else None)
