"""systemd socket activation: `socket_activation()` and `Inherited` listeners.

``tests/prod_apps/activate.py`` plays systemd: it binds the socket, puts
it at descriptor 3, sets ``LISTEN_FDS``/``LISTEN_PID``/``LISTEN_FDNAMES``
and execs the server in the same process. A client connects before the
server is up; it waits in the backlog and is served.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
from pathlib import Path

import pytest
from prefork_support import cli, read_line
from support import running

from layer2_prefork import Inherited, listen, socket_activation

APPS = Path(__file__).resolve().parents[1] / "prod_apps"


def test_a_script_serves_the_sockets_systemd_passed() -> None:
    argv = [sys.executable, str(APPS / "activate.py"), "tcp", "--",
            *cli("-s", str(APPS / "activated_server.py"))]
    with running(argv) as program:
        port = int(program.wait_for_line(rb"activated port (\d+)").group(1))
        with socket.create_connection(("127.0.0.1", port), timeout=20) as early:
            # connected before the server may be up: the backlog holds it
            line = read_line(early)
        assert line.startswith(b"http ") and line.endswith(b" leaked=[]\n")
        program.wait_for_line(rf"adopted \(\('127\.0\.0\.1', {port}\),\)".encode())
        assert program.stop(signal.SIGTERM) == 0


def test_variables_for_another_process_or_malformed_give_nothing() -> None:
    for environ in ({"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"},
                    {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "one"},
                    {"LISTEN_PID": "", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "x"},
                    {}):
        assert socket_activation(environ) == ()
        assert not any(name.startswith("LISTEN_") for name in environ)  # removed once read


def test_inherited_must_be_a_listening_stream_socket() -> None:
    with socket.socket() as idle:  # not listening: refused, and left open
        with pytest.raises(OSError) as refused:
            listen(Inherited(idle.fileno()), connect=lambda conn: None)
        assert refused.value.errno == errno.EINVAL
        assert idle.fileno() >= 0 and idle.getsockname()
    with pytest.raises(ValueError, match="Inherited: fd must be an int >= 0"):
        Inherited(-1)


def test_inherited_listener_adopts_the_socket() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    address = sock.getsockname()
    pool = listen(Inherited(sock.detach(), "web"), connect=lambda conn: None)
    try:
        assert pool.addresses == (address,) and pool.listeners[0].name == "web"
    finally:
        pool.close()
