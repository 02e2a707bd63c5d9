"""Print the arguments the script sees, declare a pool, and leave run() to the command line."""

from __future__ import annotations

import sys

from layer2_prefork import TCP, listen


def greet(conn):  # type: ignore[no-untyped-def]
    conn.read(terminator=b"\n")
    conn.write(b"hi\n")


print(f"argv {sys.argv!r}", flush=True)
pool = listen(TCP("127.0.0.1", 0), connect=greet, pre_fork=1)
print(f"listening on port {pool.port}", flush=True)
