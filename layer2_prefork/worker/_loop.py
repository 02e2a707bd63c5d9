"""The worker process: prepare once, then serve one piece of work at a time.

A worker is forked by the master and never returns into the master's code:
`main()` ends with `os._exit`. Its life::

    prepare()                      raises -> exit 1 (the pool slows down)
    loop:
        idle: write IDLE into the scoreboard, poll the control socket,
              the pool's queue, the pool's listening sockets and the
              connections it half-closed (`Closing`: closed at the
              client's end, to the master with L after LAZY_LINGER)
        T, R, or the master gone   -> leave
        a record on the queue      -> take it (C: a held connection with
                                      its bytes, or a timer event)
        a connection to accept     -> accept it; with a dispatch filter,
                                      read its first bytes for up to
                                      FIRST_BYTES_GRACE: incomplete -> H
                                      to the master, idle again
        serve: write BUSY, connect(conn or event)
                                   raises -> traceback, reset, exit 1
           a timer event done -> D; returned False, resident size above
           memory_limit, or max_requests served -> leave
    leave: half-closed connections to the master (L), finish(), send B, exit 0

While `connect` runs, the master may send `W` (other work waits: `park`
hands the connection back at the next chance) and `T` (a graceful stop
began: exit when done), or `R` (retire while the server goes on: park at
the next chance, leave once idle). The worker reads it only when asked: `stopping()`
looks at the control socket without blocking, and `stop_fd()` is the
descriptor to include in a poll to learn of it while waiting for
something else. Once done, a worker told so leaves without taking more.

Invariants:

* application code never runs while the worker is idle, and the
  `timeout()` watchdog is disarmed whenever it is;
* a connection is closed (flushed within `CLOSE_TIMEOUT`, else reset)
  after `connect` returns if the handler did not close it;
* everything the worker writes to fd 2 reaches the master's log, and the
  worker flushes `sys.stdout`/`sys.stderr` before it exits.
"""

from __future__ import annotations

import array
import contextlib
import errno
import os
import random
import resource
import select
import selectors
import signal
import socket
import sys
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, NoReturn

from layer1_sockets import BufferedSocket

from .._accept import FIRST_PAUSE, TRANSIENT
from .._config import (
    TCP,
    DispatchFilter,
    Event,
    Inherited,
    Interval,
    ListenerSpec,
    Local,
    Main,
    PoolSpec,
)
from .._errors import ProtocolError
from .._protocol import (
    CONTROL_TO_WORKER,
    QUEUE,
    Decoder,
    Kind,
    Message,
    connect_payload,
    decode_record,
    encode,
    pack_bytes,
    unpack_bytes,
)
from .._scoreboard import ExitCause, Writer
from . import _handover, _park, _timeout

CLOSE_TIMEOUT = 10.0
"""Seconds the worker spends flushing a connection the handler left open."""

inside = False
"""True in a worker process (`listen` refuses to run there)."""

_current: Worker | None = None
"""The worker this process runs (`None` in the master and elsewhere)."""

_RESET_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD,
                  signal.SIGUSR1, signal.SIGALRM)


class After(Enum):
    """What a worker does once a piece of work is done."""

    CONTINUE = "continue"
    LEAVE = "leave"
    FAIL = "fail"


@dataclass(slots=True)
class Context:
    """What a worker inherits besides its pool's spec: where its work comes from."""

    queue: socket.socket
    """The receiving end of the pool's queue (`SOCK_SEQPACKET`, shared by the pool's workers)."""
    listeners: Sequence[tuple[int, socket.socket]]
    """The pool's listening sockets, with their listener indexes (shared, non-blocking)."""
    board: Writer
    """The worker's slot of the scoreboard."""


Work = tuple[int, "socket.socket | None", bytes, bool]
"""A piece of work: listener index, connection (`None`: a timer event), the bytes
read of it, and whether it came from the queue (else it was accepted here)."""


def main(spec: PoolSpec, control: socket.socket, context: Context) -> NoReturn:
    """Run a freshly forked worker until it exits; never returns.

    The caller (the master's fork code) has already closed the master's
    descriptors and made the stderr socket pair the worker's fd 2.

    Args:
        spec: The worker's pool.
        control: The worker's end of its control socket pair.
        context: The pool's queue and listeners, and the worker's scoreboard slot.
    """
    global inside, _current
    inside = True
    code = 1
    try:
        for number in _RESET_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        # a reload is the master's: SIGUSR2 sent to every process of the server ends none
        signal.signal(signal.SIGUSR2, signal.SIG_IGN)
        _current = Worker(spec, control, context)
        code = _current.run()
    except SystemExit as request:  # sys.exit() in a handler: leave with its status
        code = request.code if isinstance(request.code, int) else int(request.code is not None)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


