"""A layer 2 server on the sockets systemd passed: ``listen(*socket_activation(), ...)``.

Each connection gets a line: the listener's name and the worker's PID, and
whether the ``LISTEN_*`` variables are still visible (they must not be).
"""

from __future__ import annotations

import os
import sys

from layer1_sockets import BufferedSocket
from layer2_prefork import listen, run, socket_activation

listeners = socket_activation()


def connect(conn: BufferedSocket) -> None:
    leaked = sorted(name for name in os.environ if name.startswith("LISTEN_"))
    conn.write(f"{listeners[0].name} {os.getpid()} leaked={leaked}\n".encode())


pool = listen(*listeners, connect=connect)
os.write(1, f"adopted {pool.addresses}\n".encode())
if __name__ == "__main__":
    sys.exit(run())
