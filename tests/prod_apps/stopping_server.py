"""A layer 2 server whose handler waits for its client or for the stop notice.

Each connection is answered ``waiting <pid>``; the handler then polls the
connection together with `stop_fd()`. A line from the client is echoed
(and the wait starts again); when the server stops gracefully the handler
says ``stopping`` and returns at once, instead of pinning the worker until
the graceful deadline. Arguments are ``key=value`` options of `listen()`.
"""

from __future__ import annotations

import ast
import os
import sys

from layer1_sockets import BufferedSocket, poll
from layer2_prefork import TCP, listen, run, stop_fd, stopping


def connect(conn: BufferedSocket) -> None:
    conn.flush(f"waiting {os.getpid()}\n".encode())
    while True:
        if stopping() and not poll([conn], [], 0):  # the notice may have come before
            conn.flush(b"stopping\n")
            return
        fd = stop_fd()
        poll([conn] if fd is None else [conn, fd], [], 60)
        line = conn.read_nb(terminator=b"\n")
        if line == b"":
            return
        if line:
            conn.flush(b"echo " + line)


def main() -> None:
    options = {key: ast.literal_eval(value)
               for key, _, value in (argument.partition("=") for argument in sys.argv[1:])}
    pool = listen(TCP("127.0.0.1", 0), connect=connect, **options)
    os.write(1, f"listening on port {pool.port}\n".encode())


main()
if __name__ == "__main__":
    sys.exit(run())