class Worker:
    """One worker's loop: take work from the listeners or the queue, serve it.

    Args:
        spec: The worker's pool.
        control: The worker's end of its control socket pair (blocking).
        context: The pool's queue and listeners, and the worker's scoreboard slot.
    """

    def __init__(self, spec: PoolSpec, control: socket.socket, context: Context) -> None:
        self.spec = spec
        self.handlers = spec.handlers
        self.control = control
        self.queue = context.queue
        self.board = context.board
        self.listening = {sock.fileno(): (index, sock) for index, sock in context.listeners}
        self.decoder = Decoder(CONTROL_TO_WORKER)
        self.inbox: deque[Message] = deque()
        """Messages read while busy (only `T` is expected then), in order."""
        self.stop_requested = False
        """A `T` arrived while busy: the server is stopping gracefully."""
        self.master_gone = False
        """The control socket ended: the master is gone."""
        self.broken: ProtocolError | None = None
        """A malformed message noticed while busy, raised when idle."""
        self.work_waiting = False
        """A `W` arrived since this worker last said idle."""
        self.retiring = False
        """An `R` arrived: hand back what can move, leave once idle (the server goes on)."""
        self.listener: int | None = None
        """The index of the listener whose connection `connect` serves now."""
        self.serving_since = 0.0
        """When the current connection was given to this worker (`time.monotonic`)."""
        self.connection: BufferedSocket | None = None
        """The connection `connect` serves now (`None` for a timer event): the one `park` moves."""
        self.watch = select.poll()
        """The control socket alone (a pause after an accept error listens to the master only)."""
        self.watch.register(control, select.POLLIN)
        self.waiting = select.poll()
        """What an idle worker waits on: control socket, queue and listeners."""
        for fd in (control.fileno(), self.queue.fileno()):
            self.waiting.register(fd, select.POLLIN)
        for fd in self.listening:  # RDHUP: a Unix listener shut down by the master
            self.waiting.register(fd, select.POLLIN | select.POLLRDHUP)
        self.backlogs = select.poll()
        """The queue and the listeners, for `others_wait` (a poll that never waits)."""
        for fd in (self.queue.fileno(), *self.listening):
            self.backlogs.register(fd, select.POLLIN)
        self.queue_first = False
        """Whether the queue goes before the listeners at the next wake-up (they alternate)."""
        self.closing = _handover.Closing(self.waiting, self._tell_master)
        """Half-closed connections this worker waits on while idle (a lazy lingering close)."""
        self.parking = _park.Parking(self, (self.queue.fileno(), *self.listening))
        """Between two requests: whether to hand the connection back (`park`)."""
        self.limits = RequestLimits()
        """This worker's `max_requests` limits, each with its jitter drawn once."""
        self.served = 0
        """Pieces of work served (the pool's `max_requests` counts these)."""
        self.max_requests = self.limits.limit(spec.options.max_requests,
                                              spec.options.max_requests_jitter)

    # --8<-- [start:run]
    def run(self) -> int:
        """Prepare, serve until told to stop, finish; return the exit status."""
        limit_memory(self.spec.options.memory_limit)
        if not self._call(self.handlers.prepare):
            return 1
        after = After.CONTINUE
        while after is After.CONTINUE:
            work = self._idle()
            after = After.LEAVE if work is None else self._serve(work)
        self.closing.hand_all()
        if after is After.FAIL or not self._call(self.handlers.finish):
            return 1
        with contextlib.suppress(OSError):
            self.control.sendall(encode(Kind.GOODBYE))
        return 0
    # --8<-- [end:run]

    def _call(self, handler: Any) -> bool:
        """Run prepare or finish; False (traceback printed) if it raised."""
        if handler is None:
            return True
        _timeout.disarm()  # no stale timer from the last connection
        try:
            handler()
        except Exception:
            traceback.print_exc()
            return False
        finally:
            _timeout.disarm()
        return True

    # --8<-- [start:idle]
    def _idle(self) -> Work | None:
        """Say idle on the scoreboard, then wait for work; `None`: leave (stop, master gone).

        When both the queue (connections the master held) and a listener
        (new connections) have work, they take turns, so that neither can
        starve the other.
        """
        self.work_waiting = False
        self.board.idle(time.monotonic())
        while True:
            if self.broken is not None:
                raise self.broken
            if self.inbox or self.stopped() or self.retiring:
                return None  # only T is queued, or R came: leave
            ready = dict(self.waiting.poll(_timeout.idle_wait(self.closing.wait_ms())))
            if self.closing:
                self.closing.look(ready)  # half-closed connections: ended, or due for the master
            if self.control.fileno() in ready:
                self._receive(block=False)
                continue
            queued = self.queue.fileno() in ready
            self.queue_first = not self.queue_first
            if queued and self.queue_first and (work := self._take_queued()) is not None:
                return work
            for fd, events in ready.items():
                if fd not in self.listening:
                    continue
                if events & (select.POLLHUP | select.POLLRDHUP | select.POLLERR):
                    self._stop_accepting(fd)  # the master shut it (a stop)
                elif (work := self._accept(fd)) is not None:
                    return work
            if queued and not self.queue_first and (work := self._take_queued()) is not None:
                return work
    # --8<-- [end:idle]

    def _take_queued(self) -> Work | None:
        """Take one piece of work from the pool's queue; `None` if another worker was first."""
        try:
            data, ancillary, flags, _ = self.queue.recvmsg(
                QUEUE_RECORD, socket.CMSG_SPACE(2 * 4), socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return None
        fds = _descriptors(ancillary)
        if not data:
            self.master_gone = True
            return None
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            for fd in fds:
                os.close(fd)
            raise ProtocolError("a queue record was truncated")
        message = decode_record(data, fds, QUEUE)
        self.board.busy(message.listener, time.monotonic(), queued=True)  # at once: see below
        conn = socket.socket(fileno=message.fds[0]) if message.fds else None
        return message.listener, conn, unpack_bytes(message), True

    # --8<-- [start:accept]
    def _accept(self, fd: int) -> Work | None:
        """Accept a connection (another worker may have been first); read its first bytes.

        With a dispatch filter, a connection whose request is complete
        within `FIRST_BYTES_GRACE` is served here at once; any other goes
        to the master with what came (`H`), which holds it until the
        request has arrived: a slow or silent client costs no worker. While
        other work waits (the backlog, the queue), there is no grace at all:
        what has not arrived with the connection is the master's to wait for.
        """
        index, listener = self.listening[fd]
        try:
            conn, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as error:
            if error.errno in (errno.EINVAL, errno.EBADF, errno.ENOTSOCK):
                self._stop_accepting(fd)  # the master shut the listener (a stop)
            elif error.errno not in TRANSIENT:
                print(f"accept on listener {index} failed: {error}", file=sys.stderr)
                self._pause_accepting()
            return None
        rules = self.spec.dispatch_filter
        if rules is None:
            return index, conn, b"", False
        first = _first_bytes(conn, rules, self.others_wait)
        if first is None:
            conn.close()  # closed or reset before it said anything
            return None
        data, ended = first
        if ended or len(data) >= rules.max_bytes or rules.arrived(data, 0):
            return index, conn, data, False
        self._hold(index, conn, data)
        return None
    # --8<-- [end:accept]

    def _stop_accepting(self, fd: int) -> None:
        """Forget a listener the master shut down (`shutdown`: every copy stops at once)."""
        self.waiting.unregister(fd)
        self.backlogs.unregister(fd)
        self.parking.forget(fd)
        del self.listening[fd]

    def _hold(self, index: int, conn: socket.socket, data: bytes) -> None:
        """Hand a connection whose request is incomplete to the master (`H`)."""
        payload, memfd = pack_bytes(data)
        fds = [conn.fileno()] + ([] if memfd is None else [memfd])
        try:
            socket.send_fds(self.control, [encode(Kind.HOLD, connect_payload(index, payload),
                                                  fds=len(fds))], fds)
        except OSError:
            pass  # the master is gone: the connection ends with this worker
        finally:
            conn.close()
            if memfd is not None:
                os.close(memfd)

    def _pause_accepting(self) -> None:
        """After an accept error (out of descriptors): wait a moment, listening to the master only.

        (Polling the listener too would return at once while a connection
        waits in its backlog, and the worker would spin.)
        """
        if self.watch.poll(int(FIRST_PAUSE * 1000)):
            self.check_stop()  # a T or W that came meanwhile

    def _receive(self, block: bool) -> None:
        """Read the control socket once; queue the messages, note a `T` and the end.

        Raises:
            ProtocolError: The master sent something the protocol does not allow.
        """
        if not block and not _readable(self.control):
            return  # (recv_fds ignores MSG_DONTWAIT in Python 3.11)
        try:
            data, fds, flags, _ = socket.recv_fds(self.control, 4096, 4)
        except ConnectionResetError:
            data, fds, flags = b"", [], 0
        self.decoder.feed(data, fds)
        if flags & socket.MSG_CTRUNC:
            raise ProtocolError("descriptors from the master were truncated")
        if not data:
            self.decoder.close()
            self.master_gone = True
            return
        while (message := self.decoder.next_message()) is not None:
            if message.kind in (Kind.WAITING, Kind.RETIRE):
                self.work_waiting = True
                self.retiring = self.retiring or message.kind is Kind.RETIRE
                continue
            self.stop_requested = self.stop_requested or message.kind is Kind.TERMINATE
            self.inbox.append(message)

    def others_wait(self) -> bool:
        """Whether other work waits for a worker of this pool; never blocks.

        The master said so (`W`), or the pool's queue or a listener's backlog
        holds something: one `poll` with no timeout, so a worker between two
        requests knows at once, without waiting for the master to notice.
        """
        return self.work_waiting or self.retiring or bool(self.backlogs.poll(0))

    def stopped(self) -> bool:
        """Whether a stop is already known (without reading the control socket)."""
        return self.stop_requested or self.master_gone or self.broken is not None

    def check_stop(self) -> bool:
        """Whether the server is stopping (or the master is gone); never blocks."""
        if not (self.stop_requested or self.master_gone or self.broken):
            try:
                self._receive(block=False)
            except ProtocolError as error:
                self.broken = error
            except OSError:
                self.master_gone = True
        return self.stop_requested or self.master_gone or self.broken is not None

    # --8<-- [start:serve]
    def _serve(self, work: Work) -> After:
        """Run `connect` for one piece of work, then decide whether to go on."""
        index, sock, data, queued = work
        listener = self._check_work(index, sock)
        self.listener, self.serving_since = index, time.monotonic()
        self.board.busy(index, self.serving_since, accepted=not queued)
        conn = _given(listener, sock, data)
        result = self._run_handler(index, conn)
        if result is None:
            return After.FAIL
        self.served += 1
        return self._after(result)
    # --8<-- [end:serve]

    def _check_work(self, index: int, sock: socket.socket | None) -> ListenerSpec:
        """The listener a piece of work belongs to.

        Raises:
            ProtocolError: No such listener, or a connection for a timer (or none for a socket).
        """
        if index >= len(self.spec.listeners):
            raise ProtocolError(f"CONNECT for listener {index}, which does not exist")
        listener = self.spec.listeners[index]
        if isinstance(listener, TCP | Local | Inherited) != (sock is not None):
            raise ProtocolError(f"CONNECT for listener {index} with the wrong descriptors")
        return listener

    def _run_handler(self, index: int, conn: BufferedSocket | Event) -> object:
        """Call `connect`; return its result, `None` if it raised (traceback printed, reset).

        Afterwards the watchdog is disarmed (after a connection: `rest`, which
        may leave a far stale timer set), a timer run is reported done (`D`),
        and a connection the handler left open is closed politely. A timer
        run starts with the watchdog disarmed.
        """
        self.connection = conn if isinstance(conn, BufferedSocket) else None
        if self.connection is None:
            _timeout.disarm()
        try:
            result = self.handlers.connect(conn)
        except Exception as error:
            traceback.print_exc()
            if isinstance(error, MemoryError):
                self.board.leaving(ExitCause.MEMORY_LIMIT)
            if isinstance(conn, BufferedSocket):
                conn.reset()
            return None
        finally:
            if isinstance(conn, BufferedSocket):
                _timeout.rest()
            else:
                _timeout.disarm()
            self.listener, self.connection = None, None
            if isinstance(conn, Event):
                self._tell_master(encode(Kind.DONE, connect_payload(index)))
        if isinstance(conn, BufferedSocket) and not conn.closed:
            close_politely(conn)
        return True if result is None else result

    def _after(self, result: object) -> After:
        """Retire when the handler said so (`False`), or at `max_requests`, or `memory_limit`."""
        if result is False:
            self.board.leaving(ExitCause.HANDLER)  # unless the handler said why (`retiring`)
            return After.LEAVE
        if self.limits.spent(self.max_requests, self.served):
            print(f"served {self.served} requests (max_requests); retiring", file=sys.stderr)
            self.board.leaving(ExitCause.MAX_REQUESTS)
            return After.LEAVE
        if over_memory_limit(self.spec.options.memory_limit):
            self.board.leaving(ExitCause.MEMORY_LIMIT)
            return After.LEAVE
        return After.CONTINUE

    def _tell_master(self, frame: bytes, fds: Sequence[int] = ()) -> bool:
        """Send a message to the master; `False` if it is gone."""
        try:
            if fds:
                socket.send_fds(self.control, [frame], list(fds))
            else:
                self.control.sendall(frame)
        except OSError:
            self.master_gone = True
            return False
        return True


QUEUE_RECORD = 65536 + 64
"""The largest record of the pool's queue (a `C` frame with a full payload)."""
FIRST_BYTES_GRACE = 0.005
"""How long a worker that accepted a connection waits for its request before the master holds it."""


def _descriptors(ancillary: list[tuple[int, int, bytes]]) -> list[int]:
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(array.array("i", payload[:len(payload) - len(payload) % 4]))
    return fds


def _first_bytes(conn: socket.socket, rules: DispatchFilter,
                 others_wait: Callable[[], bool]) -> tuple[bytes, bool] | None:
    """Read what a new connection sends within `FIRST_BYTES_GRACE` seconds.

    There is no grace at all while other work waits (`others_wait`, asked
    only when the first read finds nothing): a flood of silent connections
    costs no worker time.

    Returns:
        The bytes, and whether the client half-closed after them; `None` if
        the client closed or reset before sending anything.
    """
    data = bytearray()
    limit = rules.max_bytes
    deadline: float | None = None
    while len(data) < limit:
        try:
            chunk = conn.recv(min(65536, limit - len(data)), socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            if deadline is None:
                deadline = time.monotonic() + (0.0 if others_wait() else FIRST_BYTES_GRACE)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([conn], [], [], left)[0]:
                break
            continue
        except OSError:
            return None
        if not chunk:
            return (bytes(data), True) if data else None
        start = len(data)
        data += chunk
        if rules.arrived(bytes(data), start):
            break
    return bytes(data), False


def current() -> Worker | None:
    """The worker this process runs, or `None` (in the master, or outside a server)."""
    return _current


def _readable(sock: socket.socket) -> bool:
    """Whether a read of `sock` would return at once (poll with timeout 0)."""
    watch = select.poll()
    watch.register(sock, select.POLLIN)
    return bool(watch.poll(0))


def stopping() -> bool:
    """Whether the server this worker belongs to is stopping; never blocks.

    Turns true when a graceful stop began while this worker was busy (or
    was given a connection held during the stop), or when the master is
    gone. A handler can then end idle work early: layer 3 closes a
    keep-alive connection instead of waiting for its next request. Work
    already under way should still be finished. Outside a worker (in the
    master, or a script run without `run()`) it is always `False`.

    Returns:
        `True` once a stop was requested; it stays true.

    Examples:
        >>> stopping()  # not in a worker
        False
    """
    worker = _current
    return worker is not None and worker.check_stop()


def stop_fd() -> int | None:
    """A descriptor that turns readable when `stopping()` may have turned true.

    Include it in the poll of a wait (for the next request, for a slow
    peer), then call `stopping()`, which reads the notice: the descriptor
    is the worker's control socket, so never read it yourself. Call
    `stopping()` before each wait too: once a notice was read, the
    descriptor stays quiet.

    Returns:
        The descriptor, or `None` outside a worker.

    Examples:
        >>> stop_fd() is None  # not in a worker
        True
    """
    worker = _current
    if worker is None or worker.master_gone:
        return None
    return worker.control.fileno()


def _given(listener: ListenerSpec, sock: socket.socket | None,
           data: bytes) -> BufferedSocket | Event:
    """What `connect` is given: the connection with the bytes read of it, or a timer event."""
    if isinstance(listener, Interval):
        return Event(interval=listener.name)
    if isinstance(listener, Main):
        return Event(main=listener.name)
    assert sock is not None
    conn = BufferedSocket(sock)
    if data:
        conn.unread(data)  # what was read before the handler got the connection
    return conn


# --8<-- [start:limits]
class RequestLimits:
    """`max_requests` with its jitter, drawn once per worker (each worker has its own).

    The pool's limit counts pieces of work (`Worker.served`); a handler
    that serves several requests per connection (layer 3) counts its own
    with `requests_left` and `count_requests`.
    """

    def __init__(self) -> None:
        self.drawn: dict[tuple[int, int], int] = {}
        self.requests = 0
        """Requests the handler said it served (`count_requests`)."""

    def limit(self, max_requests: int | None, jitter: int) -> int | None:
        """The limit with this worker's jitter, the same at every call."""
        if max_requests is None:
            return None
        key = (max_requests, jitter)
        if key not in self.drawn:
            self.drawn[key] = request_limit(max_requests, jitter) or max_requests
        return self.drawn[key]

    @staticmethod
    def spent(limit: int | None, served: int) -> bool:
        return limit is not None and served >= limit
# --8<-- [end:limits]


_outside = RequestLimits()
"""The limits of a process that is not a worker (a handler run by a test or a script)."""


def requests_left(max_requests: int | None, jitter: int = 0) -> int | None:
    """How many more requests this worker may answer under a handler's own `max_requests`.

    The jitter (a random 0 to `jitter` added to the limit) is drawn once
    per worker, so workers started together do not retire together;
    `count_requests` counts what was answered.

    Returns:
        At least 1 (the request about to be answered); `None` for no limit.

    Examples:
        >>> requests_left(None) is None
        True
        >>> requests_left(100)  # not in a worker: the process's own count
        100
    """
    limits = _current.limits if _current is not None else _outside
    limit = limits.limit(max_requests, jitter)
    return None if limit is None else max(limit - limits.requests, 1)


def count_requests(count: int) -> None:
    """Count `count` requests answered toward `requests_left`."""
    (_current.limits if _current is not None else _outside).requests += count


def request_limit(max_requests: int | None, jitter: int) -> int | None:
    """The number of requests after which this worker retires (`max_requests`).

    Each worker adds its own random amount from 0 to `jitter`, so
    workers started together do not all retire at the same moment.

    Examples:
        >>> request_limit(None, 10) is None
        True
        >>> 100 <= request_limit(100, 10) <= 110
        True
    """
    if max_requests is None:
        return None
    return max_requests + (random.randint(0, jitter) if jitter else 0)


def close_politely(conn: BufferedSocket, timeout: float | None = None) -> None:
    """Flush and close a connection; reset it if the peer does not take the data in time.

    Args:
        conn: The connection the handler left open.
        timeout: Seconds to wait for the peer (default `CLOSE_TIMEOUT`).
    """
    deadline = time.monotonic() + (CLOSE_TIMEOUT if timeout is None else timeout)

    def wait(sock: BufferedSocket, mode: str) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_WRITE)
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise TimeoutError("the peer does not take the rest of the output")

    try:
        conn.flush_call(wait)
        conn.close()
    except (OSError, ValueError):
        conn.reset()


def memory_use() -> tuple[int, int]:
    """Return this process's (address space, resident size) in bytes, from /proc."""
    with open("/proc/self/statm", "rb") as statm:
        size, resident = statm.read().split()[:2]
    page = os.sysconf("SC_PAGE_SIZE")
    return int(size) * page, int(resident) * page


def limit_memory(limit: int | None) -> None:
    """Cap the address space at its current size plus `limit` (`RLIMIT_AS`)."""
    if limit is None:
        return
    cap = memory_use()[0] + limit
    hard = resource.getrlimit(resource.RLIMIT_AS)[1]
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))


def over_memory_limit(limit: int | None) -> bool:
    """Whether the resident size exceeds `limit`; says so on stderr if it does."""
    if limit is None:
        return False
    resident = memory_use()[1]
    if resident <= limit:
        return False
    print(f"resident size {resident} bytes exceeds memory_limit {limit}; retiring",
          file=sys.stderr)
    return True
