"""The production options from a script instead of the command line.

``python serve_app.py [--certfile cert.pem --keyfile key.pem]`` serves
``wsgi_app.app`` (next to this file) with an access log on stdout, trusted
proxies, worker recycling and, given a certificate, HTTPS. Under systemd's
socket activation it serves the passed sockets; otherwise a free port on
127.0.0.1, printed as ``listening on port N``. ``SIGTERM`` stops it
gracefully.
"""

from __future__ import annotations

import argparse
import sys

from wsgi_app import app

# --8<-- [start:serve]
from layer2_prefork import TCP, listen, run, socket_activation
from layer3_http import configure_access_log, generate_handler, tls_context, wsgi_callback


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__)
    cli.add_argument("--certfile")
    cli.add_argument("--keyfile")
    arguments = cli.parse_args()
    configure_access_log("-")  # or a file path: reopened after logrotate moved it
    tls = tls_context(arguments.certfile, arguments.keyfile) if arguments.certfile else None
    handler = generate_handler(wsgi_callback(app), tls=tls, access_log="combined",
                               forwarded_allow_ips="127.0.0.1, ::1, unix",
                               max_requests=10000, max_requests_jitter=1000)
    listeners = socket_activation() or (TCP("127.0.0.1", 0),)
    pool = listen(*listeners, connect=handler, pre_fork=2, min_fork=2, max_fork=8)
    for address in pool.addresses:
        print(f"listening on port {address[1]}" if isinstance(address, tuple)
              else f"listening on unix:{address}", flush=True)
    return run(graceful_timeout=30)
# --8<-- [end:serve]


if __name__ == "__main__":
    sys.exit(main())
