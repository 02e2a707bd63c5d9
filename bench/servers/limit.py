"""The limit server: the practical upper bound for an HTTP server in Python here.

A pre-forked stdlib loop that does the least an HTTP/1.1 server can do: each
worker waits on its connections and the shared listener with ``epoll``,
reads whatever arrives, and for every ``\\r\\n\\r\\n`` it finds answers one
canned ``Hello, World!`` response. No parsing, no validation, no body
handling, no timeouts. Every other server in the benchmark does at least
this much work per request, so its speed, measured in the same run, is the
yardstick for the others' (``bench/run.py`` reports ratios to it).

It closes a connection after answering when the request said
``Connection: close`` (checked as raw bytes, in the two spellings clients
use); otherwise it keeps it open, like any HTTP/1.1 server.

Usage::

    python bench/servers/limit.py --listen 127.0.0.1:8080 --workers 2

Invariants: the master only forks and waits; it exits on SIGTERM or SIGINT
after killing and reaping its workers by PID. The listener is registered
with ``EPOLLEXCLUSIVE`` so one connection wakes one worker.
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import socket
import sys

BODY = b"Hello, World!"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
KEEP = HEAD + b"\r\n" + BODY
CLOSE = HEAD + b"Connection: close\r\n\r\n" + BODY
END = b"\r\n\r\n"


def asks_close(heads: bytes) -> bool:
    """Whether the request heads carry ``Connection: close`` (raw byte check)."""
    return b"Connection: close" in heads or b"connection: close" in heads


def answer(conn: socket.socket, pending: bytes) -> tuple[bytes, bool]:
    """Answer every complete head in `pending`; return the rest and whether to close."""
    count = pending.count(END)
    if not count:
        return pending, False
    cut = pending.rfind(END) + 4
    heads, rest = pending[:cut], pending[cut:]
    close = asks_close(heads)
    reply = KEEP * (count - 1) + (CLOSE if close else KEEP)
    sent = conn.send(reply)
    if sent < len(reply):  # a rare full socket buffer: finish blocking
        conn.setblocking(True)
        conn.sendall(reply[sent:])
        conn.setblocking(False)
    return rest, close


def serve(listener: socket.socket) -> None:
    """A worker's loop: accept, read, answer, forever."""
    poller = select.epoll()
    listen_fd = listener.fileno()
    poller.register(listen_fd, select.EPOLLIN | select.EPOLLEXCLUSIVE)
    conns: dict[int, tuple[socket.socket, bytes]] = {}
    while True:
        for fd, _events in poller.poll():
            if fd == listen_fd:
                accept_all(listener, poller, conns)
                continue
            conn, pending = conns[fd]
            try:
                data = conn.recv(65536)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            close = not data
            if data:
                try:
                    pending, close = answer(conn, pending + data)
                except OSError:
                    close = True
            if close:
                poller.unregister(fd)
                del conns[fd]
                conn.close()
            else:
                conns[fd] = (conn, pending)


def accept_all(listener: socket.socket, poller: select.epoll,
               conns: dict[int, tuple[socket.socket, bytes]]) -> None:
    """Accept every pending connection (another worker may take some first)."""
    while True:
        try:
            conn, _address = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns[conn.fileno()] = (conn, b"")
        poller.register(conn.fileno(), select.EPOLLIN)


def listen(address: str) -> socket.socket:
    """Bind ``HOST:PORT`` (port 0: any free port) and listen."""
    host, _, port = address.rpartition(":")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, int(port)))
    listener.listen(1024)
    listener.setblocking(False)
    return listener


def prefork(listener: socket.socket, workers: int, work: object) -> int:
    """Fork `workers` children running ``work(listener)``; wait; kill them on a signal."""
    assert callable(work)
    pids: list[int] = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            try:
                work(listener)
            finally:
                os._exit(1)
        pids.append(pid)

    def stop(signum: int, _frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while pids:
            pid, _status = os.wait()
            if pid in pids:
                pids.remove(pid)
        return 1  # every worker died on its own
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def main(work: object = serve) -> int:
    """Parse ``--listen`` and ``--workers``, bind, announce the port, serve."""
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    cli.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (port 0: any)")
    cli.add_argument("--workers", type=int, default=2, help="worker processes (2)")
    arguments = cli.parse_args()
    listener = listen(arguments.listen)
    print(f"listening on port {listener.getsockname()[1]}", flush=True)
    return prefork(listener, arguments.workers, work)


if __name__ == "__main__":
    sys.exit(main())
