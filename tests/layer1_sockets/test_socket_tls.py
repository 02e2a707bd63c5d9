"""TLS: both sides, both protocol versions, and the stdlib's `ssl.SSLSocket` as the peer.

The choices under test: `finish()` sends close_notify and does not wait for
the peer's, so reading goes on (a half-closed TLS connection, which TLS 1.3
defines and OpenSSL allows for 1.2 too); a peer's close_notify reads as
EOF; a peer that closes TCP without one (a "ragged EOF", as
``SSLSocket.close()`` does) reads as EOF too; input that arrived before
`starttls` is handed to TLS; a failed handshake is raised and stays raised.
"""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import pytest
import trustme
from sockets_support import TIMEOUT, Background, connected, tls_contexts

from layer1_sockets import BufferedSocket, SocketStateError, tcpconnect, tcplisten

VERSIONS = [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3]


def contexts_for(version: ssl.TLSVersion) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca: trustme.CA = tls_contexts().ca
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(server)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client)
    for context in (server, client):
        context.minimum_version = context.maximum_version = version
    return server, client


def tcp_pair() -> tuple[BufferedSocket, BufferedSocket]:
    with tcplisten("127.0.0.1", 0) as listener:
        client = tcpconnect("127.0.0.1", listener.port or 0)
        return client, listener.accept()


@pytest.mark.parametrize("version", VERSIONS, ids=lambda v: v.name)
def test_finish_sends_close_notify_and_reading_goes_on(version: ssl.TLSVersion) -> None:
    server_context, client_context = contexts_for(version)
    client, server = tcp_pair()
    with client, server:
        other = Background(lambda: server.starttls(server_context, server_side=True))
        client.starttls(client_context, server_hostname="localhost")
        other.result()
        ssl_object = client.ssl_object
        assert client.tls and ssl_object is not None
        assert ssl_object.version() == version.name.replace("_", ".")
        client.write(b"request")
        client.finish()
        assert server.read() == b"request"  # up to the close_notify
        assert server.read() == b""
        server.flush(b"response")  # the half-closed connection still carries data back
        server.finish()
        assert client.read() == b"response"
        assert client.read() == b""


def test_a_stdlib_client_sees_a_real_close_notify() -> None:
    contexts = tls_contexts()
    with tcplisten("127.0.0.1", 0) as listener:
        raw = socket.create_connection(("127.0.0.1", listener.port or 0), timeout=TIMEOUT)
        server = listener.accept()
    other = Background(lambda: server.starttls(contexts.server, server_side=True))
    # suppress_ragged_eofs=False: an EOF without close_notify would raise SSLEOFError
    with contexts.client.wrap_socket(raw, server_hostname="localhost",
                                     suppress_ragged_eofs=False) as client, server:
        other.result()
        server.flush(b"hello")
        server.finish()
        received = b""
        while chunk := client.recv(100):
            received += chunk
        assert received == b"hello"
        client.sendall(b"still here")
        assert server.read(10) == b"still here"
        client.unwrap()  # the client's close_notify: our EOF
        assert server.read() == b""


def test_our_client_against_a_stdlib_server() -> None:
    contexts = tls_contexts()
    with socket.create_server(("127.0.0.1", 0)) as listening:
        listening.settimeout(TIMEOUT)

        def serve() -> bytes:
            conn, _ = listening.accept()
            with contexts.server.wrap_socket(conn, server_side=True) as tls:
                line = b""
                while not line.endswith(b"\n"):
                    line += tls.recv(100)
                tls.sendall(line.upper())
                tls.unwrap().close()  # waits for our close_notify, sends its own
            return line

        other = Background(serve)
        with tcpconnect("127.0.0.1", listening.getsockname()[1]) as client:
            client.starttls(contexts.client, server_hostname="localhost")
            client.flush(b"ping\n")
            assert client.read(terminator=b"\n") == b"PING\n"
            client.finish()
            assert client.read() == b""
        assert other.result() == b"ping\n"


