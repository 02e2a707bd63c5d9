"""A small Flask application, served by our three layers.

Run it with::

    python -m layer3_http --wsgi flask_app:app --listen 127.0.0.1:8000

``/`` greets the client by the address the server resolved (behind a
trusted proxy: the proxy's client), ``/upload`` streams an uploaded file
to a hash without keeping it in memory, ``/items/<n>`` shows routing and
JSON. Flask is needed for this example only; the server itself uses the
standard library alone.
"""

from __future__ import annotations

import hashlib

# --8<-- [start:app]
from flask import Flask, jsonify, request, url_for

app = Flask(__name__)


@app.get("/")
def hello() -> dict[str, str]:
    return {"hello": request.remote_addr or "unix", "scheme": request.scheme,
            "self": url_for("hello", _external=True)}


@app.post("/upload")
def upload() -> dict[str, object]:
    digest, size = hashlib.sha256(), 0
    while block := request.stream.read(65536):  # wsgi.input, read as it arrives
        digest.update(block)
        size += len(block)
    return {"bytes": size, "sha256": digest.hexdigest()}


@app.get("/items/<int:number>")
def item(number: int):  # type: ignore[no-untyped-def]
    return jsonify(number=number, square=number * number)
# --8<-- [end:app]
