"""Parking: a worker hands an idle connection back to the master.

A pre-forked worker serves one connection at a time, so a keep-alive
client that sits idle between two requests pins a whole process. `park`
ends that: called by a connect handler between two requests, it sends
the connection back to the master (`P`, the socket as `SCM_RIGHTS`) and
closes the worker's copy; the handler returns and the worker is free. The
master watches the connection (`_holding`) and, once the client's next
request has arrived (the pool's `DispatchFilter`), hands it to whichever
worker is idle, with the bytes it read.

Moving a connection costs two control messages and a few system calls,
so a worker does not park a connection that is busy:

    pipelined bytes already read            -> keep it (never parked: the
                                               bytes are in this process)
    a graceful stop began                   -> keep it (the caller closes)
    other work waits (the master said `W`,  -> park, even if its next
      or the pool's queue or a listener has    request is already there
      some), and this connection has had
      its time slice (`SLICE`, 0: one request)
    the next request is in the kernel       -> keep it
    nothing yet                             -> wait up to `linger` for the
                                               next request; park if none
                                               came

A TLS connection cannot move: its session state lives in this process's
memory, so `park` keeps it (returns `False`).

Invariants: `park` returns `True` only once the master has been sent the
connection and the handler's `BufferedSocket` is closed (without a
FIN: the master holds the connection); when it returns `False` nothing
happened to the connection.
"""

from __future__ import annotations

import math
import select
import socket
import time

from layer1_sockets import BufferedSocket

from .._protocol import Kind, connect_payload, encode
from . import _loop as _worker

SLICE = 0.0
"""Seconds a busy connection keeps its worker while other work waits (its time slice).

Zero: while others wait, a connection goes back to the master after every
request, so that work is shared request by request. Measured with 16
keep-alive connections on 2 workers (wrk, 4 s, one after the other on a
quiet machine): a 20 ms slice gave 30,700 requests a second with a p99 of
139 ms (seven other connections' slices), 3 ms 29,500 and 22 ms, 1 ms
27,400 and 8.3 ms, and 0 gave 26,500 and 3.2 ms: a tail forty times
shorter for a seventh of the throughput. A worker learns that others wait
from one `poll` of the queue and the listeners, not from the master."""
GRACE = 0.002
"""While others wait, how long a worker waits for a client's next request before parking."""


def park(conn: BufferedSocket, linger: float = 0.0) -> bool:
    """Hand an idle connection back to the master, to be served again when it speaks.

    Call it in a connect handler when a request is done and the connection
    stays open (HTTP keep-alive). If it returns `True`, the connection now
    belongs to the master: the handler returns (the worker becomes idle),
    and when the client's next request arrives the master gives the
    connection, with the bytes it read, to any idle worker, whose
    handler reads them as if they had just arrived. If it returns `False`,
    nothing changed: keep serving the connection (its next request may
    already be there).

    Args:
        conn: The connection, with its response written.
        linger: Seconds to wait for the next request before parking (it is
            cheaper to keep a connection whose client answers at once);
            cut to `GRACE` when the master says other connections wait.

    Returns:
        Whether the connection was handed back. `False` outside a worker,
        for a timer event, a socket other than the connection `connect`
        was given, or a TLS connection, with bytes already read and
        not consumed (`conn.buffered`), once a graceful stop began, or when
        the next request came within `linger`.

    Examples:
        >>> from layer1_sockets import BufferedSocket
        >>> import socket
        >>> a, b = socket.socketpair()
        >>> park(BufferedSocket(a))  # not in a worker: nothing happens
        False
        >>> b.close()

    Moonbridge: none; the original keeps every connection in its worker.
    """
    worker = _worker.current()
    if worker is None or not _movable(worker, conn):
        return False
    watch = worker.watch  # the control socket is registered once, in the worker
    fd = conn.fileno()
    watch.register(fd, select.POLLIN)
    try:
        return _decide(worker, watch, conn, fd, linger)
    finally:
        watch.unregister(fd)


def _decide(worker: _worker.Worker, watch: select.poll, conn: BufferedSocket, fd: int,
            linger: float) -> bool:
    """The table of the module docstring: hand the connection back, or keep it."""
    start = now = time.monotonic()
    deadline = start + linger
    waiting = worker.others_wait()
    while True:
        if waiting and now >= worker.serving_since + SLICE:
            return _hand_back(worker, conn)  # others wait and this one had its turn
        until = deadline
        if waiting:  # others wait: only a short grace, within the time slice
            until = min(deadline, start + GRACE, worker.serving_since + SLICE)
        speaks, told = _look(watch, fd, max(0.0, until - now))  # one poll per wait
        if worker.check_stop() if told else worker.stopped():
            return False
        waiting = waiting or worker.work_waiting
        now = time.monotonic()
        if speaks:
            if waiting and now >= worker.serving_since + SLICE:
                return _hand_back(worker, conn)
            return False
        if not told and now >= until:
            return _hand_back(worker, conn)  # silent: park


def _movable(worker: _worker.Worker, conn: BufferedSocket) -> bool:
    if conn is not worker.connection:  # a timer event, or a socket of the handler's own
        return False
    return not (conn.buffered or conn.closed or conn.tls or conn.queued)


def _look(watch: select.poll, fd: int, wait: float) -> tuple[bool, bool]:
    """Poll the connection and the control socket for up to `wait` seconds.

    Returns:
        Whether the client sent something (or closed), and whether the
        master did: what arrived on the control socket (`W`, `T`) is read
        by `Worker.check_stop`, which the caller runs next.
    """
    ready = watch.poll(math.ceil(wait * 1000))
    speaks = any(event_fd == fd for event_fd, _ in ready)
    return speaks, len(ready) > speaks


def _hand_back(worker: _worker.Worker, conn: BufferedSocket) -> bool:
    index = worker.listener
    assert index is not None
    frame = encode(Kind.PARK, connect_payload(index), fds=1)
    try:
        sent = socket.send_fds(worker.control, [frame], [conn.fileno()])
    except OSError:
        return False
    if sent != len(frame):  # a blocking socket sends whole frames or fails
        raise ConnectionError("the control socket took part of a PARK message")
    conn.close()  # the master holds the connection now: no FIN, nothing lost
    return True


def work_waiting() -> bool:
    """Whether the master said that connections wait for a worker; never blocks.

    The master tells its busy workers (`W`) when connections whose request
    has arrived wait and no worker is idle. A connect handler serving a
    busy keep-alive connection can then `park` it between two requests,
    so that the others get their turn. Each call reads the control socket
    (a system call): ask every few milliseconds, not before every request.

    Returns:
        `True` from the notice until this worker next becomes idle;
        `False` outside a worker.

    Examples:
        >>> work_waiting()  # not in a worker
        False
    """
    worker = _worker.current()
    if worker is None:
        return False
    worker.check_stop()  # reads whatever the master sent
    return worker.others_wait()
