"""A command line of its own built on layer 2's public helpers.

``python own_command.py [server options] --greeting TEXT``: the server
options (``-p``, ``-l``/``--error-log``, ``--log-level``, ``-g``, ...) come
from `add_server_options`, the start-up from `serve_command`. Each
connection is answered with the greeting and the worker's PID.
"""

from __future__ import annotations

import argparse
import os
import sys

from layer1_sockets import BufferedSocket
from layer2_prefork import TCP, ServerOptions, add_server_options, listen, run, serve_command


def main() -> int:
    cli = argparse.ArgumentParser(prog="own_command")
    add_server_options(cli)
    cli.add_argument("--greeting", default="hello")
    arguments = cli.parse_args()

    def handle(conn: BufferedSocket) -> None:
        conn.read(terminator=b"\n")
        conn.write(f"{arguments.greeting} {os.getpid()}\n".encode())

    def start() -> int:
        pool = listen(TCP("127.0.0.1", 0), connect=handle, pre_fork=1, min_fork=1)
        os.write(1, f"listening on port {pool.port}\n".encode())
        return run()

    return serve_command(ServerOptions.from_arguments(arguments), start, program="own_command")


if __name__ == "__main__":
    sys.exit(main())
