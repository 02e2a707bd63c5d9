"""Behind a proxy: whose ``Forwarded`` / ``X-Forwarded-*`` headers count.

``--forwarded-allow-ips`` (the `forwarded_allow_ips` option) names them.

The rules are pure logic (`TrustedProxies.resolve`), checked first without
sockets; then a running server, with clients on different loopback
addresses (127.0.0.1 is trusted by default, 127.0.0.2 is not), shows the
request's `client_address` and `scheme` following them.
"""

from __future__ import annotations

import pytest
from prod_apps.prod_support import HTTP_APP, get_json, server

from layer3_http import Options, TrustedProxies

Fields = list[tuple[str, str]]


@pytest.mark.parametrize(("peer", "fields", "expected"), [
    # no headers: the peer is the client
    ("127.0.0.1", [], ("127.0.0.1", 5000, "http")),
    # one trusted proxy
    ("127.0.0.1", [("X-Forwarded-For", "192.0.2.1")], ("192.0.2.1", None, "http")),
    ("127.0.0.1", [("X-Forwarded-For", "192.0.2.1"), ("X-Forwarded-Proto", "https")],
     ("192.0.2.1", None, "https")),
    # an untrusted peer's headers are ignored, whatever they say
    ("192.0.2.50", [("X-Forwarded-For", "10.0.0.1"), ("X-Forwarded-Proto", "https")],
     ("192.0.2.50", 5000, "http")),
    # a client's own X-Forwarded-For in front of the proxy's entry is not believed
    ("127.0.0.1", [("X-Forwarded-For", "6.6.6.6, 192.0.2.1")], ("192.0.2.1", None, "http")),
    # a chain of trusted proxies is walked from the right
    ("127.0.0.1", [("X-Forwarded-For", "198.51.100.7, 10.0.0.2, 10.0.0.3")],
     ("198.51.100.7", None, "http")),
    # several header lines join in order
    ("127.0.0.1", [("X-Forwarded-For", "198.51.100.7"), ("X-Forwarded-For", "10.0.0.3")],
     ("198.51.100.7", None, "http")),
    # proto values pair with the hops when the counts agree
    ("127.0.0.1", [("X-Forwarded-For", "198.51.100.7, 10.0.0.3"),
                   ("X-Forwarded-Proto", "https, http")], ("198.51.100.7", None, "https")),
    # garbage stops the walk at the last believable hop
    ("127.0.0.1", [("X-Forwarded-For", "not-an-ip, 10.0.0.3")], ("10.0.0.3", None, "http")),
    ("127.0.0.1", [("X-Forwarded-For", "<script>")], ("127.0.0.1", 5000, "http")),
    # a client's own Forwarded, passed through by the proxy, is not believed
    ("127.0.0.1", [("Forwarded", "for=127.0.0.1;proto=https"),
                   ("X-Forwarded-For", "192.0.2.7")], ("192.0.2.7", None, "http")),
    ("127.0.0.1", [("Forwarded", "for=192.0.2.99")], ("127.0.0.1", 5000, "http")),
    # a proto alone (no address list) from a trusted peer
    ("127.0.0.1", [("X-Forwarded-Proto", "HTTPS")], ("127.0.0.1", 5000, "https")),
    ("127.0.0.1", [("X-Forwarded-Proto", "gopher")], ("127.0.0.1", 5000, "http")),
    # IPv4-mapped IPv6 addresses are IPv4 addresses
    ("127.0.0.1", [("X-Forwarded-For", "::ffff:192.0.2.1")], ("192.0.2.1", None, "http")),
])
def test_resolve(peer: str, fields: Fields, expected: tuple[str, int | None, str]) -> None:
    trusted = TrustedProxies("127.0.0.1, ::1, 10.0.0.0/8, unix")
    origin = trusted.resolve(peer, 5000, False, fields)
    assert (origin.address, origin.port, origin.scheme) == expected


