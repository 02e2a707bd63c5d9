"""Forking a worker, and the master's end of a worker's two socket pairs.

`fork_worker()` creates the worker's control pair and stderr pair,
freezes the garbage collector's view of the loaded application
(`gc.freeze()`: the worker's collections then never write to the
inherited objects, so their pages stay shared; the master unfreezes right
after the fork, so its own garbage stays collectable), flushes the standard streams (or their
buffered bytes would be written twice), and forks. In the child it closes
every descriptor that belongs to the master, makes the stderr pair fd 2 and
hands over to `layer2_prefork.worker._loop.main()`, which never returns.

`WorkerProcess` is the master's handle on a worker: its PID and the
master's (non-blocking) ends of both pairs, with the decoder and line
splitter that turn what arrives into messages and log lines.
"""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from .._config import PoolSpec
from .._errors import ProtocolError
from .._logging import LineSplitter
from .._protocol import TO_MASTER, Decoder, Kind, Message, encode
from ..worker import _loop as _worker

READ_SIZE = 65536


@dataclass(slots=True)
class WorkerProcess:
    """The master's handle on one worker process."""

    pool: int
    pid: int
    control: socket.socket
    stderr: socket.socket
    slot: int = 0
    """The worker's slot of the scoreboard."""
    decoder: Decoder = field(default_factory=lambda: Decoder(TO_MASTER))
    lines: LineSplitter = field(default_factory=LineSplitter)
    control_open: bool = True
    stderr_open: bool = True

    def send(self, kind: Kind, payload: bytes = b"", fd: int | None = None) -> None:
        """Send one message, with a descriptor (`SCM_RIGHTS`) if `fd` is given.

        Raises:
            OSError: If the worker is gone or does not read (its buffer is full).
        """
        fds = [] if fd is None else [fd]
        frame = encode(kind, payload, len(fds))
        sent = socket.send_fds(self.control, [frame], fds) if fds else self.control.send(frame)
        if sent != len(frame):
            raise BlockingIOError("the worker's control socket is full")

    def receive(self) -> tuple[list[Message], bool]:
        """Read what is available on the control socket; return (messages, end of stream).

        Raises:
            ProtocolError: If the worker wrote something the protocol does not allow.
        """
        try:
            data, fds, flags, _ = socket.recv_fds(self.control, READ_SIZE, 4)
        except BlockingIOError:
            return [], False
        except ConnectionResetError:
            return [], True
        self.decoder.feed(data, fds)
        if flags & socket.MSG_CTRUNC:
            raise ProtocolError("too many descriptors")
        messages = []
        while (message := self.decoder.next_message()) is not None:
            messages.append(message)
        return messages, not data

    def read_stderr(self) -> tuple[list[str], bool]:
        """Read what is available of the worker's stderr; return (lines, more may follow now).

        At the end of the stream the last unterminated line is returned too
        and `stderr_open` turns false.
        """
        try:
            data = self.stderr.recv(READ_SIZE)
        except BlockingIOError:
            return [], False
        except ConnectionResetError:
            data = b""
        if not data:
            self.stderr_open = False
            return self.lines.flush(), False
        return self.lines.feed(data), True

    def close(self) -> None:
        """Close the master's ends of both pairs and any descriptor still queued."""
        self.decoder.close()
        self.control.close()
        self.stderr.close()
        self.control_open = self.stderr_open = False


def fork_worker(spec: PoolSpec, close_master_fds: Callable[[], None],
                context: _worker.Context, slot: int) -> WorkerProcess:
    """Fork one worker for the pool `spec`.

    Args:
        spec: The pool the worker serves.
        close_master_fds: Called in the child first: closes the master's
            selector, signal pipe, held connections, the other pools'
            listeners and the other workers' sockets.
        context: What the worker inherits of its pool (queue, listeners, slot).
        slot: The worker's slot of the scoreboard.

    Returns:
        The master's handle on the new worker.

    Raises:
        OSError: If a socket pair or the fork itself failed (nothing is left open).
    """
    pairs: list[socket.socket] = []
    try:
        pairs.extend(socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM))
        pairs.extend(socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM))
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        gc.freeze()
        pid = os.fork()
    except BaseException:
        gc.unfreeze()
        for sock in pairs:
            sock.close()
        raise
    control, worker_control, stderr, worker_stderr = pairs
    if pid == 0:
        try:
            close_master_fds()
            control.close()
            stderr.close()
            os.dup2(worker_stderr.fileno(), 2)
            worker_stderr.close()
            _worker.main(spec, worker_control, context)
        finally:
            os._exit(1)
    gc.unfreeze()  # the worker keeps its frozen copy; the master's garbage stays collectable
    worker_control.close()
    worker_stderr.close()
    control.setblocking(False)
    stderr.setblocking(False)
    return WorkerProcess(spec.index, pid, control, stderr, slot)
