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
"""

from __future__ import annotations

import os

from layer1_sockets import BufferedSocket

from .._protocol import AFTER_CLOSE, AFTER_PARK, LINGER, MAX_HELD, NO_LIMIT, SEND, Kind, encode
from . import _loop as _worker

_MAX_LIMIT = NO_LIMIT - 1


def _milliseconds(seconds: float | None) -> int:
    if seconds is None:
        return NO_LIMIT
    return min(max(int(seconds * 1000), 0), _MAX_LIMIT)


def linger(conn: BufferedSocket, timeout: float | None, limit: int = 1 << 20) -> bool:
    """End a connection whose last response is written: half-close, let the master wait.

    Flushes what is queued (a caller with a slow client uses `send_rest`
    first), shuts down the write direction (the client sees the end),
    discards what the client already sent, and then either closes at once
    (the client's end is there) or hands the connection to the master, which
    discards what else comes until the client closes, `limit` bytes were
    discarded, or `timeout` seconds passed, then closes it.

    Args:
        conn: The connection.
        timeout: Seconds the master waits for the client's end (`None`: no limit).
        limit: The most bytes to discard before closing anyway.

    Returns:
        Whether the connection is closed or the master's now; `False`: nothing
        was done (outside a worker, TLS), the caller lingers itself.

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
    while True:
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
        Whether the connection is the master's now; `False`: nothing was done.

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
