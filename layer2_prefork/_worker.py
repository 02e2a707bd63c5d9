"""The worker process: prepare once, then serve one piece of work at a time.

A worker is forked by the master and never returns into the master's code:
`main()` ends with `os._exit`. Its life:

    prepare()                      raises -> exit 1 (the pool slows down)
    loop:
        send I                     "idle"
        wait for C or T            (EOF: the master is gone -> leave)
        C: connect(conn or event)  raises -> traceback, reset, exit 1
           returned False, resident size above memory_limit, or
           max_requests served -> leave
    leave: finish(), send B, exit 0

While `connect` runs, the master may send `W` (connections wait for a
worker: `park` hands the connection back at the next chance) and `T` (a
graceful stop began: exit when done). The worker reads it only when asked: `stopping()` looks
at the control socket without blocking, and `stop_fd()` is the
descriptor to include in a poll to learn of it while waiting for
something else. Once done, a worker told so leaves without saying idle.

Invariants:

* application code never runs while the worker is idle, and the
  `timeout()` watchdog is disarmed whenever it is;
* a connection is closed (flushed within `CLOSE_TIMEOUT`, else reset)
  after `connect` returns if the handler did not close it;
* everything the worker writes to fd 2 reaches the master's log, and the
  worker flushes `sys.stdout`/`sys.stderr` before it exits.
"""

from __future__ import annotations

import contextlib
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
from enum import Enum
from typing import Any, NoReturn

from layer1_sockets import BufferedSocket

from . import _timeout
from ._config import TCP, Event, Inherited, Interval, Local, Main, PoolSpec
from ._errors import ProtocolError
from ._protocol import TO_WORKER, Decoder, Kind, Message, encode

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


def main(spec: PoolSpec, control: socket.socket) -> NoReturn:
    """Run a freshly forked worker until it exits; never returns.

    The caller (the master's fork code) has already closed the master's
    descriptors and made the stderr socket pair the worker's fd 2.

    Args:
        spec: The worker's pool.
        control: The worker's end of its control socket pair.
    """
    global inside, _current
    inside = True
    code = 1
    try:
        for number in _RESET_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        _current = Worker(spec, control)
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
    """One worker's loop over its control socket.

    Args:
        spec: The worker's pool.
        control: The worker's end of its control socket pair (blocking).
    """

    def __init__(self, spec: PoolSpec, control: socket.socket) -> None:
        self.spec = spec
        self.handlers = spec.handlers
        self.control = control
        self.decoder = Decoder(TO_WORKER)
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
        self.listener: int | None = None
        """The index of the listener whose connection `connect` serves now."""
        self.serving_since = 0.0
        """When the current connection was given to this worker (`time.monotonic`)."""
        self.connection: BufferedSocket | None = None
        """The connection `connect` serves now (`None` for a timer event): the one `park` moves."""
        self.watch = select.poll()
        """The control socket, registered once; `park` adds the connection it watches."""
        self.watch.register(control, select.POLLIN)
        self.served = 0
        self.max_requests = request_limit(spec.options.max_requests,
                                          spec.options.max_requests_jitter)

    # --8<-- [start:run]
    def run(self) -> int:
        """Prepare, serve until told to stop, finish; return the exit status."""
        limit_memory(self.spec.options.memory_limit)
        if not self._call(self.handlers.prepare):
            return 1
        after = After.CONTINUE
        while after is After.CONTINUE:
            message = self._idle()
            if message is None or message.kind is Kind.TERMINATE:
                after = After.LEAVE
            else:
                after = self._serve(message)
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
        try:
            handler()
        except Exception:
            traceback.print_exc()
            return False
        finally:
            _timeout.disarm()
        return True

    def _idle(self) -> Message | None:
        """Say idle, then block until the master's next message; None if the master is gone.

        A message read while busy (a `T`) is returned at once, without saying idle.
        """
        if self.inbox:
            return self.inbox.popleft()
        self.work_waiting = False
        try:
            self.control.sendall(encode(Kind.IDLE))
        except OSError:
            return None
        while True:
            if self.broken is not None:
                raise self.broken
            if self.inbox:
                return self.inbox.popleft()
            if self.master_gone:
                return None
            self._receive(block=True)

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
            if message.kind is Kind.WAITING:
                self.work_waiting = True
                continue
            self.stop_requested = self.stop_requested or message.kind is Kind.TERMINATE
            self.inbox.append(message)

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

    def _serve(self, message: Message) -> After:
        """Run `connect` for one CONNECT message."""
        index = message.listener
        if index >= len(self.spec.listeners):
            raise ProtocolError(f"CONNECT for listener {index}, which does not exist")
        listener = self.spec.listeners[index]
        if isinstance(listener, TCP | Local | Inherited) != bool(message.fds):
            raise ProtocolError(f"CONNECT for listener {index} with {len(message.fds)} fds")
        if message.data and not message.fds:
            raise ProtocolError(f"CONNECT for listener {index} with bytes but no connection")
        conn: BufferedSocket | Event
        if isinstance(listener, Interval):
            conn = Event(interval=listener.name)
        elif isinstance(listener, Main):
            conn = Event(main=listener.name)
        else:
            conn = BufferedSocket(socket.socket(fileno=message.fds[0]))
            if message.data:
                conn.unread(message.data)  # what the master read while it held the connection
        self.listener, self.serving_since = index, time.monotonic()
        self.connection = conn if isinstance(conn, BufferedSocket) else None
        try:
            result = self.handlers.connect(conn)
        except Exception:
            traceback.print_exc()
            if isinstance(conn, BufferedSocket):
                conn.reset()
            return After.FAIL
        finally:
            _timeout.disarm()
            self.listener, self.connection = None, None
        if isinstance(conn, BufferedSocket) and not conn.closed:
            close_politely(conn)
        self.served += 1
        if result is False:
            return After.LEAVE
        if self.max_requests is not None and self.served >= self.max_requests:
            print(f"served {self.served} requests (max_requests); retiring", file=sys.stderr)
            return After.LEAVE
        return After.LEAVE if over_memory_limit(self.spec.options.memory_limit) else After.CONTINUE


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
