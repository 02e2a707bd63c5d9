"""bjoern running the benchmark's WSGI application, in 2 processes on one port.

bjoern is a single-threaded libev loop in one process with no worker
processes of its own. To give it the 2 workers every other server has,
this master forks 2 children (with `limit.prefork`, which also kills and
reaps them by PID on SIGTERM or SIGINT); each child binds the port with
``SO_REUSEPORT`` (bjoern's ``reuse_port``) and runs its own loop, and the
kernel spreads new connections over the two listening sockets.

Usage::

    python bench/servers/bjoern_server.py --listen 127.0.0.1:8084 --workers 2
"""

from __future__ import annotations

import argparse
import socket
import sys

import bjoern  # type: ignore[import-not-found]
from limit import prefork
from wsgi_app import app


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    cli.add_argument("--listen", default="127.0.0.1:8084", help="HOST:PORT")
    cli.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    arguments = cli.parse_args()
    host, _, port = arguments.listen.rpartition(":")

    def work(_listener: socket.socket | None) -> None:
        bjoern.run(app, host, int(port), reuse_port=True)

    print(f"bjoern {arguments.workers} processes on port {port} (SO_REUSEPORT)", flush=True)
    return prefork(None, arguments.workers, work)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
