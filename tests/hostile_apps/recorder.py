"""An HTTP application that records every request it is handed, for the hostile-input tests.

Served with ``python -m layer3_http tests/hostile_apps/recorder.py --listen
127.0.0.1:0``. For each request that reaches it, the callback writes one
line to standard output, in one system call so lines of several workers
never mix::

    RECORDED <pid> <method> <target> <body length>

and answers ``200`` with the request as JSON. The tests count the
responses on the wire and read these lines, so a request the server should
never have let through (one hidden inside a body, say) shows up in either.

Routes (by path):

* ``ignore``: records and answers without reading the body (the server
  drains or abandons it);
* ``form``: reads the form fields (urlencoded or multipart) and answers
  with their names and the number of values;
* ``hang``: never answers (a loop the response timeout has to end);
* anything else: reads the whole body, records, answers with it.
"""

from __future__ import annotations

import json
import os

from layer3_http import Request


def record(request: Request, body_length: int) -> None:
    """Write the RECORDED line for `request`."""
    line = (f"RECORDED {os.getpid()} {request.method} {request.head.target} "
            f"{body_length}\n")
    os.write(1, line.encode("latin-1"))


def answer(request: Request, value: dict[str, object]) -> None:
    request.send_status("200 OK")
    request.send_header("Content-Type", "application/json")
    request.send_data(json.dumps(value))


def app(request: Request) -> None:
    """Record the request, then answer as the path asks."""
    path = request.path or ""
    if path == "hang":
        record(request, 0)
        while True:
            pass
    if path == "ignore":
        record(request, 0)
        answer(request, {"target": request.head.target})
        return
    if path == "form":
        fields = request.post_params_list
        names = list(fields)
        record(request, sum(len(fields[name]) for name in names))
        answer(request, {"target": request.head.target, "names": names,
                         "values": sum(len(fields[name]) for name in names)})
        return
    body = request.body
    record(request, len(body))
    answer(request, {"method": request.method, "target": request.head.target,
                     "version": "HTTP/{}.{}".format(*request.head.version),
                     "headers": len(request.head.headers), "body": body.decode("latin-1"),
                     "pid": os.getpid()})
