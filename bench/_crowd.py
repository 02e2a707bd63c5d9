"""Crowds of idle or slow connections, and a normal client served beside them.

A server whose workers each serve one connection at a time can be pinned
by clients that do nothing: a keep-alive client that stays idle after its
answer, or a slowloris that sends its request head a byte at a time. These
clients measure what such a crowd does to everybody else:

* `Crowd`: up to N connections opened at once (non-blocking connects,
  bounded by a deadline); each sends its first bytes as soon as it is
  connected. `Crowd.await_answers` reads the answers that come within a
  wait (an idle keep-alive client); `Crowd.trickling` sends, in a
  background thread, one more header byte on each connection every few
  tenths of a second, never the blank line that ends the head;
* `normal_requests`: M ``GET`` requests one after the other, each on a
  fresh connection with ``Connection: close``, each timed and bounded.

Invariants: loopback only; the number of connections, every wait and the
trickle's lifetime are bounded; every socket is closed on the way out, also
on an error; a connection refused, reset or closed by the server is
counted, never raised. The trickle thread is the only user of the crowd's
sockets while it runs, and it is stopped and joined before they close.
"""

from __future__ import annotations

import errno
import random
import resource
import selectors
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType

from _clients import HOST, ClientError, get

SPARE_DESCRIPTORS = 64
SLOW_HEADER = b"X-Slow: y\r\n"
"""The bytes a slow client trickles, over and over: header lines, never an empty one."""


def descriptor_room(wanted: int) -> int:
    """Raise our soft descriptor limit towards `wanted` plus spares; return how many fit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + SPARE_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(0, min(wanted, soft - SPARE_DESCRIPTORS))


@dataclass(eq=False)
class _Conn:
    sock: socket.socket
    connected: bool = False
    data: bytes = b""
    trickled: int = 0
    due: float = 0.0


@dataclass
class Counts:
    """What happened to a crowd's connections.

    Attributes:
        asked: Connections asked for.
        opened: Connected (and their first bytes sent).
        answered: Got a complete answer (of any status; ``not_ok``: not 200).
        refused: Refused, or reset before their first bytes went out.
        unconnected: Still connecting at the deadline, or no descriptor left.
        closed_by_server: Closed or reset by the server after connecting.
        not_ok: Answered with a status other than 200.
    """

    asked: int = 0
    opened: int = 0
    answered: int = 0
    refused: int = 0
    unconnected: int = 0
    closed_by_server: int = 0
    not_ok: int = 0

    def extra(self, prefix: str) -> dict[str, float]:
        """The counts as a measurement's extras, named ``prefix_count``."""
        return {f"{prefix}_{name}": float(value) for name, value in vars(self).items()}


