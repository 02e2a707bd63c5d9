"""The hostile suite's clients on raw sockets: the attackers' plumbing and the normal client.

* `connect` opens one connection (TCP_NODELAY, a timeout on every call),
  from another loopback source address if asked;
* `read_reply` reads what the server sends until it closes, a bound of
  bytes or a deadline, and names the outcome: the status code of the first
  status line, ``closed`` (an end without any answer), ``reset`` or
  ``timed out`` (nothing said before the deadline);
* `Tally` counts outcomes and prints them as ``"431 x4, closed x1"``
  (with the slowest answer's time when it took a second or more);
* `NormalClient`: in a thread, a ``GET`` every 50 ms, each on a new
  connection with ``Connection: close``, each timed until the server
  closes; its figure is the worst latency seen (a request that got no
  status line, or a 5xx, also counts as failed).

Invariants: loopback only (`check_loopback` refuses anything else); every
wait is bounded; every socket is closed by whoever opened it, also on an
error; the normal client's thread is stopped and joined before its
figures are read.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from _hostile_procs import Target

STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")
NORMAL_INTERVAL = 0.05


def check_loopback(host: str) -> str:
    """Return `host` if it is a loopback address, else raise `ValueError`."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address (only loopback addresses)") from None
    if not address.is_loopback:
        raise ValueError(f"{host} is not a loopback address; the suite attacks only loopback")
    return host


def connect(target: Target, timeout: float = 5.0, source: str | None = None) -> socket.socket:
    """One connection to the target (from `source`, a loopback address, if given)."""
    sock = socket.create_connection((target.host, target.port), timeout=timeout,
                                    source_address=(source, 0) if source else None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


@dataclass
class Reply:
    """What came back on one connection."""

    outcome: str
    data: bytes = b""
    end: str = ""

    @property
    def statuses(self) -> list[int]:
        """The status of each response in the data, framed by Content-Length (else to the end)."""
        found, rest = [], self.data
        while (match := STATUS.match(rest)) and b"\r\n\r\n" in rest:
            found.append(int(match.group(1)))
            head, _, rest = rest.partition(b"\r\n\r\n")
            length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.IGNORECASE)
            rest = rest[int(length.group(1)):] if length else b""
        return found

    def header(self, name: str) -> str | None:
        """The first response's header `name`, if any."""
        head = self.data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        for line in head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    @property
    def body(self) -> bytes:
        return self.data.partition(b"\r\n\r\n")[2]


def read_reply(sock: socket.socket, timeout: float, limit: int = 64 << 20) -> Reply:
    """Read until the server closes, `limit` bytes, or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    end = "timed out"
    try:
        while len(data) < limit:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            chunk = sock.recv(1 << 20)
            if not chunk:
                end = "closed"
                break
            data += chunk
    except (TimeoutError, BlockingIOError):
        pass
    except ConnectionResetError:
        end = "reset"
    except OSError as error:
        end = type(error).__name__
    match = STATUS.match(data)
    return Reply(match.group(1).decode() if match else end, bytes(data), end)


def exchange(target: Target, data: bytes, timeout: float = 10.0,
             source: str | None = None) -> Reply:
    """Send `data` on a new connection and read the reply until the server closes."""
    try:
        with connect(target, timeout, source) as sock:
            sock.sendall(data)
            return read_reply(sock, timeout)
    except ConnectionResetError:
        return Reply("reset")
    except TimeoutError:
        return Reply("timed out")
    except OSError as error:
        return Reply(type(error).__name__)


@dataclass
class Tally:
    """How the server answered an attack's connections."""

    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    slowest: float = 0.0

    def took(self, seconds: float) -> None:
        """Note how long one answer took."""
        self.slowest = max(self.slowest, seconds)

    def add(self, outcome: str) -> None:
        self.counts[outcome] += 1

    def problem(self, text: str) -> None:
        """Note something the server should not have done (once per kind)."""
        if text not in self.problems:
            self.problems.append(text)

    def text(self) -> str:
        if not self.counts:
            return "nothing sent"
        text = ", ".join(f"{outcome} x{count}" for outcome, count in self.counts.most_common())
        return text + (f" (slowest {self.slowest:.1f} s)" if self.slowest >= 1.0 else "")


class NormalClient:
    """A client that asks for `path` every 50 ms beside an attack (a context manager).

    Attributes:
        latencies: Seconds per request, in order (a failed request counts
            the time until it failed).
        failures: What went wrong with requests that got no answer, or a 5xx one.
    """

    def __init__(self, target: Target, path: str = "/", timeout: float = 5.0) -> None:
        self.target = target
        self.request = (f"GET {path} HTTP/1.1\r\nHost: normal\r\n"
                        "Connection: close\r\n\r\n").encode()
        self.timeout = timeout
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="normal", daemon=True)

    def __enter__(self) -> NormalClient:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def once(self) -> float:
        """One request; return its latency (record it and any failure)."""
        start = time.monotonic()
        reply = exchange(self.target, self.request, self.timeout)
        elapsed = time.monotonic() - start
        self.latencies.append(elapsed)
        if not reply.outcome.isdigit() or reply.outcome >= "500":
            self.failures.append(reply.outcome)
        return elapsed

    def _run(self) -> None:
        while True:
            self.once()
            if self._stop.wait(NORMAL_INTERVAL):
                return

    @property
    def worst(self) -> float:
        return max(self.latencies, default=0.0)
