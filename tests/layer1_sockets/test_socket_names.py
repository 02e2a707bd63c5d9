"""A socket's addresses are read from the kernel when first asked for, then remembered.

An accepted connection costs no ``getsockname`` or ``getpeername`` of
ours until an address attribute is read (seen with strace on a real
process: the one ``getsockname`` left is Python's own, which checks the
descriptor it wraps). The peer's address first asked after the peer reset
the connection is still the peer's; an address first asked after
`close()` is `None`, the descriptor being gone.
"""

from __future__ import annotations

import ipaddress
import re
import shutil
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from sockets_support import ipv6_available, wait_readable

from layer1_sockets import BufferedSocket, tcpconnect, tcplisten

CHILD = r"""
import os
from layer1_sockets import tcpconnect, tcplisten

with tcplisten("127.0.0.1", 0) as listener, \
        tcpconnect("127.0.0.1", listener.port) as client:
    server = listener.accept()
    fd = server._sock.fileno()
    os.write(2, b"--accepted %d\n" % fd)
    os.write(2, b"--asked %d %r\n" % (fd, (server.remote_tcpport, server.local_tcpport)))
    os.write(2, b"--again %d %r\n" % (fd, (server.remote_ip4, server.local_ip4)))
    server.close()
"""


def test_an_accepted_connection_reads_its_names_only_when_asked(tmp_path: Path) -> None:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    trace = tmp_path / "trace"
    done = subprocess.run(
        ["strace", "-o", str(trace), "-e", "trace=getsockname,getpeername,write",
         sys.executable, "-c", CHILD],
        capture_output=True, timeout=60, check=False)
    if done.returncode != 0 and b"ptrace" in done.stderr:
        pytest.skip(f"strace cannot trace here: {done.stderr.decode(errors='replace')}")
    assert done.returncode == 0, done.stderr
    lines = trace.read_text().splitlines()
    fd = int(re.findall(r"--accepted (\d+)", trace.read_text())[0])
    marks = [i for i, line in enumerate(lines) if "--accepted" in line or "--asked" in line
             or "--again" in line]
    assert len(marks) == 3, lines

    def calls(start: int, end: int) -> list[str]:
        return [line.split("(")[0] for line in lines[start:end]
                if re.match(rf"(getsockname|getpeername)\({fd},", line)]

    assert calls(marks[0] - 8, marks[0]).count("getpeername") == 0  # accept: none of ours
    assert calls(marks[0] - 8, marks[0]).count("getsockname") <= 1  # Python's own check
    assert calls(marks[0], marks[1]) == ["getpeername", "getsockname"]  # once asked
    assert calls(marks[1], marks[2]) == []  # remembered


def reset_by_peer(client: socket.socket) -> None:
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_peer_address_first_asked_after_a_reset_is_still_known(host: str) -> None:
    if host == "::1" and not ipv6_available():
        pytest.skip("no IPv6")
    with tcplisten(host, 0) as listener:
        client = socket.create_connection((host, listener.port))
        client_port = client.getsockname()[1]
        with listener.accept() as server:
            reset_by_peer(client)
            wait_readable(server)
            with pytest.raises(ConnectionResetError):
                server.read_nb()
            packed = ipaddress.ip_address(host).packed
            assert (server.remote_ip6 if ":" in host else server.remote_ip4) == packed
            assert server.remote_tcpport == client_port
            assert server.local_tcpport == listener.port


def test_an_address_first_asked_after_close_is_none_and_one_asked_before_stays() -> None:
    with tcplisten("127.0.0.1", 0) as listener, \
            tcpconnect("127.0.0.1", listener.port) as client:
        server = listener.accept()
        port = server.local_tcpport
        server.close()
        assert server.local_tcpport == port  # asked before: remembered
        assert server.remote_tcpport is None and server.remote_ip4 is None  # never asked
        assert isinstance(client, BufferedSocket)
