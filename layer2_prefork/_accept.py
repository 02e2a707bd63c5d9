"""Accepting on a listener without letting accept errors stop the server.

`accept()` can fail for reasons that have nothing to do with the listener:
the master is out of descriptors (`EMFILE`), the system is (`ENFILE`),
memory is short (`ENOBUFS`, `ENOMEM`), or the client gave up before the
master got to it (`ECONNABORTED`). The first kind does not go away by
retrying at once; a level-triggered poll would report the listener ready
again immediately and the master would spin. So each listener has a
`Backoff`: after such an error it is left out of the poll for a
while (50 ms, doubling to 1 s), and a successful accept resets the pause.
Errors of the second kind are logged and the master goes on at once.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

TRANSIENT = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR})
"""Errors that concern one vanished connection; accepting again at once is right."""
FIRST_PAUSE = 0.05
LONGEST_PAUSE = 1.0
DRAIN_LIMIT = 4096
"""The most connections taken from one backlog when a graceful stop begins."""


@dataclass(slots=True)
class Backoff:
    """The pause of one listener after accept errors.

    Examples:
        >>> backoff = Backoff()
        >>> backoff.failed(10.0), backoff.failed(10.0)
        (0.05, 0.1)
        >>> backoff.paused(10.05)
        True
        >>> backoff.succeeded(); backoff.paused(10.05)
        False
    """

    pause: float = 0.0
    until: float = 0.0

    def failed(self, now: float) -> float:
        """Start (or lengthen) a pause; return its length in seconds."""
        self.pause = min(self.pause * 2, LONGEST_PAUSE) if self.pause else FIRST_PAUSE
        self.until = now + self.pause
        return self.pause

    def succeeded(self) -> None:
        """Forget earlier errors."""
        self.pause = 0.0
        self.until = 0.0

    def paused(self, now: float) -> bool:
        """Whether the listener stays out of the poll at time `now`."""
        return now < self.until


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
