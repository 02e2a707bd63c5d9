"""A test application that holds over 1100 descriptors before the workers fork.

Every connection a worker accepts then gets a descriptor number above 1024,
the limit of ``select()`` that the original's I/O library was bound by.
The callback ``app`` answers with the descriptor number of its connection.
"""

from __future__ import annotations

import os
import resource

from layer3_http import Request

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard != resource.RLIM_INFINITY and hard < 2048:
    raise SystemExit(f"the hard descriptor limit {hard} is too low for this test")
resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]


def app(request: Request) -> None:
    """Answer with the connection's descriptor number."""
    request.send_status("200 OK")
    request.send_data(str(request.socket.fileno()))
