"""The example systemd units run as written: socket activation of ``python -m layer3_http``.

The test plays systemd for ``docs/examples/deploy/moonbridge.socket`` and
``moonbridge.service``: it binds the Unix socket the socket unit names (in
a temporary folder), then runs the service's ``ExecStart`` line with the
socket passed the systemd way (``tests/prod_apps/activate.py``), the paths
moved into the test's folders. No ``--listen`` is given: the server must
use the passed socket.
"""

from __future__ import annotations

import shlex
import signal
import socket
import sys
from pathlib import Path

from http_support import RawClient, request_bytes
from prod_apps.prod_support import APPS, DEPLOY, command, get_json
from support import running


def unit_value(unit: Path, key: str) -> str:
    """A key's value in a unit file, continuation lines joined."""
    text = unit.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith(key + "="):
            return line.split("=", 1)[1].strip()
    raise KeyError(key)


def test_the_example_units_with_a_passed_unix_socket(tmp_path: Path) -> None:
    assert unit_value(DEPLOY / "moonbridge.socket", "ListenStream") == "/run/moonbridge/app.sock"
    execstart = shlex.split(unit_value(DEPLOY / "moonbridge.service", "ExecStart"))
    assert execstart[0] == "/srv/app/venv/bin/python" and "--listen" not in execstart
    argv = [sys.executable, *(part.replace("/var/log/moonbridge", str(tmp_path))
                              for part in execstart[1:])]
    path = tmp_path / "app.sock"
    launcher = [sys.executable, str(APPS / "activate.py"), f"unix:{path}", "--", *argv]
    with running(launcher, cwd=DEPLOY) as program:
        program.wait_for_line(rb"activated unix:")
        with socket.socket(socket.AF_UNIX) as early:  # before the server is up
            early.settimeout(20)
            early.connect(str(path))
            with RawClient(early) as client:
                client.send(request_bytes(target="/"))
                assert client.read_response().body == b"hello unix over http\n"
        program.wait_for_line(f"listening on unix:{path}".encode())
        assert program.stop(signal.SIGTERM, timeout=60) == 0
    assert path.exists()  # the socket belongs to systemd: left in place
    assert '"GET / HTTP/1.1" 200' in (tmp_path / "access.log").read_text()
    assert "forked worker" in (tmp_path / "error.log").read_text()


def test_a_passed_tcp_socket_and_no_leaked_variables() -> None:
    launcher = [sys.executable, str(APPS / "activate.py"), "tcp", "--",
                *command("--wsgi", f"{APPS / 'wsgi_apps.py'}:validated")]
    with running(launcher) as program:
        port = int(program.wait_for_line(rb"activated port (\d+)").group(1))
        assert get_json(port, "/listen-env") == []  # the variables were removed once read
        program.wait_for_line(f"listening on http://127.0.0.1:{port}/".encode())
        assert get_json(port, "/who")["client"] == "127.0.0.1"
        assert program.stop(signal.SIGTERM) == 0