def test_a_ragged_eof_reads_as_eof(tmp_path: Path) -> None:
    contexts = tls_contexts()
    with tcplisten("127.0.0.1", 0) as listener:
        raw = socket.create_connection(("127.0.0.1", listener.port or 0), timeout=TIMEOUT)
        server = listener.accept()
    other = Background(lambda: server.starttls(contexts.server, server_side=True))
    client = contexts.client.wrap_socket(raw, server_hostname="localhost")
    other.result()
    with server:
        client.sendall(b"bye\n")
        assert server.read(terminator=b"\n") == b"bye\n"
        server.flush(b"ok")
        assert client.recv(2) == b"ok"  # reads the session tickets too: nothing left unread
        client.close()  # SSLSocket.close() sends no close_notify, only a FIN
        assert server.read() == b""
        assert server.read() == b""


def test_starttls_keeps_input_that_arrived_before_it() -> None:
    """A client may send its TLS hello right behind a plain-text STARTTLS line."""
    contexts = tls_contexts()
    left, right = socket.socketpair()
    right.settimeout(TIMEOUT)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = contexts.client.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        client.do_handshake()
    hello = outgoing.read()
    right.sendall(b"STARTTLS\n" + hello)  # one send: both arrive together
    with BufferedSocket(left) as server:
        assert server.read(terminator=b"\n") == b"STARTTLS\n"
        assert server.buffered == len(hello)  # the hello is already in our buffer
        other = Background(lambda: server.starttls(contexts.server, server_side=True))
        while True:
            try:
                client.do_handshake()
                break
            except ssl.SSLWantReadError:
                right.sendall(outgoing.read())
                incoming.write(right.recv(65536))
        right.sendall(outgoing.read())
        other.result()
        client.write(b"secret\n")
        right.sendall(outgoing.read())
        assert server.read(terminator=b"\n") == b"secret\n"
    right.close()


@pytest.mark.parametrize("hostname", ["localhost", "example.com"])
def test_a_failed_handshake_is_raised_and_stays_raised(hostname: str) -> None:
    contexts = tls_contexts()
    untrusting = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # knows no CA at all
    context = untrusting if hostname == "localhost" else contexts.client
    client, server = tcp_pair()
    with client, server:
        other = Background(lambda: server.starttls(contexts.server, server_side=True))
        with pytest.raises(ssl.SSLCertVerificationError) as first:
            client.starttls(context, server_hostname=hostname)
        with pytest.raises(ssl.SSLError):
            other.result()  # the server got our alert
        assert not client.tls
        for again in (client.read_nb, lambda: client.write(b"x")):
            with pytest.raises(ssl.SSLCertVerificationError) as later:
                again()
            assert later.value is first.value


def test_a_peer_that_leaves_during_the_handshake() -> None:
    contexts = tls_contexts()
    client, server = tcp_pair()
    server.close()
    with client, pytest.raises(OSError):
        client.starttls(contexts.client, server_hostname="localhost")


def test_starttls_twice_or_after_finish_is_refused(tmp_path: Path) -> None:
    contexts = tls_contexts()
    with connected("tls", tmp_path) as (client, _), pytest.raises(SocketStateError):
        client.starttls(contexts.client, server_hostname="localhost")
    with connected("tcp4", tmp_path) as (client, _):
        assert not client.tls and client.ssl_object is None
        client.finish()
        with pytest.raises(SocketStateError):
            client.starttls(contexts.client, server_hostname="localhost")


def test_the_peer_certificate_is_available(tmp_path: Path) -> None:
    with connected("tls", tmp_path) as (client, server):
        ssl_object = client.ssl_object
        assert ssl_object is not None
        certificate = ssl_object.getpeercert()
        assert certificate is not None
        assert ("DNS", "localhost") in certificate["subjectAltName"]
        assert server.tls and "tls" in repr(server)
