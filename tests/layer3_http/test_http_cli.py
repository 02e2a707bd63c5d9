"""The command line ``python -m layer3_http``: targets, listeners, exit codes.

Each test starts the real command in its own process group (killed and
reaped by PID afterwards) and checks what it prints, what it serves, and
how it exits.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from http_support import TEST_APP, RawClient, request_bytes
from support import ROOT, free_port, running

PYTHON = [sys.executable, "-m", "layer3_http"]
ENV = {"PYTHONPATH": str(ROOT)}


def run_quick(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a command line that must end by itself (an error) within the bound."""
    return subprocess.run([*PYTHON, *args], capture_output=True, timeout=30, cwd=cwd or ROOT,
                          env={**os.environ, **ENV}, stdin=subprocess.DEVNULL)


def get(port: int, target: str = "/hello") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        client = RawClient(sock)
        client.send(request_bytes(target=target))
        return client.read_response().body


def test_script_with_an_explicit_callback_name() -> None:
    with running([*PYTHON, f"{TEST_APP}:hello", "--listen", "127.0.0.1:0"]) as program:
        port = program.wait_for_port()
        assert get(port, "/anything") == b"hello\n"  # every path answered by hello()


def test_module_and_callback(tmp_path: Path) -> None:
    (tmp_path / "mymodule.py").write_text(
        "def handle(request):\n"
        "    request.send_status(200)\n"
        "    request.send_data('from a module')\n")
    argv = [*PYTHON, "mymodule:handle", "--listen", "127.0.0.1:0"]
    with running(argv, cwd=tmp_path) as program:
        assert get(program.wait_for_port()) == b"from a module"


def test_fixed_port_prints_the_url_and_sigterm_stops_with_0() -> None:
    port = free_port()
    with running([*PYTHON, str(TEST_APP), "--listen", f"127.0.0.1:{port}"]) as program:
        program.wait_for_line(rf"listening on http://127\.0\.0\.1:{port}/".encode())
        assert get(port) == b"hello\n"
        assert program.stop(signal.SIGTERM) == 0


def test_tcp_and_unix_listeners_together(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    argv = [*PYTHON, str(TEST_APP), "--listen", "127.0.0.1:0", "--listen", f"unix:{path}"]
    with running(argv) as program:
        port = program.wait_for_port()
        program.wait_for_line(f"listening on unix:{path}".encode())
        assert get(port) == b"hello\n"
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(20)
            sock.connect(str(path))
            client = RawClient(sock)
            client.send(request_bytes(target="/echo"))
            assert b'"path": "echo"' in client.read_response().body
        assert program.stop() == 0
    assert not path.exists()  # the socket file is removed at exit


def test_workers_option_forks_that_many() -> None:
    argv = [*PYTHON, str(TEST_APP), "--listen", "127.0.0.1:0", "--workers", "3"]
    with running(argv) as program:
        program.wait_for_port()
        start = 0
        for _ in range(3):  # the n-th "forked worker" line, as it comes
            program.wait_for_line(rb"forked worker", start=start)
            start = 1 + next(index for index in range(start, len(program.lines))
                             if b"forked worker" in program.lines[index])
        assert sum(b"forked worker" in line for line in program.lines) == 3


def test_http_options_from_the_command_line() -> None:
    argv = [*PYTHON, str(TEST_APP), "--listen", "127.0.0.1:0", "--request-body-size-limit", "10",
            "--idle-timeout", "none", "--static-header", "X-Frame-Options: DENY"]
    with running(argv) as program:
        port = program.wait_for_port()
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            client = RawClient(sock)
            client.send(request_bytes("POST", "/echo", headers=[
                ("Host", "t"), ("Content-Length", "11")], body=b"x" * 11))
            response = client.read_response()
        assert response.status == 413 and response.header("X-Frame-Options") == "DENY"


def test_second_instance_with_the_same_pidfile_exits_2(tmp_path: Path) -> None:
    pidfile = tmp_path / "server.pid"
    argv = [*PYTHON, str(TEST_APP), "--listen", "127.0.0.1:0", "-p", str(pidfile)]
    with running(argv) as program:
        program.wait_for_port()
        program.wait_for_line(rb"forked worker")
        assert pidfile.read_text().strip() == str(program.pid)
        second = run_quick(str(TEST_APP), "--listen", "127.0.0.1:0", "-p", str(pidfile))
        assert second.returncode == 2 and b"already running" in second.stderr
        assert program.stop() == 0
    assert not pidfile.exists()


def test_logfile_option(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    argv = [*PYTHON, str(TEST_APP), "--listen", "127.0.0.1:0", "-l", str(log)]
    with running(argv) as program:
        port = program.wait_for_port()
        assert get(port, "/fail") == b"500 Internal Server Error\n"
        assert program.stop() == 0
    text = log.read_text()
    assert "forked worker" in text and "RuntimeError: this handler fails on purpose" in text


@pytest.mark.parametrize(("args", "message"), [
    ((), b"give either a TARGET or --static DIR"),
    ((str(TEST_APP), "--static", "."), b"give either a TARGET or --static DIR"),
    ((str(TEST_APP), "--listen", "nowhere"), b"--listen wants HOST:PORT"),
    ((str(TEST_APP), "--stall-timeout", "0"), b"stall_timeout must be"),
    ((str(TEST_APP), "--chunk-size", "0"), b"chunk_size must be"),
    ((str(TEST_APP), "--static-header", "Content-Length: 3"), b"cannot set Content-Length"),
    ((str(TEST_APP), "--workers", "0"), b"min_fork must be"),
    (("no/such/script.py",), b"no such script"),
    (("no_such_module_here:app",), b"no such module"),
    ((f"{TEST_APP}:missing",), b"has no callable 'missing'"),
    (("--no-such-option",), b"unrecognized arguments"),
    ((str(TEST_APP), "--static-dotfiles"), b"--static-dotfiles needs --static"),
    ((str(TEST_APP), "--forwarded-header", "X-Real-IP"), b"invalid choice"),
])
def test_command_line_mistakes_exit_1(args: tuple[str, ...], message: bytes) -> None:
    result = run_quick(*args)
    assert result.returncode == 1, result.stderr
    assert message in result.stderr


def test_a_script_that_fails_exits_3(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("raise RuntimeError('broken on purpose')\n")
    result = run_quick(str(script))
    assert result.returncode == 3 and b"broken on purpose" in result.stderr


def test_a_port_in_use_exits_3() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = run_quick(str(TEST_APP), "--listen", f"127.0.0.1:{taken.getsockname()[1]}")
    assert result.returncode == 3 and b"cannot listen" in result.stderr


def test_help_lists_the_options() -> None:
    result = run_quick("--help")
    assert result.returncode == 0
    for option in (b"--listen", b"--static", b"--static-dotfiles", b"--forwarded-header",
                   b"--workers", b"--pre-fork", b"--idle-timeout",
                   b"--pidfile", b"--logfile", b"--background"):
        assert option in result.stdout
