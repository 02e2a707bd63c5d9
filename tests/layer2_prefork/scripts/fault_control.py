"""``tests/hostile_apps/fault_server.py``, with the worker's control socket found exactly.

A worker now holds more sockets than its control socket and the
connection (the pool's listeners and the queue of work), so the hostile
server's search for "the one other socket" may pick a listener. This
script loads that server unchanged and gives its handler the worker's own
control socket instead; the command line runs the master afterwards.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from layer2_prefork.worker import _loop as _worker

HOSTILE = Path(__file__).resolve().parents[2] / "hostile_apps" / "fault_server.py"


def control_socket(connection_fd: int) -> int:
    """The descriptor of this worker's control socket."""
    worker = _worker.current()
    assert worker is not None, "not in a worker"
    return worker.control.fileno()


spec = importlib.util.spec_from_file_location("fault_server", HOSTILE)
assert spec is not None and spec.loader is not None
fault_server = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fault_server)  # declares the pool and prints its port
fault_server.control_socket = control_socket
