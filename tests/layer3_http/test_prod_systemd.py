"""The example systemd units run as written: socket activation of ``python -m layer3_http``.

The test plays systemd for ``docs/examples/deploy/moonbridge.socket`` and
``moonbridge.service``: it binds the Unix socket the socket unit names (in
a temporary folder), then runs the service's ``ExecStart`` line with the
socket passed the systemd way (``tests/prod_apps/activate.py``), the paths
moved into the test's folders. No ``--listen`` is given: the server must
use the passed socket.

The template units ``moonbridge@.socket`` and ``moonbridge@.service`` (one
instance per socket, for several instances behind nginx) are run the same
way, their ``%i`` expanded by the test as systemd would, under systemd's
own ``systemd-socket-activate`` (which binds the socket, waits for the
first client and then starts the service, as ``Accept=no`` does). Every
unit file passes ``systemd-analyze verify`` without a warning, and the
services' ``KillMode=mixed`` is shown to matter: ``SIGTERM`` to the
master alone lets a request under way finish, ``SIGTERM`` to every
process of the service (systemd's default, ``KillMode=control-group``)
cuts it off.
"""

from __future__ import annotations

import fnmatch
import http.client
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from http_support import RawClient, request_bytes
from prod_apps.prod_support import APPS, DEPLOY, command, get_json
from support import running

UNITS = ["moonbridge.socket", "moonbridge.service", "moonbridge@.socket", "moonbridge@.service"]


def unit_value(unit: Path, key: str, instance: str | None = None) -> str:
    """A key's value in a unit file, continuation lines joined, ``%i`` replaced by `instance`."""
    text = unit.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith(key + "="):
            value = line.split("=", 1)[1].strip()
            return value if instance is None else value.replace("%i", instance)
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


def instance_argv(instance: str, logs: Path) -> list[str]:
    """The template service's ``ExecStart`` for `instance`, with its logs in `logs`."""
    execstart = shlex.split(unit_value(DEPLOY / "moonbridge@.service", "ExecStart", instance))
    assert execstart[0] == "/srv/app/venv/bin/python" and "--listen" not in execstart
    return [sys.executable, *(part.replace("/var/log/moonbridge", str(logs))
                              for part in execstart[1:])]


def test_the_template_units_name_one_socket_per_instance() -> None:
    socket_unit, service = DEPLOY / "moonbridge@.socket", DEPLOY / "moonbridge@.service"
    paths = {name: unit_value(socket_unit, "ListenStream", name) for name in ("1", "2", "blue")}
    assert paths == {"1": "/run/moonbridge/app-1.sock", "2": "/run/moonbridge/app-2.sock",
                     "blue": "/run/moonbridge/app-blue.sock"}
    site = (DEPLOY / "nginx-scaleout.conf").read_text()
    assert all(f"server unix:{paths[name]} " in site for name in ("1", "2"))  # nginx's upstream
    assert unit_value(service, "Requires", "1") == "moonbridge@1.socket"
    assert unit_value(service, "ExecReload") == "/bin/kill -USR2 $MAINPID"
    assert unit_value(service, "KillMode") == unit_value(DEPLOY / "moonbridge.service",
                                                        "KillMode") == "mixed"
    graceful = instance_argv("1", Path("/logs"))
    timeout = float(graceful[graceful.index("--graceful-timeout") + 1])
    assert float(unit_value(service, "TimeoutStopSec")) >= timeout + 5  # SIGKILL comes later
    assert "/logs/access-1.log" in graceful and "/logs/error-1.log" in graceful


@pytest.mark.skipif(shutil.which("systemd-socket-activate") is None,
                    reason="systemd-socket-activate is not installed")
