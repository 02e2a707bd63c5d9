"""An application with a metrics endpoint, served from a script (the Python API).

``python metrics_app.py`` serves `app` on a free port of 127.0.0.1
(``listening on port N``) with two workers, and the metrics on another
(``metrics on port M``: ``curl http://127.0.0.1:M/metrics``). The routes
exist to be counted: ``/ok?size=N`` (N bytes), ``/crash`` (the handler
raises: 500), ``/pid`` (the worker's PID), ``/block?path=P`` (connect to
the Unix socket P and wait for one byte from it, so a test can hold a
worker busy), and 404 for anything else, ``/metrics`` included: the
public listener never serves the metrics.
"""

from __future__ import annotations

import os
import socket
import sys

from layer3_http import Request


def app(request: Request) -> None:
    """One route per kind of request the metrics count."""
    if request.path == "ok":
        size = int(request.get_params.get("size", "0"))
        request.send_status(200)
        request.send_header("Content-Type", "application/octet-stream")
        request.send_data(b"x" * size)
    elif request.path == "crash":
        raise RuntimeError("this handler fails on purpose")
    elif request.path == "pid":
        request.send_status(200)
        request.send_data(f"{os.getpid()}\n")
    elif request.path == "block":
        with socket.socket(socket.AF_UNIX) as gate:
            gate.connect(request.get_params["path"])
            gate.recv(1)
        request.send_status(200)
        request.send_data("released\n")
    else:
        request.send_status(404)
        request.send_header("Content-Type", "text/plain")
        request.send_data("no such page\n")


# --8<-- [start:serve]
from layer2_prefork import TCP, listen, run  # noqa: E402
from layer3_http import generate_handler, serve_metrics  # noqa: E402


def main() -> int:
    pool = listen(TCP("127.0.0.1", 0), connect=generate_handler(app),
                  pre_fork=2, min_fork=2, max_fork=2)
    metrics = serve_metrics(TCP("127.0.0.1", 0))  # its own listener: loopback only
    print(f"listening on port {pool.port}", flush=True)
    print(f"metrics on port {metrics.port}", flush=True)
    return run()
# --8<-- [end:serve]


if __name__ == "__main__":
    sys.exit(main())
