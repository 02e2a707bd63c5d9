"""Our server with cProfile inside each worker, for ``bench/profile_server.py --cprofile``.

Run by the layer 2 command line, so the workers are real forked workers::

    python -m layer2_prefork bench/servers/profiled_app.py PORT FOLDER

It serves ``moonbridge_app.app`` with 2 workers on ``127.0.0.1:PORT``
(prints ``listening on port N``). Each worker profiles every connection
it serves with a `cProfile.Profile` that counts CPU time
(`time.process_time`, so waiting costs nothing) and writes the
accumulated statistics to ``FOLDER/worker-PID.prof`` when a connection
ends.
"""

from __future__ import annotations

import cProfile
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from moonbridge_app import app

from layer2_prefork import TCP, listen
from layer3_http import generate_handler

PORT, FOLDER = int(sys.argv[1]), sys.argv[2]
handler = generate_handler(app, request_body_size_limit=1 << 30)
profiler: cProfile.Profile | None = None


def connect(conn: object) -> object:
    """Serve one connection under the worker's profiler; save the statistics after it."""
    global profiler
    if profiler is None:
        profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    try:
        return handler(conn)
    finally:
        profiler.disable()
        profiler.dump_stats(os.path.join(FOLDER, f"worker-{os.getpid()}.prof"))


pool = listen(TCP("127.0.0.1", PORT), connect=connect, pre_fork=2, min_fork=2, max_fork=2)
print(f"listening on port {pool.port}", flush=True)
