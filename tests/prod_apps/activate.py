"""Start a program the way systemd's socket activation does.

``python activate.py tcp|unix:PATH -- program args...``: bind the listening
socket first (as a ``.socket`` unit would), print ``activated port N`` (or
``activated unix:PATH``), put the socket at descriptor 3, set
``LISTEN_FDS=1``, ``LISTEN_PID`` and ``LISTEN_FDNAMES=http``, then exec the
program in this same process, so ``LISTEN_PID`` is its PID. A client may
connect as soon as the line is printed: it waits in the backlog until the
server is up.
"""

from __future__ import annotations

import os
import socket
import sys


def main() -> None:
    where, separator, *program = sys.argv[1:]
    assert separator == "--" and program, __doc__
    if where.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(where[len("unix:"):])
        line = f"activated {where}"
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        line = f"activated port {sock.getsockname()[1]}"
    sock.listen(128)
    if sock.fileno() != 3:
        os.dup2(sock.fileno(), 3)  # dup2 makes descriptor 3 inheritable
        sock.close()
    else:
        sock.detach()
    os.set_inheritable(3, True)  # sockets are made close-on-exec; systemd's are not
    os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES="http")
    os.write(1, (line + "\n").encode())
    os.execv(program[0], program)


main()
