"""Faults: a graceful stop (SIGTERM) under steady load answers every request it accepted.

Eight clients keep three workers busy, each in a loop: connect, ask for
20 ms of work (``work 0.02`` in ``tests/hostile_apps/fault_server.py``),
read the answer, connect again. In the middle of it the test sends SIGTERM.
From then on a new connection is refused (the listener is closed), but
every connection that was accepted, being served or still waiting in the
backlog, gets its full answer: no connection that the kernel accepted ends
in a reset or an empty read. The master exits 0 once the work is done.
(Held and queued connections at the moment of the stop, and the deadline
after which busy workers are killed: ``test_stop.py``.)
"""

from __future__ import annotations

import errno
import selectors
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from prefork_support import serve, stats

FAULT_SERVER = Path(__file__).resolve().parent.parent / "hostile_apps" / "fault_server.py"
CLIENTS = 8
BEFORE_STOP = 40  # answers before the SIGTERM
TIMEOUT = 20.0


@dataclass
class Load:
    """A counted, steady load from several clients, driven by one selector."""

    port: int
    selector: selectors.BaseSelector = field(default_factory=selectors.DefaultSelector)
    connected: int = 0
    answered: int = 0
    refused: int = 0
    broken: list[str] = field(default_factory=list)
    stopping: bool = False
    clients: int = 0

    def start(self) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", self.port))
        self.selector.register(sock, selectors.EVENT_WRITE, bytearray())
        self.clients += 1

    def step(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            sock: socket.socket = key.fileobj  # type: ignore[assignment]
            if key.events == selectors.EVENT_WRITE:
                self._connected(sock)
            else:
                self._readable(sock, key.data)

    def _connected(self, sock: socket.socket) -> None:
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            self._end(sock)
            if error == errno.ECONNREFUSED and self.stopping:
                self.refused += 1
            else:
                self.broken.append(f"connect: {errno.errorcode[error]}")
            return
        self.connected += 1
        sock.send(b"work 0.02\n")
        self.selector.modify(sock, selectors.EVENT_READ, bytearray())

    def _readable(self, sock: socket.socket, received: bytearray) -> None:
        try:
            chunk = sock.recv(100)
        except ConnectionResetError:
            chunk = b""
            received += b"(reset)"
        received += chunk
        if received.endswith(b"\n"):
            assert received.startswith(b"worked "), received
            self.answered += 1
        elif chunk:
            return
        else:
            self.broken.append(f"accepted, then ended with {bytes(received)!r}")
        self._end(sock)
        if not self.stopping or self.refused == 0:
            self.start()  # keep the load steady until the server refuses

    def _end(self, sock: socket.socket) -> None:
        self.selector.unregister(sock)
        sock.close()
        self.clients -= 1


def test_a_graceful_stop_under_steady_load_answers_every_accepted_request() -> None:
    with serve("pre_fork=3", "min_fork=3", "max_fork=3", "fork_delay=0.01",
               script=FAULT_SERVER) as server:
        server.wait(stats(total=3, idle=3))
        load = Load(server.port)
        for _ in range(CLIENTS):
            load.start()
        deadline = time.monotonic() + TIMEOUT
        while load.answered < BEFORE_STOP and time.monotonic() < deadline:
            load.step(1.0)
        assert load.answered >= BEFORE_STOP and not load.broken, load
        mark = server.mark()
        server.program.proc.send_signal(signal.SIGTERM)
        load.stopping = True
        while load.clients and time.monotonic() < deadline:
            load.step(1.0)
        assert load.clients == 0, "the load did not end"
        assert not load.broken, load.broken
        assert load.refused > 0  # the listener did close
        assert load.answered == load.connected  # every accepted connection was answered
        assert server.program.proc.wait(TIMEOUT) == 0  # one SIGTERM: no second one races the exit
        server.wait(rb"graceful stop \(SIGTERM\)", mark)
        server.wait(rb"INFO stopped$", mark)
        load.selector.close()


def test_repeated_sigterms_during_a_graceful_stop_still_exit_0() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01",
               script=FAULT_SERVER) as server:
        server.wait(stats(total=1, idle=1))
        proc = server.program.proc
        deadline = time.monotonic() + TIMEOUT
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                proc.send_signal(signal.SIGTERM)  # an impatient supervisor, again and again
            except ProcessLookupError:
                break
            try:
                proc.wait(0.001)
            except subprocess.TimeoutExpired:
                pass
        assert proc.wait(TIMEOUT) == 0