def test_two_template_instances_under_systemd_socket_activate(tmp_path: Path) -> None:
    """Each instance on its own socket, started by its first client, as systemd does it."""
    masters = []
    for instance in ("1", "2"):
        path = tmp_path / Path(unit_value(DEPLOY / "moonbridge@.socket", "ListenStream",
                                          instance)).name
        name = unit_value(DEPLOY / "moonbridge@.socket", "FileDescriptorName")
        activate = ["systemd-socket-activate", "--listen", str(path), f"--fdname={name}",
                    "-E", "PYTHONPATH", "-E", "PYTHONUNBUFFERED",  # it passes no other variable
                    *instance_argv(instance, tmp_path)]
        with running(activate, cwd=DEPLOY) as program:
            program.wait_for_line(f"Listening on {path}".encode())
            with socket.socket(socket.AF_UNIX) as first:  # starts the service
                first.settimeout(20)
                first.connect(str(path))
                with RawClient(first) as client:
                    client.send(request_bytes(target="/"))
                    assert client.read_response().body == b"hello unix over http\n"
            program.wait_for_line(f"listening on unix:{path}".encode())
            masters.append(program.pid)  # systemd-socket-activate became the master
            assert program.stop(signal.SIGTERM, timeout=60) == 0
        assert path.exists()  # the socket is the socket unit's: left in place
        assert '"GET / HTTP/1.1" 200' in (tmp_path / f"access-{instance}.log").read_text()
        assert "forked worker" in (tmp_path / f"error-{instance}.log").read_text()
    assert len(set(masters)) == 2


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed")
def test_the_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    """No warning: unknown keys and bad values are only warnings to systemd (exit code 0)."""
    for name in UNITS:  # the same units, their program one that exists here
        text = (DEPLOY / name).read_text().replace("/srv/app/venv/bin/python", sys.executable)
        (tmp_path / name).write_text(text)
    for units in (["moonbridge.socket", "moonbridge.service"],
                  ["moonbridge@1.socket", "moonbridge@1.service"]):
        done = subprocess.run(["systemd-analyze", "verify", *(str(tmp_path / unit)
                                                               for unit in units)],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert (done.returncode, done.stdout + done.stderr) == (0, ""), units


def test_a_broken_unit_fails_the_verification(tmp_path: Path) -> None:
    """The check above can fail: a misspelt value is reported."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    text = (DEPLOY / "moonbridge@.service").read_text().replace(
        "/srv/app/venv/bin/python", sys.executable).replace("KillMode=mixed", "KillMode=mixd")
    (tmp_path / "moonbridge@.service").write_text(text)
    (tmp_path / "moonbridge@.socket").write_text((DEPLOY / "moonbridge@.socket").read_text())
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "moonbridge@1.service")],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert "kill mode" in done.stderr


@pytest.mark.parametrize("kill_mode", ["mixed", "control-group"])
def test_kill_mode_mixed_lets_a_request_under_way_finish(kill_mode: str, tmp_path: Path) -> None:
    """What ``systemctl stop`` does with each KillMode, played on a real server."""
    path = tmp_path / "app.sock"
    app = f"{APPS / 'scaleout_app.py'}:app"
    with running(command("--wsgi", app, "--workers", "1", "--listen", f"unix:{path}")) as server:
        server.wait_for_line(rb"forked worker")
        conn = UnixConnection(str(path))
        conn.request("GET", "/?ms=1500&announce=1")
        worker = int(server.wait_for_line(rb"working on (\d+)").group(1))
        if kill_mode == "mixed":
            os.kill(server.pid, signal.SIGTERM)  # the main process only
        else:
            for pid in (server.pid, worker):  # every process of the service at once
                os.kill(pid, signal.SIGTERM)
        try:
            status: int | str = conn.getresponse().status
        except (OSError, http.client.HTTPException) as error:
            status = type(error).__name__
        conn.close()
        assert server.proc.wait(30) == (0 if kill_mode == "mixed" else server.proc.returncode)
    assert status == (200 if kill_mode == "mixed" else "RemoteDisconnected"), server.output()


class UnixConnection(http.client.HTTPConnection):
    """`http.client` over a Unix socket."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=20)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


def test_the_instances_logrotate_rule_signals_the_masters_alone() -> None:
    """The rule covers every instance's logs and sends SIGUSR1 to the main process only."""
    rule = (DEPLOY / "logrotate-instances.conf").read_text()
    patterns = rule.split("{", 1)[0].split("\n")[-1].split()
    logs = [part for part in instance_argv("7", Path("/var/log/moonbridge"))
            if part.endswith(".log")]
    assert len(logs) == 2 and all(any(fnmatch.fnmatch(log, pattern) for pattern in patterns)
                                  for log in logs)
    command_line = next(line.strip() for line in rule.splitlines()
                        if line.strip().startswith("systemctl "))
    assert shlex.split(command_line) == ["systemctl", "kill", "--kill-whom=main",
                                         "--signal=SIGUSR1", "moonbridge@*.service"]
    if shutil.which("systemctl"):
        help_text = subprocess.run(["systemctl", "--help"], capture_output=True, text=True,
                                   timeout=20).stdout
        assert "--kill-whom=" in help_text  # the option exists in this systemd
