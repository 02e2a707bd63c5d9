"""Hostile clients that hold a worker by being slow or by never letting go, and a watch on them.

The crowds of `_crowd` are many connections that do nothing; these are a
few connections that each try to keep one worker busy, the way a real
client on a bad network (or a small attack) does:

* ``close``: sends a whole ``GET`` with ``Connection: close`` and then
  neither reads the answer nor closes (a server that waits for the client
  to close, or to take the answer, keeps a worker on it);
* ``malformed``: the same with a head the server must refuse (a header
  line without a colon);
* ``reader``: asks for a 16 MiB answer and reads it at `Attack` ``read_rate``
  bytes a second (a few KiB/s) through a small receive buffer, so the
  server's send buffer fills at once and the rest must wait for the client;
* ``uploader``: sends a ``POST /upload`` head announcing a 1 MiB body, then
  the body at ``upload_rate`` bytes a second (100 bytes/s, below any sane
  minimum rate).

`Attack` opens them (each with a blocking connect bounded in time), and a
background thread reads and sends on schedule and watches when the server
lets go of each connection. "Let go" is read from the kernel's table of
TCP sockets (``/proc/net/tcp``), not from the client's side, where a
close can hide behind unread data: the server's end of the connection is
released when it is gone from the table, or left with no process holding
it (inode 0) in a closing state (FIN-WAIT, TIME-WAIT, ...). A connection
still waiting in the listen backlog is ESTABLISHED with inode 0 too, and
counts as held. A server that only shuts down its sending side but keeps
the socket open still holds it.

Invariants: loopback only; a fixed number of connections; the thread's
lifetime, every connect and every wait are bounded; the thread is the only
user of the sockets while it runs and is stopped and joined before they
close; every socket is closed on the way out, also on an error.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from _clients import HOST

TCP_TABLE = Path("/proc/net/tcp")
HELD_WITHOUT_INODE = {"01", "03"}
"""ESTABLISHED and SYN-RECV: a connection in the listen backlog, not yet accepted."""
TICK = 0.025
"""Seconds between two rounds of the watch thread (reads, sends, the TCP table)."""
READER_BUFFER = 4096
UPLOAD_LENGTH = 1 << 20


def request(port: int, kind: str, path: str = "/big") -> bytes:
    """The first bytes an attacker of `kind` sends."""
    host = f"Host: {HOST}:{port}\r\n"
    if kind == "close":
        return f"GET / HTTP/1.1\r\n{host}Connection: close\r\n\r\n".encode()
    if kind == "malformed":
        return f"GET / HTTP/1.1\r\n{host}this line is no header\r\n\r\n".encode()
    if kind == "reader":
        return f"GET {path} HTTP/1.1\r\n{host}\r\n".encode()
    if kind == "uploader":
        return (f"POST /upload HTTP/1.1\r\n{host}Content-Type: application/octet-stream\r\n"
                f"Content-Length: {UPLOAD_LENGTH}\r\n\r\n").encode()
    raise ValueError(f"unknown attacker kind {kind!r}")


def _hex_port(address: str) -> int:
    return int(address.rpartition(":")[2], 16)


def held_ports(server_port: int, table: Path = TCP_TABLE) -> set[int] | None:
    """The client ports of connections whose server end a process still holds; None: no table."""
    try:
        lines = table.read_text().splitlines()[1:]
    except OSError:
        return None
    held = set()
    for line in lines:
        fields = line.split()
        if len(fields) < 10 or _hex_port(fields[1]) != server_port:
            continue
        remote, state, inode = _hex_port(fields[2]), fields[3], fields[9]
        if remote and (inode != "0" or state in HELD_WITHOUT_INODE):
            held.add(remote)
    return held


@dataclass(eq=False)
class Attacker:
    """One hostile connection and what happened to it (times in seconds after its request)."""

    kind: str
    sock: socket.socket
    local_port: int
    started: float
    released: float | None = None
    received: int = 0
    sent: int = 0
    due: float = 0.0
    eof: bool = False
    failed: str = ""


@dataclass
class Group:
    """What happened to one kind of attacker."""

    asked: int = 0
    opened: int = 0
    refused: int = 0
    released: list[float | None] = field(default_factory=list)
    received: int = 0
    sent: int = 0

    def extra(self, prefix: str) -> dict[str, float]:
        """The counts and release times as a measurement's extras, named ``prefix_name``."""
        done = sorted(t for t in self.released if t is not None)
        figures = {"asked": self.asked, "opened": self.opened, "refused": self.refused,
                   "released": len(done), "held": len(self.released) - len(done),
                   "kib_received": self.received / 1024, "bytes_sent": self.sent}
        if done:
            figures |= {"release_min_s": done[0], "release_p50_s": done[(len(done) - 1) // 2],
                        "release_max_s": done[-1]}
        return {f"{prefix}_{name}": float(value) for name, value in figures.items()}


@dataclass
class Attack:
    """Hostile connections towards one server (a context manager that closes them).

    Args:
        port: The server's port on 127.0.0.1.
        read_rate: Bytes a second each ``reader`` takes.
        upload_rate: Bytes a second each ``uploader`` sends.
        connect_timeout: The longest wait for one connect.
    """

    port: int
    read_rate: float = 4096.0
    upload_rate: float = 100.0
    connect_timeout: float = 2.0
    attackers: list[Attacker] = field(default_factory=list)
    groups: dict[str, Group] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    watching: bool = True

    def __enter__(self) -> Attack:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def open(self, kind: str, count: int, path: str = "/big") -> None:
        """Connect `count` attackers of `kind`; each sends its request at once."""
        group = self.groups.setdefault(kind, Group())
        first = request(self.port, kind, path)
        for _ in range(count):
            group.asked += 1
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                if kind == "reader":  # before connecting, so the window stays small
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, READER_BUFFER)
                sock.settimeout(self.connect_timeout)
                sock.connect((HOST, self.port))
                sock.sendall(first)
                sock.setblocking(False)
            except OSError:
                group.refused += 1
                sock.close()
                continue
            now = time.monotonic()
            self.attackers.append(Attacker(kind, sock, sock.getsockname()[1], now, due=now))
            group.opened += 1

    def start(self) -> None:
        """Start the thread that reads, sends and watches (until `close`)."""
        self._thread = threading.Thread(target=self._run, name="bench-attack", daemon=True)
        self._thread.start()

    def held(self) -> int:
        """How many connections the server still holds."""
        with self._lock:
            return sum(a.released is None for a in self.attackers)

    def wait_released(self, until: float) -> None:
        """Return when the server let go of every connection, or at monotonic time `until`."""
        while self.held() and self.watching and time.monotonic() < until:
            self._stop.wait(TICK)

    def close(self) -> None:
        """Stop the thread, note what happened, close every socket."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10.0)
            self._thread = None
        for attacker in self.attackers:
            group = self.groups[attacker.kind]
            group.released.append(attacker.released)
            group.received += attacker.received
            group.sent += attacker.sent
            attacker.sock.close()
        self.attackers = []

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for attacker in self.attackers:
                if attacker.kind == "reader" and not attacker.eof and attacker.due <= now:
                    self._read(attacker, now)
                elif attacker.kind == "uploader" and not attacker.failed and attacker.due <= now:
                    self._send(attacker, now)
            self._watch()
            self._stop.wait(TICK)

    def _read(self, attacker: Attacker, now: float) -> None:
        size = max(1, int(self.read_rate * TICK * 4))
        attacker.due = now + TICK * 4
        try:
            data = attacker.sock.recv(size)
        except BlockingIOError:
            return
        except OSError as error:
            attacker.eof, attacker.failed = True, str(error)
            return
        attacker.received += len(data)
        attacker.eof = not data

    def _send(self, attacker: Attacker, now: float) -> None:
        size = min(max(1, int(self.upload_rate * TICK * 8)), UPLOAD_LENGTH - attacker.sent)
        attacker.due = now + TICK * 8
        if size <= 0:
            return
        try:
            attacker.sent += attacker.sock.send(b"x" * size)
        except BlockingIOError:
            pass
        except OSError as error:
            attacker.failed = str(error)

    def _watch(self) -> None:
        held = held_ports(self.port)
        if held is None:
            self.watching = False
            return
        now = time.monotonic()
        with self._lock:
            for attacker in self.attackers:
                if attacker.released is None and attacker.local_port not in held:
                    attacker.released = now - attacker.started
