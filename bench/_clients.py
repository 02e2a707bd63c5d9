"""The benchmark's own HTTP clients, on raw sockets: uploads and fairness.

wrk measures the small-request workloads; these measure what wrk cannot:

* `upload`: one ``POST /upload`` of any size, framed by ``Content-Length``
  or chunked, streamed from one reused block (never the whole body in
  memory), timed from the first byte sent to the last byte of the answer;
* `multipart_upload`: the same as a ``multipart/form-data`` form with one
  file field, to ``POST /multipart``;
* `fairness`: N keep-alive clients that connect at once and each send one
  request, timing each answer; the connections stay open until every
  client is answered or the wait is over, as idle keep-alive clients would
  (a client whose answer says ``Connection: close`` closes at once, as
  HTTP clients do).

Every answer is checked: status 200, and for uploads the byte count the
server reports must equal the bytes sent, so a server that answers before
reading cannot look fast. Every wait is bounded by a deadline; every socket
is closed on the way out.
"""

from __future__ import annotations

import os
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

BLOCK = 256 * 1024
CHUNK = 64 * 1024
HOST = "127.0.0.1"


class ClientError(Exception):
    """A server answered wrongly, too late, or not at all."""


def payload_block() -> bytes:
    """A block of pseudo-random bytes without ``-`` (so no multipart delimiter appears)."""
    return os.urandom(BLOCK).replace(b"-", b"x")


def _read_answer(sock: socket.socket, deadline: float) -> tuple[int, bytes]:
    """Read one response (head and ``Content-Length`` body); return status and body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += _recv(sock, deadline)
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length is None:
        raise ClientError(f"answer without Content-Length: {head[:200]!r}")
    while len(body) < length:
        body += _recv(sock, deadline)
    return status, body[:length]


def _recv(sock: socket.socket, deadline: float) -> bytes:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ClientError("no complete answer before the deadline")
    sock.settimeout(left)
    try:
        data = sock.recv(65536)
    except TimeoutError:
        raise ClientError("no complete answer before the deadline") from None
    if not data:
        raise ClientError("the server closed the connection before answering")
    return data


def get(port: int, path: str = "/", timeout: float = 2.0) -> tuple[int, bytes]:
    """One ``GET`` on a fresh connection; return status and body."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                     "Connection: close\r\n\r\n".encode())
        return _read_answer(sock, deadline)


def _send_all(sock: socket.socket, data: bytes | memoryview, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise ClientError("could not send the body before the deadline")
    sock.settimeout(left)
    try:
        sock.sendall(data)
    except TimeoutError:
        raise ClientError("could not send the body before the deadline") from None


def _stream(sock: socket.socket, size: int, block: bytes, chunked: bool, deadline: float) -> None:
    """Send `size` body bytes made of `block`, raw or as chunks of `CHUNK` bytes."""
    view = memoryview(block)
    if chunked:
        whole = b"%x\r\n" % CHUNK + block[:CHUNK] + b"\r\n"
        for _ in range(size // CHUNK):
            _send_all(sock, whole, deadline)
        if size % CHUNK:
            _send_all(sock, b"%x\r\n" % (size % CHUNK) + block[:size % CHUNK] + b"\r\n",
                      deadline)
        _send_all(sock, b"0\r\n\r\n", deadline)
        return
    sent = 0
    while sent < size:
        count = min(len(block), size - sent)
        _send_all(sock, view[:count], deadline)
        sent += count


def _post(port: int, path: str, headers: str, send_body: Callable[[socket.socket, float], None],
          expected: int, timeout: float) -> float:
    """Send a POST head, call ``send_body(sock, deadline)``, check the count; return seconds."""
    deadline = time.monotonic() + timeout
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        start = time.perf_counter()
        _send_all(sock, f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{headers}\r\n".encode(),
                  deadline)
        send_body(sock, deadline)
        status, body = _read_answer(sock, deadline)
        seconds = time.perf_counter() - start
    if status != 200 or body.strip() != str(expected).encode():
        raise ClientError(f"expected 200 and {expected}, got {status} and {body[:100]!r}")
    return seconds


def upload(port: int, size: int, chunked: bool, block: bytes, timeout: float) -> float:
    """``POST /upload`` of `size` bytes; return the seconds it took.

    Raises:
        ClientError: The answer was wrong or late.
        OSError: The connection failed.
    """
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
    headers = f"Content-Type: application/octet-stream\r\n{framing}\r\n"
    return _post(port, "/upload", headers,
                 lambda sock, deadline: _stream(sock, size, block, chunked, deadline),
                 size, timeout)


def multipart_upload(port: int, size: int, block: bytes, timeout: float,
                     raw: bool = False) -> float:
    """``POST /multipart``: a form whose field ``file`` holds `size` bytes; return seconds.

    The answer must be `size`, or with `raw` (a server that counts the whole
    body without parsing it) the body's length.
    """
    boundary = "bench" + os.urandom(12).hex()
    opening = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
               f"filename=\"data.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    closing = f"\r\n--{boundary}--\r\n".encode()
    length = len(opening) + size + len(closing)
    headers = (f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
               f"Content-Length: {length}\r\n")

    def send_body(sock: socket.socket, deadline: float) -> None:
        _send_all(sock, opening, deadline)
        _stream(sock, size, block, False, deadline)
        _send_all(sock, closing, deadline)

    return _post(port, "/multipart", headers, send_body, length if raw else size, timeout)


@dataclass
class _Client:
    sock: socket.socket
    sent_at: float
    data: bytes = b""
    answered: float | None = None


def fairness(port: int, clients: int, wait: float) -> list[float | None]:
    """Open `clients` keep-alive connections at once, one ``GET`` each; time the answers.

    Returns:
        Seconds from each client's request to its complete answer, or `None`
        for a client not answered within `wait` seconds.
    """
    request = f"GET / HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode()
    opened: list[_Client] = []
    try:
        for _ in range(clients):
            sock = socket.create_connection((HOST, port), timeout=wait)
            opened.append(_Client(sock, 0.0))
        for client in opened:
            client.sent_at = time.perf_counter()
            client.sock.sendall(request)
            client.sock.setblocking(False)
        _collect(opened, time.monotonic() + wait)
        return [None if c.answered is None else c.answered - c.sent_at for c in opened]
    finally:
        for client in opened:
            client.sock.close()


def _collect(opened: list[_Client], deadline: float) -> None:
    """Read answers until every client has one or the deadline passes."""
    with selectors.DefaultSelector() as selector:
        for client in opened:
            selector.register(client.sock, selectors.EVENT_READ, client)
        waiting = len(opened)
        while waiting and (left := deadline - time.monotonic()) > 0:
            for key, _events in selector.select(left):
                client = key.data
                try:
                    data = client.sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                client.data += data
                complete = _complete(client.data)
                if complete or not data:
                    if complete:
                        client.answered = time.perf_counter()
                    selector.unregister(client.sock)
                    waiting -= 1
                    if _says_close(client.data):
                        client.sock.close()  # as an HTTP client does after Connection: close


def _says_close(data: bytes) -> bool:
    """Whether the answer's head carries ``Connection: close``."""
    head = data.partition(b"\r\n\r\n")[0].lower()
    return b"\r\nconnection: close" in head


def _complete(data: bytes) -> bool:
    """Whether `data` holds a whole ``200`` answer with its ``Content-Length`` body."""
    head, found, body = data.partition(b"\r\n\r\n")
    if not found:
        return False
    if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
        raise ClientError(f"fairness: unexpected answer {head[:100]!r}")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False
