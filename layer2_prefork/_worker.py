"""The worker process: prepare once, then serve one piece of work at a time.

A worker is forked by the master and never returns into the master's code:
`main()` ends with `os._exit`. Its life:

    prepare()                      raises -> exit 1 (the pool slows down)
    loop:
        send I                     "idle"
        wait for C or T            (EOF: the master is gone -> leave)
        C: connect(conn or event)  raises -> traceback, reset, exit 1
           returned False, or resident size above memory_limit -> leave
    leave: finish(), send B, exit 0

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
import resource
import selectors
import signal
import socket
import sys
import time
import traceback
from enum import Enum
from typing import Any, NoReturn

from layer1_sockets import BufferedSocket

from . import _timeout
from ._config import TCP, Event, Interval, Local, Main, PoolSpec
from ._errors import ProtocolError
from ._protocol import TO_WORKER, Decoder, Kind, Message, encode

CLOSE_TIMEOUT = 10.0
"""Seconds the worker spends flushing a connection the handler left open."""

inside = False
"""True in a worker process (`listen` refuses to run there)."""

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
    global inside
    inside = True
    code = 1
    try:
        for number in _RESET_SIGNALS:
            signal.signal(number, signal.SIG_DFL)
        code = Worker(spec, control).run()
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
        """Say idle, then block until the master's next message; None if the master is gone."""
        try:
            self.control.sendall(encode(Kind.IDLE))
        except OSError:
            return None
        while True:
            message = self.decoder.next_message()
            if message is not None:
                return message
            data, fds, flags, _ = socket.recv_fds(self.control, 4096, 4)
            self.decoder.feed(data, fds)
            if flags & socket.MSG_CTRUNC:
                raise ProtocolError("descriptors from the master were truncated")
            if not data:
                self.decoder.close()
                return None

    def _serve(self, message: Message) -> After:
        """Run `connect` for one CONNECT message."""
        index = message.listener
        if index >= len(self.spec.listeners):
            raise ProtocolError(f"CONNECT for listener {index}, which does not exist")
        listener = self.spec.listeners[index]
        if isinstance(listener, TCP | Local) != bool(message.fds):
            raise ProtocolError(f"CONNECT for listener {index} with {len(message.fds)} fds")
        conn: BufferedSocket | Event
        if isinstance(listener, Interval):
            conn = Event(interval=listener.name)
        elif isinstance(listener, Main):
            conn = Event(main=listener.name)
        else:
            conn = BufferedSocket(socket.socket(fileno=message.fds[0]))
        try:
            result = self.handlers.connect(conn)
        except Exception:
            traceback.print_exc()
            if isinstance(conn, BufferedSocket):
                conn.reset()
            return After.FAIL
        finally:
            _timeout.disarm()
        if isinstance(conn, BufferedSocket) and not conn.closed:
            close_politely(conn)
        if result is False:
            return After.LEAVE
        return After.LEAVE if over_memory_limit(self.spec.options.memory_limit) else After.CONTINUE


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
