"""Accepting on a listener without letting accept errors stop the server.

`accept()` can fail for reasons that have nothing to do with the listener:
the process is out of descriptors (`EMFILE`), the system is (`ENFILE`),
memory is short (`ENOBUFS`, `ENOMEM`), or the client gave up before the
process got to it (`ECONNABORTED`). The first kind does not go away by
retrying at once; a level-triggered poll would report the listener ready
again immediately and the process would spin. So a worker that gets such
an error pauses for `FIRST_PAUSE` (50 ms, listening to the master only)
before it polls the listener again; the `TRANSIENT` errors concern one
vanished connection, and the worker goes on at once. The master accepts
only at a graceful stop, when it takes what is in the backlogs
(`drain_backlog`).
"""

from __future__ import annotations

import errno
import socket

TRANSIENT = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR})
"""Errors that concern one vanished connection; accepting again at once is right."""
FIRST_PAUSE = 0.05
"""Seconds a worker stops accepting after an accept error that is not `TRANSIENT`."""
DRAIN_LIMIT = 4096
"""The most connections taken from one backlog when a graceful stop begins."""


def accept(sock: socket.socket) -> socket.socket | None:
    """Accept one connection from a non-blocking listener; `None` if there is none.

    Raises:
        OSError: Any accept error; `TRANSIENT` errors included.
    """
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return None
    return conn


def drain_backlog(sock: socket.socket, limit: int = DRAIN_LIMIT) -> list[socket.socket]:
    """Accept every connection already queued on a listener (up to `limit`).

    A graceful stop calls this before it closes the listener, because closing
    a listener resets the connections still in its backlog: clients whose
    connect already succeeded would see a reset instead of an answer.
    """
    taken: list[socket.socket] = []
    while len(taken) < limit:
        try:
            conn = accept(sock)
        except OSError as error:
            if error.errno in TRANSIENT:
                continue
            break
        if conn is None:
            break
        taken.append(conn)
    return taken
