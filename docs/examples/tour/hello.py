"""Where the tutorial ends: an HTTP application on all three layers.

``hello`` is an HTTP callback (layer 3). ``generate_handler`` turns it into
a connection handler, and ``listen`` gives that handler a pool of
pre-forked workers (layer 2), each reading and writing its connections
through a buffered socket (layer 1). Every answer names the worker process
that produced it. Run it with ``python docs/examples/tour/hello.py [PORT]``
and ask it with ``curl 'http://127.0.0.1:PORT/?name=Ada'``; ``SIGTERM``
or Ctrl-C stops it.
"""

from __future__ import annotations

import os
import sys

from layer2_prefork import TCP, listen, run
from layer3_http import Request, generate_handler


# --8<-- [start:app]
def hello(request: Request) -> None:
    """Greet the caller by the name in the query string."""
    name = request.get_params.get("name", "world")
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain; charset=utf-8")
    request.send_data(f"hello, {name}, from worker {os.getpid()}\n")


def main(port: int) -> int:
    pool = listen(TCP("127.0.0.1", port), connect=generate_handler(hello), pre_fork=2)
    print(f"listening on port {pool.port}", flush=True)
    return run()  # the master loop: until SIGTERM (graceful) or SIGINT (fast)
# --8<-- [end:app]


if __name__ == "__main__":
    raise SystemExit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