@dataclass
class Crowd:
    """Connections held open towards one server (a context manager that closes them).

    Args:
        port: The server's port on 127.0.0.1.
        count: How many connections to open.
        first: What each connection sends as soon as it is connected.
    """

    port: int
    count: int
    first: bytes
    counts: Counts = field(default_factory=Counts)
    conns: list[_Conn] = field(default_factory=list)

    def __enter__(self) -> Crowd:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        for conn in self.conns:
            conn.sock.close()
        self.conns = []

    def open(self, within: float) -> None:
        """Connect up to `count` times at once; wait at most `within` seconds for the connects.

        A connection refused or failed is counted in ``refused``, one still
        connecting at the deadline in ``unconnected`` (and closed).
        """
        room = descriptor_room(self.count)
        self.counts.asked = self.count
        self.counts.unconnected += self.count - room
        for _ in range(room):
            self._start_connect()
        deadline = time.monotonic() + within
        with selectors.DefaultSelector() as selector:
            for conn in self.conns:
                selector.register(conn.sock, selectors.EVENT_WRITE, conn)
            waiting = len(self.conns)
            while waiting and (left := deadline - time.monotonic()) > 0:
                for key, _events in selector.select(left):
                    selector.unregister(key.fileobj)
                    waiting -= 1
                    self._connected(key.data)
        for conn in [c for c in self.conns if not c.connected]:
            self.counts.unconnected += 1
            self._drop(conn)
        self.counts.opened = len(self.conns)

    def _start_connect(self) -> None:
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError:
            self.counts.unconnected += 1
            return
        sock.setblocking(False)
        code = sock.connect_ex((HOST, self.port))
        if code in (0, errno.EINPROGRESS):
            self.conns.append(_Conn(sock))
        else:
            self.counts.refused += 1
            sock.close()

    def _connected(self, conn: _Conn) -> None:
        """A connect finished: count a failure, or send the first bytes."""
        code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code == 0:
            try:
                conn.sock.sendall(self.first)
                conn.connected = True
                return
            except OSError:
                pass
        self.counts.refused += 1
        self._drop(conn)

    def _drop(self, conn: _Conn) -> None:
        conn.sock.close()
        if conn in self.conns:
            self.conns.remove(conn)

    def await_answers(self, within: float) -> None:
        """Read answers for at most `within` seconds, until every connection has one or closed."""
        deadline = time.monotonic() + within
        with selectors.DefaultSelector() as selector:
            for conn in self.conns:
                selector.register(conn.sock, selectors.EVENT_READ, conn)
            waiting = len(self.conns)
            while waiting and (left := deadline - time.monotonic()) > 0:
                for key, _events in selector.select(left):
                    state = self._readable(key.data)
                    if state is not None:
                        selector.unregister(key.fileobj)
                        waiting -= 1
                    if state is False:
                        self._drop(key.data)

    def _readable(self, conn: _Conn) -> bool | None:
        """Read what came; True: answered, False: closed by the server, None: not yet.

        Counts the answer or the close; the caller drops a closed connection.
        """
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return None
        except OSError:
            data = b""
        if not data:
            self.counts.closed_by_server += 1
            return False
        conn.data += data
        status = _answer_status(conn.data)
        if status is None:
            return None
        self.counts.answered += 1
        self.counts.not_ok += status != 200
        conn.data = b""
        return True

    @contextmanager
    def trickling(self, gaps: tuple[float, float], seed: int = 9) -> Iterator[None]:
        """Within the block, each connection sends one more header byte every `gaps` seconds."""
        stop = threading.Event()
        worker = threading.Thread(target=self._trickle, args=(stop, gaps, random.Random(seed)),
                                  name="bench-trickle", daemon=True)
        worker.start()
        try:
            yield
        finally:
            stop.set()
            worker.join(10.0)

    def _trickle(self, stop: threading.Event, gaps: tuple[float, float],
                 chance: random.Random) -> None:
        now = time.monotonic()
        for conn in self.conns:
            conn.due = now + chance.uniform(*gaps)
        with selectors.DefaultSelector() as selector:
            for conn in self.conns:
                selector.register(conn.sock, selectors.EVENT_READ, conn)
            while not stop.is_set() and self.conns:
                due = min(conn.due for conn in self.conns)
                for key, _events in selector.select(max(0.0, min(due - time.monotonic(), 0.05))):
                    if self._readable(key.data) is not None:  # the server gave up on the head
                        selector.unregister(key.fileobj)
                        self._drop(key.data)
                now = time.monotonic()
                for conn in [c for c in self.conns if c.due <= now]:
                    if not self._send_byte(conn):
                        selector.unregister(conn.sock)
                        self._drop(conn)
                    conn.due = now + chance.uniform(*gaps)

    def _send_byte(self, conn: _Conn) -> bool:
        index = conn.trickled % len(SLOW_HEADER)
        try:
            conn.trickled += conn.sock.send(SLOW_HEADER[index:index + 1])
        except BlockingIOError:
            pass
        except OSError:
            self.counts.closed_by_server += 1
            return False
        return True


def _answer_status(data: bytes) -> int | None:
    """The status of the complete answer at the start of `data`, or None if it is not whole."""
    head, found, body = data.partition(b"\r\n\r\n")
    if not found:
        return None
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            try:
                return status if len(body) >= int(value) else None
            except ValueError:
                return status
    return status


@dataclass
class Normal:
    """The normal client's requests: seconds each took (None: not answered with 200 in time)."""

    times: list[float | None] = field(default_factory=list)
    timeouts: int = 0
    errors: int = 0

    def within(self, seconds: float) -> int:
        """How many were answered within `seconds`."""
        return sum(1 for t in self.times if t is not None and t <= seconds)


def normal_requests(port: int, count: int, timeout: float) -> Normal:
    """`count` ``GET /`` requests one after the other, each on a fresh connection, each bounded.

    A refused, reset or closed connection, a wrong answer or a timeout is
    counted (in ``errors`` or ``timeouts``) and the next request goes on.
    """
    normal = Normal()
    for _ in range(count):
        start = time.perf_counter()
        try:
            status, _body = get(port, "/", timeout)
        except (TimeoutError, ClientError, OSError, ValueError, IndexError) as error:
            late = isinstance(error, TimeoutError) or "deadline" in str(error)
            normal.timeouts += late
            normal.errors += not late
            normal.times.append(None)
            continue
        if status == 200:
            normal.times.append(time.perf_counter() - start)
        else:
            normal.errors += 1
            normal.times.append(None)
    return normal
