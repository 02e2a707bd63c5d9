"""Handing the waiting part of a connection's end to the master (worker side).

A worker should only compute. Two things at the end of a connection are
waits on the client, and the master does them for it (`_finishing`):

* `linger` -- the lingering close: half-close, then wait for the client's
  end. If the client already closed, the worker closes at once; else the
  connection goes to the master (`L`).
* `send_rest` -- write completion: the rest of a response that the client
  takes slowly, in a file (a static file, or a memory file with what the
  handler wrote), goes to the master with the connection (`S`); the master
  sends it as the client takes it, then parks the connection for its next
  request or lingers and closes it.

Both return `True` once the connection is no longer the worker's (the
handler's `BufferedSocket` is closed without a FIN) and `False` when
nothing happened: outside a worker, for a TLS connection (its session lives
in this process), or when the master is gone. The caller then does the
wait itself, as before.

On loopback, and on a fast network, the client's end follows the
response within a fraction of a millisecond, and passing the connection
to the master would cost more than the wait. So `linger` first keeps the
half-closed connection in the worker's own short list (`Closing`): the
worker looks at it whenever it is idle, in the same `poll` that waits for
new work, reads away what came and closes it when the client's end is
there. Only a connection still open `LAZY_LINGER` seconds later (or the
oldest, when `LAZY_COUNT` are kept) goes to the master (`L`). The worker
never waits for a client: a kept connection only adds a descriptor to the
poll it makes anyway.
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from layer1_sockets import BufferedSocket

from .._protocol import AFTER_CLOSE, AFTER_PARK, LINGER, MAX_HELD, NO_LIMIT, SEND, Kind, encode
from . import _loop as _worker

_MAX_LIMIT = NO_LIMIT - 1
LAZY_LINGER = 0.005
"""Seconds a worker waits (while idle, never blocked) for a half-closed client's end itself."""
LAZY_COUNT = 16
"""The most half-closed connections a worker keeps; past it the oldest goes to the master."""

_scratch = bytearray(65536)


def _milliseconds(seconds: float | None) -> int:
    if seconds is None:
        return NO_LIMIT
    return min(max(int(seconds * 1000), 0), _MAX_LIMIT)


def linger(conn: BufferedSocket, timeout: float | None, limit: int = 1 << 20) -> bool:
    """End a connection whose last response is written: half-close, let others wait.

    Flushes what is queued (a caller with a slow client uses `send_rest`
    first), shuts down the write direction (the client sees the end), and
    keeps the connection in the worker's `Closing` list: the idle worker
    discards what the client sends and closes at its end, or after
    `LAZY_LINGER` hands it to the master, which discards what else comes
    until the client closes, `limit` bytes were discarded, or `timeout`
    seconds passed, then closes it. Out of descriptors, the worker discards
    what has come and hands it to the master at once (or closes it, when
    the client's end is there).

    Args:
        conn: The connection.
        timeout: Seconds the master waits for the client's end (`None`: no limit).
        limit: The most bytes to discard before closing anyway.

    Returns:
        Whether the connection is closed or the master's now (`False` if nothing
        was done, outside a worker or with TLS: the caller lingers itself).

    Examples:
        >>> import socket
        >>> a, b = socket.socketpair()
        >>> linger(BufferedSocket(a), 1.0)  # not in a worker
        False
        >>> b.close()

    Moonbridge: none; the original lingers in the worker (`socket:finish()`, drain, close).
    """
    # --8<-- [start:linger]
    worker = _worker.current()
    if worker is None or conn.closed or conn.tls or conn.queued:
        return False
    conn.finish()
    if worker.closing.keep(conn, timeout, limit):  # its idle poll reads what comes
        conn.close()  # the kept copy holds the connection open: this sends nothing
        return True
    while True:  # out of descriptors: read what is there, then the master waits
        count = conn.drain_nb(65536)
        if count == 0:  # the client's end is already there
            conn.close()
            return True
        if count is None:
            break
        limit -= count
        if limit < 0:
            conn.close()
            return True
    frame = encode(Kind.LINGER, LINGER.pack(_milliseconds(timeout), min(limit, _MAX_LIMIT)),
                   fds=1)
    if not worker._tell_master(frame, [conn.fileno()]):
        return False
    conn.close()  # the master holds it now; closing this copy sends nothing
    return True
    # --8<-- [end:linger]


