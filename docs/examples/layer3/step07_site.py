"""Step 7: a small site: one dynamic page, static files, a log line per request.

An HTTP application for the layer 3 command line. ``/`` is a page made
for each request (which worker answered, how many requests this worker
has served); every other path is a file of the folder ``docs/examples``
(this program's own source is ``/layer3/step07_site.py``), served by
layer 3's `static_handler`: content types, ``ETag`` and 304, ``HEAD``,
byte ranges, and no way out of the folder. Every request is logged with
one line on the worker's stderr, which layer 2 copies into the server's
log with the worker's PID.

Serve it with
``python -m layer3_http docs/examples/layer3/step07_site.py --listen 127.0.0.1:8080``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from layer3_http import Request, static_handler

FOLDER = Path(__file__).resolve().parent.parent  # docs/examples
files = static_handler(FOLDER)  # made once, in the master, before the workers fork


class Worker:
    """Per-process state: every worker has its own copy after the fork."""

    served = 0


# --8<-- [start:app]
def page(request: Request) -> None:
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain; charset=utf-8")
    request.send_header("Cache-Control", "no-store")
    request.send_data(f"worker {os.getpid()} has served {Worker.served} requests\n"
                      "try /layer3/step07_site.py\n")


def app(request: Request) -> None:
    started = time.monotonic()
    Worker.served += 1
    if request.path == "":
        page(request)
    else:
        files(request)  # a callback like any other: it answers the request
    request.finish()  # so the log line below can tell the time of the whole answer
    milliseconds = (time.monotonic() - started) * 1000
    print(f"{request.method} /{request.path}{request.query} "
          f"{request.writer.status_code} {milliseconds:.1f} ms", file=sys.stderr, flush=True)
# --8<-- [end:app]
