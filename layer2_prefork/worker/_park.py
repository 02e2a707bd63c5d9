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
so a worker does not park a connection that is busy::

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

The first `poll` of a decision answers all three at once, without
waiting: the connection, the control socket, the pool's queue and its
listeners. Only when nothing is there does a second one wait, for the
connection and the master.

When to ask is this module's too. A handler calls `park` when the next
request has not arrived (its read found nothing); a connection whose
client is always ahead would then never be asked about, so `park_due`
says when to call `park` before reading anyway: every `LOOK_EVERY`
seconds of a connection's stay, without a system call.

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
from collections.abc import Iterable

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
from its own `poll` of the queue and the listeners, not only from the master."""
GRACE = 0.002
"""While others wait, how long a worker waits for a client's next request before parking."""
LOOK_EVERY = 0.02
"""Seconds between two looks at a connection whose next request is always there already."""


# --8<-- [start:parking]
class Parking:
    """A worker's side of parking: the poll that decides, and when to look again.

    Args:
        worker: The worker whose current connection (`Worker.connection`) may move.
        backlogs: The pool's queue and listening sockets (their descriptors).
    """

    def __init__(self, worker: _worker.Worker, backlogs: Iterable[int]) -> None:
        self.worker = worker
        self.control = worker.control.fileno()
        self.backlogs = set(backlogs)
        self.watch = select.poll()
        """The control socket, registered once; `park` adds the connection while it decides."""
        self.watch.register(self.control, select.POLLIN)
        self.everything = select.poll()
        """The same and the backlogs: the first look of a decision."""
        for fd in (self.control, *self.backlogs):
            self.everything.register(fd, select.POLLIN)
        self.since = 0.0
        """When the connection of the last look came to this worker (`Worker.serving_since`)."""
        self.next_look = 0.0

    def forget(self, fd: int) -> None:
        """A listener the worker stopped accepting on."""
        self.backlogs.discard(fd)
        self.everything.unregister(fd)

    def due(self) -> bool:
        """Whether to ask before reading: `LOOK_EVERY` after the connection came, and after
        the last look."""
        now = time.monotonic()
        if self.since != self.worker.serving_since:  # a new connection: its first look
            self.since = self.worker.serving_since
            self.next_look = self.since + LOOK_EVERY
        if now < self.next_look:
            return False
        self.next_look = now + LOOK_EVERY
        return True

    def park(self, conn: BufferedSocket, linger: float) -> bool:
        """`park` for this worker's connection."""
        if not self._movable(conn):
            return False
        fd = conn.fileno()
        for watch in (self.watch, self.everything):
            watch.register(fd, select.POLLIN)
        try:
            return self._decide(conn, fd, linger)
        finally:
            for watch in (self.watch, self.everything):
                watch.unregister(fd)

    def _movable(self, conn: BufferedSocket) -> bool:
        if conn is not self.worker.connection:  # a timer event, or a socket of its own
            return False
        return not (conn.buffered or conn.closed or conn.tls or conn.queued)

    def _decide(self, conn: BufferedSocket, fd: int, linger: float) -> bool:
        """The table of the module docstring: hand the connection back, or keep it."""
        worker = self.worker
        start = now = time.monotonic()
        deadline = start + linger
        turn_over = worker.serving_since + SLICE  # when this connection has had its slice
        speaks, told, others = self._look(fd, 0.0, self.everything)
        waiting = others
        while True:
            if worker.check_stop() if told else worker.stopped():
                return False
            waiting = waiting or worker.work_waiting
            if waiting and now >= turn_over:
                return self._hand_back(conn)  # others wait and this one had its turn
            if speaks:
                return False
            until = min(deadline, start + GRACE, turn_over) if waiting else deadline
            if not told and now >= until:
                return self._hand_back(conn)  # silent: park
            # other work that comes during the wait counts from the next request on
            speaks, told, _ = self._look(fd, until - now, self.watch)
            now = time.monotonic()

    def _look(self, fd: int, wait: float, watch: select.poll) -> tuple[bool, bool, bool]:
        """One poll of the connection and the control socket (and the backlogs) for `wait` s.

        Returns:
            Whether the client sent something (or closed), whether the master
            did (read by `Worker.check_stop`, which the caller runs next), and
            whether other work waits in the queue or a listener's backlog.
        """
        ready = [ready_fd for ready_fd, _ in watch.poll(max(0, math.ceil(wait * 1000)))]
        return (fd in ready, self.control in ready,
                any(ready_fd in self.backlogs for ready_fd in ready))

    def _hand_back(self, conn: BufferedSocket) -> bool:
        worker = self.worker
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
# --8<-- [end:parking]


def park(conn: BufferedSocket, linger: float = 0.0) -> bool:
    """Hand an idle connection back to the master, to be served again when it speaks.

    Call it in a connect handler when a request is done and the connection
    stays open (HTTP keep-alive), and its next request has not arrived (or
    `park_due` says to ask anyway). If it returns `True`, the connection now
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
            cut to `GRACE` when other work waits.

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
    return worker is not None and worker.parking.park(conn, linger)


def park_due() -> bool:
    """Whether a handler whose client is ahead should call `park` before reading; no system call.

    True once every `LOOK_EVERY` seconds, counted from when the worker was
    given the connection; `False` outside a worker.

    Examples:
        >>> park_due()  # not in a worker
        False
    """
    worker = _worker.current()
    return worker is not None and worker.parking.due()


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