def send_rest(conn: BufferedSocket, source: int | None = None, offset: int = 0,
              count: int = 0, *, keep_alive: bool, stall: float | None,
              linger_timeout: float | None, linger_limit: int = 1 << 20) -> bool:
    """Hand the rest of a response, and the connection, to the master.

    What `conn` still has queued goes first (in a memory file), then
    `count` bytes of the file `source` from `offset` (only when nothing is
    queued: flush the head of the response first). The master sends it as
    the client takes it, giving up when the client takes nothing for
    `stall` seconds; then it parks the connection (`keep_alive`) or
    half-closes it and lingers as `linger` would. Input already read and not
    consumed (a pipelined request) travels along and is parked with it.

    Args:
        conn: The connection `connect` was given, its response complete.
        source: A file descriptor to send from (the caller keeps and closes
            its own copy), or `None`: only what is queued.
        offset: Where in `source` to start.
        count: How many bytes of `source` to send.
        keep_alive: Park the connection afterwards (else close it).
        stall: Seconds the client may take nothing before the master closes.
        linger_timeout: Seconds of the lingering close, without `keep_alive`.
        linger_limit: Bytes the lingering close discards at most.

    Returns:
        Whether the connection is the master's now (`False` if nothing was done).

    Raises:
        ValueError: If `source` is given while output is still queued.

    Moonbridge: none.
    """
    worker = _worker.current()
    if worker is None or conn.closed or conn.tls or conn is not worker.connection \
            or worker.listener is None or conn.buffered > MAX_HELD - SEND.size:
        return False
    if source is not None and conn.queued:
        raise ValueError("send_rest: flush the queued output before sending a file")
    memfd = None
    if source is None:
        data = conn.take_output()
        memfd = os.memfd_create("response", os.MFD_CLOEXEC)
        view = memoryview(data)
        while view:
            view = view[os.write(memfd, view):]
        source, offset, count = memfd, 0, len(data)
    early = conn.read_nb() or b"" if keep_alive and conn.buffered else b""  # pipelined bytes
    payload = SEND.pack(worker.listener, offset, count, _milliseconds(stall),
                        _milliseconds(linger_timeout), min(linger_limit, _MAX_LIMIT),
                        AFTER_PARK if keep_alive else AFTER_CLOSE) + early
    try:
        sent = worker._tell_master(encode(Kind.SEND, payload, fds=2), [conn.fileno(), source])
    finally:
        if memfd is not None:
            os.close(memfd)
    if not sent:
        return False
    conn.close()  # nothing is queued any more: this only closes the worker's copy
    return True


@dataclass(slots=True)
class _Kept:
    """A half-closed connection a worker waits on for a moment."""

    fd: int
    hand_at: float
    """When it goes to the master if its client has not closed (`time.monotonic`)."""
    deadline: float
    """The end of the lingering close itself (`inf`: no limit)."""
    left: int
    """Bytes it may still discard."""


# --8<-- [start:closing]
class Closing:
    """The half-closed connections a worker waits on itself for a moment (a lazy lingering close).

    The worker's idle `poll` includes them (`watch`) and waits at most
    until the first is due (`wait_ms`); `look` reads away what came on the
    ready ones and closes those whose client has closed, and gives the
    ones still open after `LAZY_LINGER` to the master (`tell`, an `L`).

    Args:
        watch: The worker's idle poll; kept connections are registered there.
        tell: Sends a message with descriptors to the master; `False`: it is gone.
    """

    def __init__(self, watch: select.poll,
                 tell: Callable[[bytes, Sequence[int]], bool]) -> None:
        self.watch = watch
        self.tell = tell
        self.kept: dict[int, _Kept] = {}
        """By descriptor, oldest first (each is due `LAZY_LINGER` after it came)."""

    def __len__(self) -> int:
        return len(self.kept)

    def keep(self, conn: BufferedSocket, timeout: float | None, limit: int) -> bool:
        """Take a half-closed connection (the caller closes its copy); `False`: not taken."""
        if len(self.kept) >= LAZY_COUNT:
            self._hand(next(iter(self.kept.values())), time.monotonic())
        try:
            fd = os.dup(conn.fileno())
        except OSError:  # out of descriptors: the master takes it at once
            return False
        now = time.monotonic()
        deadline = math.inf if timeout is None else now + timeout
        self.kept[fd] = _Kept(fd, min(now + LAZY_LINGER, deadline), deadline, limit)
        self.watch.register(fd, select.POLLIN)
        return True

    def wait_ms(self) -> int | None:
        """How long the idle poll may wait, in milliseconds (`None`: nothing kept, no limit)."""
        if not self.kept:
            return None
        first = next(iter(self.kept.values()))
        return max(0, math.ceil((first.hand_at - time.monotonic()) * 1000))

    def look(self, ready: dict[int, int]) -> None:
        """After the idle poll: read the ready ones, close the ended, hand on the due ones."""
        for fd in [fd for fd in ready if fd in self.kept]:
            self._read(self.kept[fd])
        now = time.monotonic()
        while self.kept:
            first = next(iter(self.kept.values()))
            if first.hand_at > now:
                break
            self._hand(first, now)

    def hand_all(self) -> None:
        """Before the worker leaves: every connection kept goes to the master."""
        now = time.monotonic()
        for kept in list(self.kept.values()):
            self._hand(kept, now)

    def _read(self, kept: _Kept) -> None:
        while True:
            try:
                count = os.readv(kept.fd, [_scratch])
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                count = 0  # the connection failed: nothing to protect any more
            kept.left -= count
            if count == 0 or kept.left < 0:
                self._drop(kept)
                return

    def _hand(self, kept: _Kept, now: float) -> None:
        """Give a connection to the master for the rest of its lingering close (or close it)."""
        self.watch.unregister(kept.fd)
        del self.kept[kept.fd]
        seconds = None if math.isinf(kept.deadline) else kept.deadline - now
        if seconds is None or seconds > 0:
            frame = encode(Kind.LINGER, LINGER.pack(_milliseconds(seconds),
                                                    min(kept.left, _MAX_LIMIT)), fds=1)
            self.tell(frame, [kept.fd])
        with contextlib.suppress(OSError):
            os.close(kept.fd)  # the master's copy (if it got one) lives on

    def _drop(self, kept: _Kept) -> None:
        self.watch.unregister(kept.fd)
        del self.kept[kept.fd]
        with contextlib.suppress(OSError):
            os.close(kept.fd)
# --8<-- [end:closing]
