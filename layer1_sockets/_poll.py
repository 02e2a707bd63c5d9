"""Waiting for sockets: `poll`, `timeref`, and the wait used by blocking calls.

Everything here waits with ``poll(2)`` (a bare `select.poll` object, or
`selectors` where there is none): unlike ``select(2)`` it has no limit on
descriptor numbers (the original's `select()` broke above 1024), and unlike
``epoll`` it needs no descriptor of its own, which matters for a wait that is set up and torn
down once per call.

A buffered socket can be "ready to read" without its descriptor being
readable: bytes may already sit in its input buffer (or inside its TLS
layer). `poll` asks every object that offers it through a ``_ready_to_read``
method before it asks the kernel, and returns at once if one says yes;
otherwise it would sleep on data that is already here.

Invariants: waits are bounded by the given timeout (`None` = no bound);
an interrupted wait resumes with the time that is left (PEP 475); nothing
here keeps state between calls.
"""

from __future__ import annotations

import math
import select
import selectors
import time
from collections.abc import Iterable
from typing import Protocol

__all__ = ["HasFileno", "poll", "timeref", "wait_ready"]

_Selector: type[selectors.BaseSelector] = getattr(
    selectors, "PollSelector", selectors.DefaultSelector)
_HAVE_POLL = hasattr(select, "poll")


class HasFileno(Protocol):
    """Anything with a `fileno()` method: sockets, listeners, files."""

    def fileno(self) -> int: ...  # pragma: no cover


def _ready_to_read(obj: object) -> bool:
    check = getattr(obj, "_ready_to_read", None)
    return bool(check()) if callable(check) else False


def _fd(obj: HasFileno | int) -> int:
    return obj if isinstance(obj, int) else obj.fileno()


# --8<-- [start:poll]
def poll(readers: Iterable[HasFileno | int] = (), writers: Iterable[HasFileno | int] = (),
         timeout: float | None = None) -> bool:
    """Wait until one of the objects is ready to read or to write.

    A buffered socket with unread buffered input (or data pending in its TLS
    layer) counts as ready to read at once.

    Args:
        readers: Objects (or descriptor numbers) to watch for reading; for a
            listener, "readable" means a connection is waiting to be accepted.
        writers: Objects (or descriptor numbers) to watch for writing.
        timeout: The most seconds to wait; `None` waits without limit, `0`
            only looks.

    Returns:
        `True` if something is ready, `False` if the timeout passed first.

    Raises:
        ValueError: Nothing to wait for and no timeout (that would wait
            forever), or a closed socket was passed.

    Moonbridge: ``moonbridge_io.poll(input_set, output_set, timeout)``.

    Examples:
        >>> import socket
        >>> left, right = socket.socketpair()
        >>> poll([left], [], timeout=0)
        False
        >>> _ = right.send(b"x")
        >>> poll([left], [], timeout=5)
        True
        >>> left.close(); right.close()
    """
    readers, writers = list(readers), list(writers)
    if any(_ready_to_read(obj) for obj in readers):
        return True
    events: dict[int, int] = {}
    for obj in readers:
        fd = _fd(obj)
        events[fd] = events.get(fd, 0) | selectors.EVENT_READ
    for obj in writers:
        fd = _fd(obj)
        events[fd] = events.get(fd, 0) | selectors.EVENT_WRITE
    if not events and timeout is None:
        raise ValueError("poll() with nothing to wait for and no timeout would wait forever")
    if _HAVE_POLL:
        return _poll_once(events, timeout)
    with _Selector() as selector:
        for fd, mask in events.items():
            selector.register(fd, mask)
        return bool(selector.select(None if timeout is None else max(0.0, timeout)))


def _poll_once(events: dict[int, int], timeout: float | None) -> bool:
    """Wait with a bare ``select.poll`` object: the fast path where it exists.

    What `PollSelector` does, minus its bookkeeping (a key object and a map
    per descriptor), which costs more than the ``poll(2)`` call itself when
    a single socket is waited on once per request. Any event, an error or
    hang-up included, counts as ready, as with the selector; the timeout is
    rounded up to whole milliseconds, as the selector does.
    """
    poller = select.poll()
    for fd, mask in events.items():
        poller.register(fd, (select.POLLIN if mask & selectors.EVENT_READ else 0)
                        | (select.POLLOUT if mask & selectors.EVENT_WRITE else 0))
    return bool(poller.poll(None if timeout is None else math.ceil(max(0.0, timeout) * 1e3)))
# --8<-- [end:poll]


# --8<-- [start:wait-ready]
def wait_ready(obj: HasFileno, mode: str, timeout: float | None = None) -> bool:
    """Wait until one object is ready for reading (`mode` "r") or writing ("w").

    This is the waiting function the blocking calls of a buffered socket use
    by default; `read_call` and friends accept any other function with the
    same first two parameters.

    Returns:
        `True` when ready, `False` when the timeout passed.
    """
    if mode not in ("r", "w"):
        raise ValueError(f"mode must be 'r' or 'w', not {mode!r}")
    if mode == "r":
        return poll([obj], [], timeout)
    return poll([], [obj], timeout)
# --8<-- [end:wait-ready]


def timeref(previous: float | None = None) -> float:
    """Return monotonic seconds; with `previous`, the seconds elapsed since it.

    The clock never goes backwards and is not changed by setting the time of
    day, so differences are safe for timeouts.

    Moonbridge: ``moonbridge_io.timeref(previous)``.

    Examples:
        >>> start = timeref()
        >>> 0.0 <= timeref(start) < 60.0
        True
    """
    now = time.monotonic()
    return now if previous is None else now - previous
