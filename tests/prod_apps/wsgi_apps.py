"""WSGI applications for the production tests, one route per behaviour.

``validated`` is the routes wrapped in `wsgiref.validate.validator`, with
its warnings turned into errors: any breach of PEP 3333 by the server
raises inside the application, so the test sees a 500 and a traceback in
the log instead of a 200. ``app`` is the same routes unwrapped (the
validator hides a `wsgi.file_wrapper` result behind its own iterator, so
the ``sendfile`` path needs the plain one).

Routes (``PATH_INFO``):

* ``/environ``: the interesting environ entries as JSON;
* ``/echo``: the body read with ``read(CONTENT_LENGTH)`` or, chunked,
  line by line until the end; answered with its length and SHA-256;
* ``/pieces``: a body read with ``read(7)`` calls, the sizes returned;
* ``/interactive``: the body's first line sent back (``write()``) before
  the rest of the body is read: ``wsgi.input`` streams;
* ``/stream``: a generator of ``count`` pieces; ``close()`` is counted;
* ``/write``: the ``write()`` callable, then an empty iterable;
* ``/file``: ``wsgi.file_wrapper`` over a file of ``size`` bytes;
* ``/error``: raises before ``start_response``;
* ``/exc-info``: starts a 200, then replaces it with a 503 via ``exc_info``;
* ``/late-error``: sends a piece, then raises (the connection is reset);
* ``/too-long``: declares ``Content-Length: 3`` and yields 10 bytes;
* ``/closed``: how many iterables have been closed in this worker;
* ``/listen-env``: the ``LISTEN_*`` variables the worker can see (none);
* ``/who``: client address, scheme, PID and the request's number on its
  connection (behind nginx: whether the upstream connection was reused).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from typing import Any
from wsgiref.validate import WSGIWarning, validator

warnings.simplefilter("error", WSGIWarning)

closed = [0]
connections: list[object] = []
counts: list[int] = []
StartResponse = Callable[..., Callable[[bytes], object]]


def _json(start_response: StartResponse, value: object, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(value).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body)))])
    return [body]


def _query(environ: dict[str, Any], name: str, default: int) -> int:
    for pair in environ.get("QUERY_STRING", "").split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return int(value)
    return default


class Pieces:
    """An iterable with ``close()``, as frameworks return them."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __iter__(self) -> Iterator[bytes]:
        for index in range(self.count):
            yield f"piece {index}\n".encode()

    def close(self) -> None:
        closed[0] += 1


def environ_route(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    wanted = {key: value for key, value in environ.items()
              if isinstance(value, str | int | bool | tuple) and not key.startswith("layer3")}
    wanted["wsgi.input"] = type(environ["wsgi.input"]).__name__
    return _json(start_response, wanted)


def echo(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    stream = environ["wsgi.input"]
    if "CONTENT_LENGTH" in environ:
        body = stream.read(int(environ["CONTENT_LENGTH"]))
    else:
        body = b"".join(iter(stream.readline, b""))
    return _json(start_response, {"length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                                  "head": body[:20].decode("latin-1")})


def pieces(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    sizes = []
    while piece := environ["wsgi.input"].read(7):
        sizes.append(len(piece))
    return _json(start_response, {"sizes": sizes})


def interactive(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """Answer the body's first line before the rest of the body has come."""
    send = start_response("200 OK", [("Content-Type", "text/plain")])
    stream = environ["wsgi.input"]
    send(b"first: " + stream.readline())
    send(b"rest: %d\n" % len(stream.read(1 << 20)))  # the validator wants a size
    return []


def stream(environ: dict[str, Any], start_response: StartResponse) -> Pieces:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return Pieces(_query(environ, "count", 3))


def write(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    send = start_response("200 OK", [("Content-Type", "text/plain")])
    send(b"written ")
    send(b"directly\n")
    return []


def file(environ: dict[str, Any], start_response: StartResponse) -> Any:
    size = _query(environ, "size", 100000)
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - closed by the file wrapper
    handle.write(bytes(range(256)) * (size // 256) + bytes(range(size % 256)))
    handle.seek(0)
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return environ["wsgi.file_wrapper"](handle, 8192)


def error(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    raise RuntimeError("this WSGI application fails on purpose")


def exc_info(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    try:
        raise KeyError("replaced")
    except KeyError:
        start_response("503 Service Unavailable", [("Content-Type", "text/plain")],
                       sys.exc_info())
    return [b"replaced by exc_info\n"]


def late_error(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"first piece\n"
    raise RuntimeError("this WSGI application fails after its first piece")


def too_long(environ: dict[str, Any], start_response: StartResponse) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    yield b"0123456789"


def no_content(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    """A status without content (``?status=205``) and a body the server must drop."""
    status = {"204": "204 No Content", "205": "205 Reset Content",
              "304": "304 Not Modified"}[environ.get("QUERY_STRING", "").partition("=")[2]]
    start_response(status, [("Content-Type", "text/plain")] if status[:3] == "205" else [])
    return [b"a body the server drops"]


def closed_route(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    return _json(start_response, {"closed": closed[0], "pid": os.getpid()})


def listen_env(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    return _json(start_response, sorted(name for name in os.environ
                                        if name.startswith("LISTEN_")))


def who(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    sock = environ["layer3_http.request"].socket
    for index, known in enumerate(connections):
        if known is sock:
            counts[index] += 1
            nth = counts[index]
            break
    else:
        connections.append(sock)
        counts.append(nth := 1)
    return _json(start_response, {"client": environ.get("REMOTE_ADDR"),
                                  "scheme": environ["wsgi.url_scheme"], "pid": os.getpid(),
                                  "nth": nth, "host": environ.get("HTTP_HOST")})


ROUTES: dict[str, Callable[..., Any]] = {
    "/environ": environ_route, "/echo": echo, "/interactive": interactive, "/pieces": pieces,
    "/stream": stream, "/write": write, "/file": file, "/error": error, "/exc-info": exc_info,
    "/late-error": late_error, "/too-long": too_long, "/closed": closed_route, "/who": who,
    "/listen-env": listen_env, "/no-content": no_content,
}


def app(environ: dict[str, Any], start_response: StartResponse) -> Any:
    route = ROUTES.get(environ["PATH_INFO"])
    if route is None:
        return _json(start_response, {"missing": environ["PATH_INFO"]}, "404 Not Found")
    return route(environ, start_response)


validated = validator(app)
