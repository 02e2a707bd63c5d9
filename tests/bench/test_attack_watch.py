"""The hostile-client workloads' watch: when does a server let go of a connection?

`_attack.held_ports` reads the kernel's TCP table; these tests drive a
real listener on 127.0.0.1 through each state a server can leave a
connection in and check what the watch reports: held while it waits in the
backlog, while it is served, and while the server has only shut down its
sending side; let go once the server has closed it.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator

import pytest
from support import ROOT

sys.path.insert(0, str(ROOT / "bench"))
from _attack import held_ports


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def held(server: socket.socket) -> set[int]:
    ports = held_ports(port_of(server))
    assert ports is not None, "the TCP table could not be read"
    return ports


@pytest.mark.timeout(10)
def test_a_connection_is_held_until_the_server_closes_it(listener: socket.socket) -> None:
    with socket.create_connection(listener.getsockname(), timeout=5) as client:
        client_port = port_of(client)
        assert client_port in held(listener)  # in the backlog, not yet accepted
        served, _address = listener.accept()
        assert client_port in held(listener)
        served.shutdown(socket.SHUT_WR)  # the client sees the end, but the server holds on
        assert client.recv(1) == b""
        assert client_port in held(listener)
        served.close()
        assert client_port not in held(listener)


@pytest.mark.timeout(10)
def test_only_the_servers_own_connections_count(listener: socket.socket) -> None:
    with socket.create_server(("127.0.0.1", 0)) as other, \
            socket.create_connection(other.getsockname(), timeout=5) as client:
        assert port_of(client) not in held(listener)
        assert port_of(client) in held(other)
