"""Listening sockets: bind them at declaration time, remove socket files at exit.

`listen()` binds every TCP and Unix listener at once, in the master, so
that a port in use or a missing directory is an error while the server is
still starting (exit code 3), never a surprise after the first fork. The
master alone accepts on these sockets; workers close their copies.

Invariants:

* a `Bound` socket is listening and non-blocking;
* a Unix socket file is removed only if it is still the one this process
  created (same device and inode), so a server never deletes a socket a
  newer server has put at the same path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from dataclasses import dataclass

from layer1_sockets import remove_stale_socket

from ._activation import passed_socket
from ._config import TCP, Inherited, Local

BACKLOG = 1024

Address = tuple[str, int] | str
"""A bound address: `(host, port)` for TCP, the socket's path for Unix."""


@dataclass(slots=True)
class Bound:
    """A listening socket and what is needed to report and clean it up."""

    sock: socket.socket
    address: Address
    identity: tuple[int, int] | None = None
    """(st_dev, st_ino) of the socket file, for Unix listeners."""
    inherited: bool = False
    """Whether another process keeps listening on it: the service manager it came from
    (which keeps its own copy), or the new master that took it over in an upgrade."""

    def close(self) -> None:
        """Stop listening for every process, close the socket, remove its file if ours.

        Workers hold copies of the listening socket (they accept on it), so
        closing the master's copy alone would not stop it: `shutdown`
        does, for all copies at once. A socket inherited from the service
        manager is only closed, since the manager listens on it again later.
        """
        if not self.inherited and self.sock.fileno() >= 0:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RD)
        self.sock.close()
        if self.identity is not None and isinstance(self.address, str):
            with contextlib.suppress(OSError):
                info = os.stat(self.address)
                if (info.st_dev, info.st_ino) == self.identity:
                    os.unlink(self.address)
            self.identity = None


def bind(listener: TCP | Local | Inherited) -> Bound:
    """Create, bind and start listening on the socket a listener describes.

    An `Inherited` socket is adopted as it is (it must be listening already),
    and so is the socket an old master passed on for the same listener in an
    upgrade (`passed_socket`): same port, same backlog, nothing refused.

    Args:
        listener: A TCP, Unix or inherited listener.

    Returns:
        The listening socket (non-blocking) with its bound address.

    Raises:
        OSError: As the kernel reports it (address in use, permission, not
            a socket, ...); for an inherited descriptor that is not a
            listening stream socket, `EINVAL`.
    """
    if isinstance(listener, Inherited):
        return _adopt(listener)
    fd = passed_socket(listener)
    if fd is not None:
        bound = _adopt(Inherited(fd))
        bound.inherited = False  # this master's own now, as it was the old one's
        if isinstance(bound.address, str):
            info = os.stat(bound.address)
            bound.identity = (info.st_dev, info.st_ino)
        return bound
    if isinstance(listener, TCP):
        return _bind_tcp(listener)
    return _bind_local(listener)


def _adopt(listener: Inherited) -> Bound:
    sock = socket.socket(fileno=listener.fd)
    try:
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        if sock.type != socket.SOCK_STREAM or not listening:
            raise OSError(errno.EINVAL, "not a listening stream socket", f"fd {listener.fd}")
        sock.setblocking(False)
        sock.set_inheritable(False)
        name = sock.getsockname()
    except BaseException:
        sock.detach()  # not ours to close when it is not what was promised
        raise
    if sock.family == socket.AF_UNIX:
        path = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
        return Bound(sock, path, inherited=True)
    return Bound(sock, (str(name[0]), int(name[1])), inherited=True)


def _bind_tcp(listener: TCP) -> Bound:
    infos = socket.getaddrinfo(listener.host, listener.port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    family, kind, proto, _, where = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            # "::" means every address, IPv4 included (the system default varies).
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(where)
        sock.listen(BACKLOG)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    host, port = sock.getsockname()[:2]
    return Bound(sock, (str(host), int(port)))


def _bind_local(listener: Local) -> Bound:
    path = os.path.abspath(os.fspath(listener.path))
    remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        sock.listen(BACKLOG)
        sock.setblocking(False)
        info = os.stat(path)
    except BaseException:
        sock.close()
        raise
    return Bound(sock, path, (info.st_dev, info.st_ino))
