"""The WSGI application behind the scale-out tests: who answered, after a little work.

Every answer is JSON with the worker's PID and its parent's (the master:
which instance answered), the method, and the body's length. A request
takes ``ms`` milliseconds of work (``?ms=N``, default 20), so that a few
requests are always under way in each instance when it is stopped,
reloaded or killed; with ``?announce=1`` the worker first writes
``working on PID`` to its stderr (the server's error log), so that a test
knows the request is under way. The answer's ``version`` is the text of
the file named by ``SCALEOUT_VERSION`` when the application was imported
(none: ``""``): a reload that loads the new code shows in it.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

StartResponse = Callable[..., Callable[[bytes], object]]
_source = os.environ.get("SCALEOUT_VERSION")
VERSION = Path(_source).read_text().strip() if _source else ""


def app(environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
    query = dict(pair.partition("=")[::2] for pair in environ.get("QUERY_STRING", "").split("&"))
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    if query.get("announce"):
        print(f"working on {os.getpid()}", file=sys.stderr, flush=True)
    time.sleep(int(query.get("ms") or 20) / 1000)  # the application's work
    answer = json.dumps({"pid": os.getpid(), "master": os.getppid(), "version": VERSION,
                         "method": environ["REQUEST_METHOD"], "length": len(body)}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(answer)))])
    return [answer]
