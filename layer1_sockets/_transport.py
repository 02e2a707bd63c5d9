"""The plain transport: the kernel socket seen through two non-blocking calls.

A buffered socket talks to its peer through a *transport*. This module has
the plain one, which is the socket itself; `_tls` has the TLS one, which
encrypts on the way out and decrypts on the way in. Both offer the same
small interface, so the buffering code above never asks which it has:

* ``recv(size)`` returns bytes, `b""` at end of input, or `None` when
  nothing is available now;
* ``send(view)`` returns how many bytes of `view` it took (0: would block);
* ``backlog`` is the number of bytes the transport itself still holds
  (always 0 here) and ``push()`` tries to send them, `True` once none are left;
* ``pending()`` is the number of input bytes already inside the transport;
* ``short_recv_drains`` says whether a receive that returns fewer bytes
  than asked for proves the kernel had no more (true here; TLS returns
  what one record decrypts to, so not there).

Invariant: no call blocks; "would block" is a return value, every other
failure the `OSError` the kernel reported.
"""

from __future__ import annotations

import socket

__all__ = ["PlainTransport", "raw_recv", "raw_send"]

_SEND_FLAGS = getattr(socket, "MSG_NOSIGNAL", 0)  # EPIPE as an error, never SIGPIPE


def raw_recv(sock: socket.socket, size: int) -> bytes | None:
    """Receive up to `size` bytes; `None` if none are available now."""
    try:
        return sock.recv(size)
    except (BlockingIOError, InterruptedError):
        return None


def raw_send(sock: socket.socket, view: memoryview) -> int:
    """Send what the kernel takes of `view` now; 0 if it takes nothing."""
    try:
        return sock.send(view, _SEND_FLAGS)
    except (BlockingIOError, InterruptedError):
        return 0


class PlainTransport:
    """The kernel socket itself, without encryption."""

    __slots__ = ("_sock",)

    backlog = 0
    short_recv_drains = True

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def recv(self, size: int) -> bytes | None:
        """Receive up to `size` bytes (`b""`: end of input, `None`: nothing yet)."""
        return raw_recv(self._sock, size)

    def send(self, view: memoryview) -> int:
        """Send from `view`; return how many bytes the kernel took."""
        return raw_send(self._sock, view)

    def push(self) -> bool:
        """Nothing is ever held back here."""
        return True

    def pending(self) -> int:
        """No input is ever held back here."""
        return 0