@pytest.mark.parametrize(("fields", "expected"), [
    # RFC 7239 Forwarded, with ports, IPv6 and quoting; X-Forwarded-* is then ignored
    ([("Forwarded", 'for="[2001:db8::17]:4711";proto=https;by=_proxy'),
      ("X-Forwarded-For", "192.0.2.99")], ("2001:db8::17", 4711, "https")),
    ([("Forwarded", "for=192.0.2.60:8080;proto=http, for=10.0.0.3")],
     ("192.0.2.60", 8080, "http")),
    ([("Forwarded", "for=unknown")], ("127.0.0.1", 5000, "http")),
    ([("X-Forwarded-For", "192.0.2.99"), ("X-Forwarded-Proto", "https")],
     ("127.0.0.1", 5000, "http")),
    # read from the right: what the client put in front of the proxy's element is not used
    ([("Forwarded", "for=127.0.0.1, for=192.0.2.5")], ("192.0.2.5", None, "http")),
])
def test_resolve_forwarded(fields: Fields, expected: tuple[str, int | None, str]) -> None:
    trusted = TrustedProxies("127.0.0.1, ::1, 10.0.0.0/8, unix", header="forwarded")
    origin = trusted.resolve("127.0.0.1", 5000, False, fields)
    assert (origin.address, origin.port, origin.scheme) == expected


def test_the_forwarded_header_option() -> None:
    assert Options().forwarded_header == "X-Forwarded-For"
    assert Options(forwarded_header="FORWARDED").forwarded_header == "Forwarded"
    assert Options(forwarded_header="Forwarded").trusted_proxies.header == "Forwarded"
    with pytest.raises(ValueError, match="forwarded_header"):
        Options(forwarded_header="X-Real-IP")


def test_unix_peers_star_and_tls() -> None:
    fields = [("X-Forwarded-For", "192.0.2.1")]
    assert TrustedProxies("unix").resolve(None, None, False, fields).address == "192.0.2.1"
    assert TrustedProxies("127.0.0.1").resolve(None, None, False, fields).address is None
    assert TrustedProxies("*").resolve("203.0.113.9", 1, False, fields).address == "192.0.2.1"
    assert TrustedProxies("").resolve("127.0.0.1", 1, True, fields).scheme == "https"
    assert not TrustedProxies("").trusts("127.0.0.1")


@pytest.mark.parametrize("spec", ["localhost", "10.0.0.0/33", "unix,nonsense"])
def test_bad_lists_are_refused_before_any_fork(spec: str) -> None:
    with pytest.raises(ValueError, match="forwarded_allow_ips"):
        Options(forwarded_allow_ips=spec)


def test_the_default_trusts_loopback_and_unix() -> None:
    assert Options().forwarded_allow_ips == ("127.0.0.1", "::1", "unix")


def test_a_running_server_trusts_only_the_allowed_peers() -> None:
    spoof = {"X-Forwarded-For": "192.0.2.44", "X-Forwarded-Proto": "https"}
    with server(str(HTTP_APP), "--workers", "1") as (_, port):
        trusted = get_json(port, "/who", headers=spoof, source="127.0.0.1")
        assert (trusted["client"], trusted["peer"], trusted["scheme"]) == (
            "192.0.2.44", "127.0.0.1", "https")
        untrusted = get_json(port, "/who", headers=spoof, source="127.0.0.2")
        assert (untrusted["client"], untrusted["peer"], untrusted["scheme"]) == (
            "127.0.0.2", "127.0.0.2", "http")
        assert isinstance(untrusted["port"], int)
    with server(str(HTTP_APP), "--forwarded-allow-ips", "127.0.0.2") as (_, port):
        assert get_json(port, "/who", headers=spoof, source="127.0.0.1")["client"] == "127.0.0.1"
        assert get_json(port, "/who", headers=spoof, source="127.0.0.2")["client"] == "192.0.2.44"
