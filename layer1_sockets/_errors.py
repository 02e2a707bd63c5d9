"""Errors that only this package can name.

Everything the operating system reports passes through as the `OSError`
subclass the kernel named (`ConnectionResetError`, `BrokenPipeError`, ...),
and TLS failures as the `ssl.SSLError` the `ssl` module raised. What is left
are mistakes in the use of a socket object, and those are `ValueError`s, as
they are for Python's own file objects. This module names them so that a
caller who wants to can tell them apart::

    ValueError
    └── SocketStateError        the call does not fit the socket's state
        ├── SocketClosedError   the socket or listener was closed (or reset)
        └── SocketFinishedError writing after finish()

Invariant: every error this package raises on its own behalf is one of these;
nothing here wraps or replaces an operating-system error.
"""

from __future__ import annotations

__all__ = ["SocketClosedError", "SocketFinishedError", "SocketStateError"]


class SocketStateError(ValueError):
    """The call does not fit the socket's current state.

    Examples are starting TLS twice or using a closed socket. It is a
    `ValueError`, like reading from a closed Python file.
    """


class SocketClosedError(SocketStateError):
    """The socket or listener was already closed (or reset).

    Examples:
        >>> import socket
        >>> from layer1_sockets import BufferedSocket
        >>> left, right = socket.socketpair()
        >>> sock = BufferedSocket(left)
        >>> sock.close()
        >>> sock.read_nb()
        Traceback (most recent call last):
        ...
        layer1_sockets._errors.SocketClosedError: I/O on a closed socket
        >>> right.close()
    """


class SocketFinishedError(SocketStateError):
    """Writing after `finish()`: the write direction has been shut down.

    Moonbridge: writing after ``socket:finish()`` is an error there too.
    """
