"""Opening connections: `tcpconnect`, `tcpconnect_nb`, `localconnect`, `localconnect_nb`.

`tcpconnect` resolves the name and tries every address in the order the
resolver gives them (``localhost`` is often ``::1`` first, then
``127.0.0.1``), like `socket.create_connection`; the first that answers
wins. The ``_nb`` forms only *start* connecting and return at once; the
socket becomes writable when the connection is up, and a connection that
fails shows its error on first use (a read or a write raises it).

Invariant: no descriptor leaks. Every socket that does not end up inside a
returned `BufferedSocket` is closed before the function returns or raises.
"""

from __future__ import annotations

import errno
import socket

from ._buffered import BufferedSocket

__all__ = ["Address", "connect_first", "localconnect", "localconnect_nb", "tcpconnect",
           "tcpconnect_nb"]


Address = tuple[int, int, int, tuple[object, ...]]
"""One resolved address: family, socket type, protocol, socket address."""


def _resolve(host: str, port: int) -> list[Address]:
    infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM)
    return [(family, kind, proto, tuple(address))
            for family, kind, proto, _, address in infos]


def connect_first(addresses: list[Address]) -> BufferedSocket:
    """Connect to the first address that answers, trying them in order.

    Every socket that fails is closed before the next address is tried.

    Raises:
        OSError: The error of the last address (nothing else stays open).
        ValueError: `addresses` is empty.
    """
    if not addresses:
        raise ValueError("no address to connect to")
    last_error: OSError | None = None
    for family, kind, proto, address in addresses:
        sock = socket.socket(family, kind, proto)
        try:
            sock.connect(address)
        except OSError as error:
            sock.close()
            last_error = error
            continue
        return BufferedSocket(sock)
    assert last_error is not None
    try:
        raise last_error
    finally:
        last_error = None  # no reference cycle through the traceback


def tcpconnect(host: str, port: int) -> BufferedSocket:
    """Connect over TCP, trying every resolved address in order; block until connected.

    Args:
        host: A host name or an IPv4/IPv6 address.
        port: The TCP port.

    Returns:
        The connected socket.

    Raises:
        OSError: The error of the last address tried (such as
            `ConnectionRefusedError`), or `socket.gaierror` if the name does
            not resolve.

    Moonbridge: ``moonbridge_io.tcpconnect(hostname, port)`` (which leaked
    the socket when connecting failed).
    """
    return connect_first(_resolve(host, port))


def _start(sock: socket.socket, address: tuple[object, ...] | str) -> BufferedSocket:
    try:
        sock.setblocking(False)
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS):
            raise OSError(code, errno.errorcode.get(code, "connect failed"), address)
    except BaseException:
        sock.close()
        raise
    return BufferedSocket(sock)


def tcpconnect_nb(host: str, port: int) -> BufferedSocket:
    """Start connecting over TCP to the first resolved address; return at once.

    Name resolution itself may block briefly (the resolver has no
    non-blocking form in the standard library); pass an address literal to
    avoid it. Put the socket among `poll`'s writers to learn when the
    connection is up.

    Raises:
        OSError: The kernel refused at once (such as an unreachable network).
            A refusal from the peer shows up on first use instead.

    Moonbridge: ``moonbridge_io.tcpconnect_nb(hostname, port)`` (1.x).
    """
    family, kind, proto, address = _resolve(host, port)[0]
    return _start(socket.socket(family, kind, proto), address)


def localconnect(path: str) -> BufferedSocket:
    """Connect to a Unix stream socket at `path`; block until connected.

    Raises:
        FileNotFoundError: Nothing at `path`.
        ConnectionRefusedError: Nobody listens there.

    Moonbridge: ``moonbridge_io.localconnect(path)`` (1.x).
    """
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return BufferedSocket(sock)


def localconnect_nb(path: str) -> BufferedSocket:
    """Start connecting to a Unix stream socket at `path`; return at once.

    Raises:
        FileNotFoundError: Nothing at `path`.
        ConnectionRefusedError: Nobody listens there.
        BlockingIOError: The listener's backlog is full (Unix sockets report
            that at once rather than later).

    Moonbridge: ``moonbridge_io.localconnect_nb(path)`` (1.x).
    """
    return _start(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), path)
