"""Listening sockets: `tcplisten`, `locallisten` and the `Listener` they return.

A `Listener` owns a bound, listening socket in non-blocking mode.
`accept_nb` asks the kernel once and returns `None` when no connection is
waiting, which is what pre-forked workers sharing one listener need: when
several wake up for one connection, all but one simply get `None`.
`accept` waits (with `selectors`) and asks again.

Unix socket files: `locallisten` removes a stale socket file left behind by
a dead server (it probes first, and refuses a path where a server still
answers, or that is not a socket). `close` removes the file again, but only
in the process that created it: a forked worker that closes its inherited
copy must not pull the address from under its master.

Invariant: an accepted socket comes back already wrapped in a
`BufferedSocket`; a connection the peer aborted before it was accepted is
skipped, not raised.
"""

from __future__ import annotations

import errno
import os
import socket
import stat
from types import TracebackType
from typing import Self

from ._buffered import BufferedSocket
from ._errors import SocketClosedError
from ._poll import wait_ready

__all__ = ["Listener", "locallisten", "tcplisten"]

_SKIPPED = (errno.ECONNABORTED, errno.EPROTO)


class Listener:
    """A listening socket that hands out `BufferedSocket` objects.

    Args:
        sock: A bound, listening stream socket (the listener takes ownership).
        path: The Unix socket file to remove on `close`, if any.

    Examples:
        >>> from layer1_sockets import tcpconnect
        >>> with tcplisten("127.0.0.1", 0) as listener:
        ...     listener.accept_nb() is None
        ...     client = tcpconnect("127.0.0.1", listener.port)
        ...     with listener.accept() as server, client:
        ...         client.remote_tcpport == listener.port == server.local_tcpport
        True
        True
    """

    __slots__ = ("_owner", "_path", "_sock")

    def __init__(self, sock: socket.socket, path: str | None = None) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._path = path
        self._owner = os.getpid()

    def __repr__(self) -> str:
        where = self._path if self._path is not None else f"port {self.port}"
        return f"<Listener {where}{' closed' if self.closed else ''}>"

    @property
    def port(self) -> int | None:
        """The bound TCP port (the real one when 0 was asked for); `None` for Unix."""
        if self._sock.family not in (socket.AF_INET, socket.AF_INET6) or self.closed:
            return None
        return int(self._sock.getsockname()[1])

    @property
    def path(self) -> str | None:
        """The Unix socket path; `None` for TCP."""
        return self._path

    @property
    def closed(self) -> bool:
        """`True` once `close()` was called."""
        return self._sock.fileno() < 0

    def fileno(self) -> int:
        """Return the descriptor number (readable = a connection is waiting)."""
        if self.closed:
            raise SocketClosedError("I/O on a closed listener")
        return self._sock.fileno()

    def accept_nb(self) -> BufferedSocket | None:
        """Accept a waiting connection, or return `None` if none is waiting.

        Moonbridge: ``listener:accept_nb()`` (1.x).
        """
        listening = self._sock
        if self.closed:
            raise SocketClosedError("I/O on a closed listener")
        try:
            sock, _ = listening.accept()
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as error:
            if error.errno in _SKIPPED:
                return None
            raise
        return BufferedSocket(sock)

    def accept(self) -> BufferedSocket:
        """Wait for a connection and accept it.

        Moonbridge: ``listener:accept()`` (1.x).
        """
        while (accepted := self.accept_nb()) is None:
            wait_ready(self, "r")
        return accepted

    def close(self) -> None:
        """Stop listening; remove the Unix socket file if this process made it."""
        if self.closed:
            return
        self._sock.close()
        if self._path is not None and os.getpid() == self._owner:
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def tcplisten(host: str | None, port: int, backlog: int = 1024) -> Listener:
    """Listen on a TCP address; port 0 picks a free port (see `Listener.port`).

    Args:
        host: The address to bind (``"127.0.0.1"``, ``"::1"``, a host name);
            `None` or ``""`` binds every interface.
        port: The TCP port, or 0.
        backlog: How many connections the kernel keeps waiting for `accept`.

    Moonbridge: ``moonbridge_io.tcplisten(hostname, port)`` (1.x); in rev 98
    only the server's ``listen{ {proto = "tcp", ...} }`` listened.
    """
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
        return Listener(sock)
    except BaseException:
        sock.close()
        raise


def remove_stale_socket(path: str) -> None:
    """Remove a Unix socket file nobody listens on; refuse to touch anything else.

    A server that died leaves its socket file behind, and binding to that
    path then fails. This probes the file: refused means stale (removed),
    answered or a full backlog (the probe times out) means a live server.

    Args:
        path: The socket file's path; a missing file is fine.

    Raises:
        FileExistsError: The path exists and is not a socket.
        OSError: ``EADDRINUSE`` when a server listens there.
    """
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise FileExistsError(errno.EEXIST, "exists and is not a socket", path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            os.unlink(path)
            return
        except TimeoutError:
            pass  # a full backlog: somebody listens
    raise OSError(errno.EADDRINUSE, "another server listens on this socket", path)


def locallisten(path: str, backlog: int = 1024) -> Listener:
    """Listen on a Unix stream socket at `path` (a stale socket file is replaced).

    Raises:
        FileExistsError: `path` exists and is not a socket.
        OSError: ``EADDRINUSE`` when a server is still listening at `path`.

    Moonbridge: ``moonbridge_io.locallisten(path)`` (1.x).
    """
    remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(backlog)
        return Listener(sock, path)
    except BaseException:
        sock.close()
        raise
