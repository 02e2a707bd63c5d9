"""What a connected socket can tell about itself: addresses, ports, buffer sizes.

`SocketInfo` is the base class of `BufferedSocket` and holds the read-only
attributes the original offers on its socket objects: the local and remote
address as packed bytes (4 bytes for IPv4, 16 for IPv6, as the reference
says) and the TCP ports, plus the kernel buffer sizes.

Invariants: an address is looked up when it is first asked for, not when
the socket is made (a server that never asks costs no `getsockname` or
`getpeername` per connection), and then remembered, so an attribute read
once still answers after the socket was closed; one first asked after
`close()` is `None`, as the descriptor is gone. The peer's address first
asked after the peer reset the connection is still known: Linux keeps it
for ``SO_PEERNAME`` when ``getpeername`` says "not connected". An
attribute that does not apply
(an IPv6 address on an IPv4 connection, any address on a Unix socket, the
remote address of a connection that is not established yet) is `None`.
An IPv4 peer seen through an IPv6 socket (``::ffff:192.0.2.1``) has both:
the 16-byte form in ``*_ip6`` and the 4-byte form in ``*_ip4``.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

from ._errors import SocketClosedError

__all__ = ["SocketInfo"]

_SO_PEERNAME = getattr(socket, "SO_PEERNAME", 28)  # Linux's value; the module lacks it
_SOCKADDR_SIZE = {socket.AF_INET: 16, socket.AF_INET6: 28}


class SocketInfo:
    """Addresses, ports and buffer sizes of a stream socket."""

    __slots__ = ("_names", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._names: list[object] = [None, None]  # getsockname(), getpeername() once asked

    def _name(self, local: bool) -> object:
        index = 0 if local else 1
        if self._names[index] is None and self._sock.fileno() >= 0:
            try:
                self._names[index] = (self._sock.getsockname() if local
                                      else self._sock.getpeername())
            except OSError:
                if not local:
                    self._names[index] = self._peer_after_reset()
        return self._names[index]

    def _peer_after_reset(self) -> object:
        """The peer's address from ``SO_PEERNAME``, which a reset connection still has; or `None`.

        (A socket that never connected has none: the kernel says "not
        connected" here too.)
        """
        size = _SOCKADDR_SIZE.get(self._sock.family)
        if size is None:
            return None
        try:
            raw = self._sock.getsockopt(socket.SOL_SOCKET, _SO_PEERNAME, size)
        except OSError:
            return None
        port = struct.unpack_from("!H", raw, 2)[0]
        if self._sock.family == socket.AF_INET:
            return str(ipaddress.IPv4Address(raw[4:8])), port
        return str(ipaddress.IPv6Address(raw[8:24])), port

    def _ip(self, local: bool, version: int) -> bytes | None:
        name = self._name(local)
        if self._sock.family not in (socket.AF_INET, socket.AF_INET6) or not name:
            return None
        assert isinstance(name, tuple)
        address = ipaddress.ip_address(str(name[0]).split("%")[0])
        if version == 4 and isinstance(address, ipaddress.IPv6Address):
            mapped = address.ipv4_mapped
            return mapped.packed if mapped is not None else None
        return address.packed if address.version == version else None

    def _port(self, local: bool) -> int | None:
        name = self._name(local)
        if self._sock.family not in (socket.AF_INET, socket.AF_INET6) or not name:
            return None
        assert isinstance(name, tuple)
        return int(name[1])

    @property
    def local_ip4(self) -> bytes | None:
        """Local IPv4 address as 4 packed bytes, or `None`.

        Moonbridge: ``socket.local_ip4``.
        """
        return self._ip(True, 4)

    @property
    def local_ip6(self) -> bytes | None:
        """Local IPv6 address as 16 packed bytes, or `None`.

        Moonbridge: ``socket.local_ip6``.
        """
        return self._ip(True, 6)

    @property
    def remote_ip4(self) -> bytes | None:
        """Remote IPv4 address as 4 packed bytes, or `None`.

        `ipaddress.ip_address(sock.remote_ip4)` turns it into an address object.

        Moonbridge: ``socket.remote_ip4``.
        """
        return self._ip(False, 4)

    @property
    def remote_ip6(self) -> bytes | None:
        """Remote IPv6 address as 16 packed bytes, or `None`.

        Moonbridge: ``socket.remote_ip6``.
        """
        return self._ip(False, 6)

    @property
    def local_tcpport(self) -> int | None:
        """Local TCP port, or `None` for a Unix socket.

        Moonbridge: ``socket.local_tcpport``.
        """
        return self._port(True)

    @property
    def remote_tcpport(self) -> int | None:
        """Remote TCP port, or `None` for a Unix socket.

        Moonbridge: ``socket.remote_tcpport``.
        """
        return self._port(False)

    @property
    def interval(self) -> str | None:
        """Name of the interval timer that started this handler; `None` for a connection.

        Moonbridge: ``socket.interval``.
        """
        return None

    def _open_socket(self) -> socket.socket:
        if self._sock.fileno() < 0:
            raise SocketClosedError("I/O on a closed socket")
        return self._sock

    def get_rcvbuf(self) -> int:
        """Return the kernel receive buffer size (``SO_RCVBUF``) in bytes.

        Linux reports twice the value that was set: it counts its own
        bookkeeping too.
        """
        return self._open_socket().getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)

    def set_rcvbuf(self, size: int) -> None:
        """Ask the kernel for a receive buffer of `size` bytes (``SO_RCVBUF``)."""
        self._open_socket().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)

    def get_sndbuf(self) -> int:
        """Return the kernel send buffer size (``SO_SNDBUF``) in bytes."""
        return self._open_socket().getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)

    def set_sndbuf(self, size: int) -> None:
        """Ask the kernel for a send buffer of `size` bytes (``SO_SNDBUF``)."""
        self._open_socket().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
