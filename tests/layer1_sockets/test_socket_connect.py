"""Opening and accepting connections: every resolved address, no leaked descriptor.

`tcpconnect` must try the resolver's addresses in order (``localhost`` is
``::1`` and ``127.0.0.1`` on most systems) and close every socket it gave
up on; the ``_nb`` forms must return at once and report a failure on first
use. Listeners hand out buffered sockets and look after their Unix socket
files.
"""

from __future__ import annotations

import errno
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sockets_support import TIMEOUT, ipv6_available, wait_writable

from layer1_sockets import (
    Listener,
    SocketClosedError,
    localconnect,
    localconnect_nb,
    locallisten,
    poll,
    tcpconnect,
    tcpconnect_nb,
    tcplisten,
)
from layer1_sockets._connect import Address, connect_first


def localhost_families() -> list[int]:
    infos = socket.getaddrinfo("localhost", 80, socket.AF_UNSPEC, socket.SOCK_STREAM)
    return [info[0] for info in infos]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound on 127.0.0.1 (and ::1) where nobody listens: connecting is refused."""
    holders = [socket.socket(socket.AF_INET, socket.SOCK_STREAM)]
    holders[0].bind(("127.0.0.1", 0))
    port = holders[0].getsockname()[1]
    if ipv6_available():
        holders.append(socket.socket(socket.AF_INET6, socket.SOCK_STREAM))
        try:
            holders[1].bind(("::1", port))
        except OSError:
            pytest.skip(f"port {port} is taken on ::1")
    try:
        yield port
    finally:
        for holder in holders:
            holder.close()


def test_every_address_is_tried_in_order_and_failures_are_closed(
        closed_port: int, open_fds: Callable[[], int]) -> None:
    """The loop behind tcpconnect, given the addresses a resolver might return."""
    refused: list[Address] = [(socket.AF_INET, socket.SOCK_STREAM, 0, ("127.0.0.1", closed_port))]
    if ipv6_available():
        refused.insert(0, (socket.AF_INET6, socket.SOCK_STREAM, 0, ("::1", closed_port)))
    refused = refused * 3
    with tcplisten("127.0.0.1", 0) as listener:
        answering: Address = (socket.AF_INET, socket.SOCK_STREAM, 0,
                              ("127.0.0.1", listener.port))
        before = open_fds()
        with connect_first([*refused, answering]) as client, listener.accept() as server:
            assert client.remote_tcpport == listener.port == server.local_tcpport
            assert open_fds() == before + 2  # exactly the two ends, nothing left over
        assert open_fds() == before
        with pytest.raises(ConnectionRefusedError):
            connect_first(refused)
        assert open_fds() == before
        with pytest.raises(ValueError):
            connect_first([])


def test_tcpconnect_tries_the_next_address_when_one_fails() -> None:
    families = localhost_families()
    if families[:1] != [socket.AF_INET6] or socket.AF_INET not in families:
        pytest.skip(f"localhost does not resolve to ::1 first, then 127.0.0.1: {families}")
    with tcplisten("127.0.0.1", 0) as listener:
        port = listener.port or 0
        with socket.socket(socket.AF_INET6) as guard:
            guard.bind(("::1", port))  # nobody can listen on ::1 at this port meanwhile
            with tcpconnect("localhost", port) as client, listener.accept():
                assert client.remote_ip4 == b"\x7f\x00\x00\x01"  # ::1 refused, IPv4 taken


def test_tcpconnect_takes_the_first_address_that_answers() -> None:
    families = localhost_families()
    if families[:1] != [socket.AF_INET6]:
        pytest.skip(f"localhost does not resolve to ::1 first: {families}")
    with tcplisten("::1", 0) as listener, tcpconnect("localhost", listener.port or 0) as client:
        assert client.remote_ip6 == socket.inet_pton(socket.AF_INET6, "::1")
        listener.accept().close()


def test_tcpconnect_leaks_no_descriptor_when_every_address_fails(
        closed_port: int, open_fds: Callable[[], int]) -> None:
    families = localhost_families()
    before = open_fds()
    for _ in range(20):
        with pytest.raises(ConnectionRefusedError):
            tcpconnect("localhost", closed_port)
    assert open_fds() == before
    assert len(families) >= 1  # with ::1 and 127.0.0.1, both were tried and closed


def test_tcpconnect_reports_an_unknown_name(open_fds: Callable[[], int]) -> None:
    before = open_fds()
    with pytest.raises(socket.gaierror):
        tcpconnect("no-such-host.invalid", 80)
    assert open_fds() == before


def test_tcpconnect_nb_returns_at_once_and_connects() -> None:
    with tcplisten("127.0.0.1", 0) as listener:
        client = tcpconnect_nb("127.0.0.1", listener.port or 0)
        with client:
            wait_writable(client)  # writable = connected
            client.flush(b"hi")
            with listener.accept() as server:
                assert server.read(2) == b"hi"
                assert client.remote_tcpport == listener.port  # known once connected


def test_tcpconnect_nb_reports_a_refusal_on_first_use(
        closed_port: int, open_fds: Callable[[], int]) -> None:
    before = open_fds()
    client = tcpconnect_nb("127.0.0.1", closed_port)
    assert poll([client], [client], TIMEOUT)
    with pytest.raises(ConnectionRefusedError):
        client.read()
    with pytest.raises(ConnectionRefusedError):
        client.read_nb()  # sticky
    client.close()
    assert open_fds() == before


def test_localconnect_and_its_failures(tmp_path: Path, open_fds: Callable[[], int]) -> None:
    path = str(tmp_path / "server.sock")
    before = open_fds()
    with pytest.raises(FileNotFoundError):
        localconnect(path)
    with pytest.raises(FileNotFoundError):
        localconnect_nb(path)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)  # a socket file where nobody listens
    stale.close()
    with pytest.raises(ConnectionRefusedError):
        localconnect(path)
    assert open_fds() == before
    with locallisten(path) as listener, localconnect_nb(path) as client, \
            listener.accept() as server:
        wait_writable(client)
        client.flush(b"ok")
        assert server.read(2) == b"ok"
        assert client.local_tcpport is None and client.remote_ip4 is None


def test_listener_accept_nb_port_and_close() -> None:
    listener = tcplisten("127.0.0.1", 0)
    assert isinstance(listener, Listener)
    assert listener.accept_nb() is None  # nothing waiting
    assert listener.port and listener.port > 0 and listener.path is None
    assert f"port {listener.port}" in repr(listener)
    client = tcpconnect("127.0.0.1", listener.port)
    server = listener.accept()
    assert server.local_tcpport == listener.port == client.remote_tcpport
    client.close()
    server.close()
    listener.close()
    assert listener.closed and listener.port is None
    listener.close()  # again: nothing
    for call in (listener.accept, listener.accept_nb, listener.fileno):
        with pytest.raises(SocketClosedError):
            call()


def test_tcplisten_without_a_host_binds_every_interface() -> None:
    with tcplisten(None, 0) as listener, tcpconnect("127.0.0.1", listener.port or 0):
        listener.accept().close()


def test_locallisten_replaces_a_stale_socket_file(tmp_path: Path) -> None:
    path = str(tmp_path / "stale.sock")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    with locallisten(path) as listener:
        assert listener.path == path and listener.port is None
        with localconnect(path), listener.accept():
            pass
    assert not os.path.exists(path)  # close removed the file


def test_locallisten_refuses_a_live_server_and_other_files(tmp_path: Path) -> None:
    path = str(tmp_path / "live.sock")
    with locallisten(path):
        with pytest.raises(OSError) as caught:
            locallisten(path)
        assert caught.value.errno == errno.EADDRINUSE
    regular = tmp_path / "regular"
    regular.write_text("keep me")
    with pytest.raises(FileExistsError):
        locallisten(str(regular))
    assert regular.read_text() == "keep me"


def test_a_forked_child_closing_the_listener_keeps_the_socket_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sock")
    with locallisten(path) as listener:
        pid = os.fork()
        if pid == 0:  # the child: close the inherited copy, leave at once
            try:
                listener.close()
            finally:
                os._exit(0)
        try:
            _, status = os.waitpid(pid, 0)
        finally:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        assert os.waitstatus_to_exitcode(status) == 0
        assert os.path.exists(path)
        with localconnect(path), listener.accept():
            pass  # the master still listens there
