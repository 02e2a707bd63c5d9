"""Whom a request comes from behind a reverse proxy: ``Forwarded`` and ``X-Forwarded-*``.

A proxy in front of the server (nginx, a load balancer) connects itself, so
the socket's peer is the proxy; the proxy says who its client was in
request headers: ``Forwarded`` (RFC 7239, ``for=`` and ``proto=``) or
the older ``X-Forwarded-For`` and ``X-Forwarded-Proto``. Anybody can send
those headers, so they count only when the peer that sent them is trusted
(`TrustedProxies`, the ``forwarded_allow_ips`` option), and only the kind
that the proxy sets (the ``forwarded_header`` option): a proxy passes the
other kind on as its client sent it. nginx, as the Deployment page sets it
up, appends to ``X-Forwarded-For`` and passes a client's ``Forwarded``
through untouched, so ``X-Forwarded-For`` is the default and a
``Forwarded`` line is then ignored, whatever it says.

The rule (the one nginx's ``real_ip_recursive`` follows): each proxy
appends the address of its own peer, so the list is read from the right.
Starting with the socket's peer, as long as the current address is a
trusted proxy, believe what it says about its own client: the next entry
to the left. The first address that is not trusted is the client (or the
leftmost, when all are trusted). An entry that is not an IP address
(``unknown``, an obfuscated name, garbage) ends the walk and is not used.
The scheme is the ``proto`` that the last believed proxy gave; with
``X-Forwarded-Proto`` the values pair with the ``X-Forwarded-For``
entries when both lists have the same length, otherwise only the last
value is used. With ``forwarded_header="Forwarded"``, the ``for=`` and
``proto=`` of its elements play these parts and ``X-Forwarded-*`` is ignored.

Everything here is pure: header values in, an `Origin` out, no sockets.

Invariants: a peer that is not trusted is never overridden by a header; a
resolved address is a valid IP address in canonical text form (IPv4 for
IPv4-mapped IPv6 addresses); the scheme is ``"http"`` or ``"https"``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from layer1_sockets import BufferedSocket

from ._abnf import split_list, split_outside_quotes, unquote

__all__ = ["DEFAULT_TRUSTED", "FORWARDED_HEADERS", "Origin", "TrustedProxies",
           "canonical_address", "describe_peer", "socket_address"]

DEFAULT_TRUSTED = ("127.0.0.1", "::1", "unix")
"""Trusted by default: the loopback addresses and Unix socket peers."""

FORWARDED_HEADERS = ("X-Forwarded-For", "Forwarded")
"""The headers a trusted proxy may be said to set; the first is the default."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request comes from, as far as the trusted proxies tell.

    Attributes:
        address: The client's IP address, or `None` for a Unix socket peer
            that no trusted header overrode.
        port: The client's port, when known.
        scheme: ``"http"`` or ``"https"``.
        peer: The socket peer's own address (the proxy, behind one), `None`
            on a Unix socket.
    """

    address: str | None
    port: int | None
    scheme: str
    peer: str | None = None


@dataclass(frozen=True, slots=True)
class _Hop:
    address: str | None
    port: int | None
    proto: str | None


def canonical_address(text: str) -> str | None:
    """Return an IP address in canonical form, or `None` if `text` is not one.

    Examples:
        >>> canonical_address("::ffff:192.0.2.1"), canonical_address("2001:DB8::1")
        ('192.0.2.1', '2001:db8::1')
        >>> canonical_address("unknown") is None
        True
    """
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def socket_address(sock: BufferedSocket, *, local: bool = False) -> str | None:
    """The IP address of the socket's peer (or, with `local`, its own) as canonical text.

    The one place an address comes off a socket: IPv4 is asked first, so an
    IPv4-mapped IPv6 peer (a dual-stack listener) is its IPv4 address, as
    `canonical_address` gives it.

    Returns:
        The address, or `None` on a Unix socket.
    """
    packed = (sock.local_ip4 or sock.local_ip6) if local else (
        sock.remote_ip4 or sock.remote_ip6)
    return None if packed is None else str(ipaddress.ip_address(packed))


def describe_peer(sock: BufferedSocket) -> str:
    """Say who is at the other end, for a log line.

    Returns:
        ``"192.0.2.1:4711"``, ``"[2001:db8::1]:4711"`` or ``"unix"``.
    """
    address = socket_address(sock)
    if address is None:
        return "unix"
    host = f"[{address}]" if ":" in address else address
    return f"{host}:{sock.remote_tcpport}"


class TrustedProxies:
    """The peers whose forwarding headers are believed (``forwarded_allow_ips``).

    Args:
        spec: A comma-separated string or a list of items: IP addresses,
            networks (``10.0.0.0/8``), ``unix`` (peers on a Unix socket),
            or ``*`` (every peer: only when nothing can reach the server
            but the proxy).
        header: The header the trusted proxies set: ``"X-Forwarded-For"``
            (with ``X-Forwarded-Proto``; nginx's ``$proxy_add_x_forwarded_for``)
            or ``"Forwarded"`` (RFC 7239), in any case. The other kind is
            ignored: a proxy passes it on as its client wrote it.

    Raises:
        ValueError: An item is none of these, or `header` is neither.

    Examples:
        >>> trusted = TrustedProxies("127.0.0.1, 10.0.0.0/8")
        >>> trusted.trusts("10.1.2.3"), trusted.trusts("192.0.2.1"), trusted.trusts(None)
        (True, False, False)
        >>> trusted.resolve("127.0.0.1", 5000, False,
        ...                 [("X-Forwarded-For", "192.0.2.7"), ("X-Forwarded-Proto", "https")])
        Origin(address='192.0.2.7', port=None, scheme='https', peer='127.0.0.1')
        >>> trusted.resolve("127.0.0.1", 5000, False, [("Forwarded", "for=127.0.0.1")]).address
        '127.0.0.1'
    """

    def __init__(self, spec: str | Iterable[str], header: str = FORWARDED_HEADERS[0]) -> None:
        chosen = [name for name in FORWARDED_HEADERS if isinstance(header, str)
                  and name.lower() == header.strip().lower()]
        if not chosen:
            raise ValueError(f"forwarded_header must be one of {', '.join(FORWARDED_HEADERS)}, "
                             f"not {header!r}")
        self.header: str = chosen[0]
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        self.items: tuple[str, ...] = ()
        self.networks: tuple[Network, ...] = ()
        self.everyone = self.unix = False
        networks: list[Network] = []
        for raw in items:
            if not isinstance(raw, str):
                raise ValueError(f"forwarded_allow_ips: not an address: {raw!r}")
            item = raw.strip()
            if item == "*":
                self.everyone = True
            elif item == "unix":
                self.unix = True
            elif item:
                try:
                    networks.append(ipaddress.ip_network(item, strict=False))
                except ValueError:
                    raise ValueError(f"forwarded_allow_ips: not an address or network: "
                                     f"{item!r}") from None
            else:
                continue
            self.items += (item,)
        self.networks = tuple(networks)

    def __repr__(self) -> str:
        if self.header != FORWARDED_HEADERS[0]:
            return f"TrustedProxies({','.join(self.items)!r}, header={self.header!r})"
        return f"TrustedProxies({','.join(self.items)!r})"

    def trusts(self, address: str | None) -> bool:
        """Whether forwarding headers from this peer count (`None` = a Unix socket peer)."""
        if self.everyone:
            return True
        if address is None:
            return self.unix
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(parsed in network for network in self.networks)

    def resolve(self, peer: str | None, peer_port: int | None, tls: bool,
                fields: Sequence[tuple[str, str]]) -> Origin:
        """Find the client of a request from its peer and its header fields.

        Args:
            peer: The socket peer's address (canonical), `None` for Unix.
            peer_port: The socket peer's port.
            tls: Whether the connection itself is TLS.
            fields: The request's header fields, `(name, value)` pairs.

        Returns:
            The client address, port and scheme.
        """
        origin = Origin(peer, peer_port, "https" if tls else "http", peer)
        if not self.trusts(peer):
            return origin
        hops, last_proto = _hops(fields, forwarded=self.header == "Forwarded")
        if not hops:
            return Origin(peer, peer_port, last_proto or origin.scheme, peer)
        address, port, scheme = peer, peer_port, origin.scheme
        for hop in reversed(hops):
            if hop.address is None:
                break  # not an IP address: stop believing
            address, port = hop.address, hop.port
            scheme = hop.proto or scheme
            if not self.trusts(address):
                break
        return Origin(address, port, scheme, peer)


def _hops(fields: Sequence[tuple[str, str]], *,
          forwarded: bool) -> tuple[list[_Hop], str | None]:
    """The forwarding hops, leftmost (the client) first, and a proto without a hop.

    Only ``Forwarded`` is read when `forwarded` is true, else only ``X-Forwarded-*``.
    """
    elements: list[str] = []
    chain: list[str] = []
    protos: list[str] = []
    for name, value in fields:
        lower = name.lower()
        if lower == "forwarded":
            elements.extend(split_list(value))
        elif lower == "x-forwarded-for":
            chain.extend(split_list(value))
        elif lower == "x-forwarded-proto":
            protos.extend(split_list(value))
    if forwarded:
        return [_forwarded_hop(element) for element in elements], None
    proto_values = [_proto(item) for item in protos]
    if len(proto_values) != len(chain):
        proto_values = [None] * len(chain)
        if chain:
            proto_values[-1] = _proto(protos[-1]) if protos else None
    hops = [_Hop(*_node(item), proto) for item, proto in zip(chain, proto_values, strict=True)]
    return hops, (_proto(protos[-1]) if protos and not chain else None)


def _forwarded_hop(element: str) -> _Hop:
    """One element of ``Forwarded``: ``for=...;proto=...;by=...``."""
    address: str | None = None
    port: int | None = None
    proto: str | None = None
    for pair in _split_pairs(element):
        key, equals, value = pair.partition("=")
        if not equals:
            continue
        value = unquote(value.strip()) if value.strip().startswith('"') else value.strip()
        key = key.strip().lower()
        if key == "for":
            address, port = _node(value)
        elif key == "proto":
            proto = _proto(value)
    return _Hop(address, port, proto)


def _split_pairs(element: str) -> list[str]:
    """Split at ``;`` outside quoted strings."""
    return split_outside_quotes(element, ";")


def _node(text: str) -> tuple[str | None, int | None]:
    """An address with an optional port: ``192.0.2.1``, ``192.0.2.1:80``, ``[::1]:80``."""
    text = text.strip()
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    port = int(port_text) if port_text.isdigit() and port_text.isascii() else None
    if port is not None and not 0 < port < 65536:
        port = None
    return canonical_address(host), port


def _proto(text: str) -> str | None:
    value = text.strip().lower()
    return value if value in ("http", "https") else None
