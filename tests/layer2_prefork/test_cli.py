"""The command line: options, exit codes, pidfile locking, logging, background mode."""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from prefork_support import FORK, SCRIPTS, SERVER, ask, cli, serve, stats
from support import running

from layer2_prefork import ExitCode
from layer2_prefork._logging import configure


def exit_code(*arguments: str, cwd: Path | None = None) -> tuple[int, str]:
    """Run the command line to its end; return its exit code and output."""
    with running(cli(*arguments), cwd=cwd) as program:
        code = program.proc.wait(30)
        program.drain_output(0.2)
        return code, program.output()


def test_exit_codes_are_named() -> None:
    assert [(code.name, code.value) for code in ExitCode] == [
        ("STOP", 0), ("COMMAND_LINE", 1), ("ALREADY_RUNNING", 2), ("STARTUP_ERROR", 3),
        ("RUNTIME_ERROR", 4)]


@pytest.mark.parametrize("arguments", [
    (), ("--no-such-option", str(SERVER)), ("-g", "-1", str(SERVER)),
    ("-g", "soon", str(SERVER)), ("-f", "nonsense", str(SERVER)), ("no/such/script.py",),
])
def test_command_line_errors_exit_1(arguments: tuple[str, ...]) -> None:
    code, output = exit_code(*arguments)
    assert code == ExitCode.COMMAND_LINE, output
    assert "error" in output


@pytest.mark.parametrize(("arguments", "says"), [
    ((str(SCRIPTS / "fails.py"),), "RuntimeError: the script failed on purpose"),
    ((str(SCRIPTS / "nolisten.py"),), "no listener"),
    ((str(SERVER), "pre_fork=-1"), "ValueError: pre_fork must be an int >= 0"),
    ((str(SERVER), "max_fork=1", "min_fork=2"), "max_fork (1) must be at least min_fork"),
    (("-l", "/no/such/dir/log", str(SERVER)), "cannot open the log"),
])
def test_start_up_errors_exit_3(arguments: tuple[str, ...], says: str) -> None:
    code, output = exit_code(*arguments)
    assert code == ExitCode.STARTUP_ERROR, output
    assert says in output
    assert "forked worker" not in output  # nothing forked


def test_a_port_in_use_is_a_start_up_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        code, output = exit_code(str(SERVER), f"tcp={taken.getsockname()[1]}")
    assert code == ExitCode.STARTUP_ERROR
    assert "Address already in use" in output


def test_the_script_sees_its_arguments_and_the_command_line_runs_the_master() -> None:
    argv = cli(str(SCRIPTS / "argv.py"), "one", "--two", "-s")
    with running(argv) as program:
        program.wait_for_line(rb"argv \[.*argv\.py', 'one', '--two', '-s'\]")
        port = program.wait_for_port()
        assert ask(port, "") == b"hi\n"
        assert program.stop(signal.SIGTERM) == ExitCode.STOP


def test_a_master_loop_failure_exits_4_and_cleans_up(tmp_path: Path) -> None:
    path = tmp_path / "crash.sock"
    pidfile = tmp_path / "crash.pid"
    argv = cli("-s", "-p", str(pidfile), str(SCRIPTS / "crash_master.py"), str(path))
    with running(argv) as program:
        assert program.proc.wait(30) == ExitCode.RUNTIME_ERROR
        program.drain_output(0.2)
        output = program.output()
    assert "the master loop failed; killing all workers" in output
    assert "RuntimeError: a logging filter failed inside the master" in output
    for line in output.splitlines():
        if match := FORK.search(line.encode()):
            assert not Path(f"/proc/{int(match.group(2))}").exists()
    assert not path.exists()
    assert not pidfile.exists()


def test_a_second_instance_with_the_same_pidfile_exits_2(tmp_path: Path) -> None:
    pidfile = tmp_path / "server.pid"
    with serve("pre_fork=1", options=("-s", "-p", str(pidfile))) as server:
        server.wait(stats(idle=2))
        assert int(pidfile.read_text()) == server.program.pid
        code, output = exit_code("-p", str(pidfile), str(SERVER))
        assert code == ExitCode.ALREADY_RUNNING
        assert f"held by PID {server.program.pid}" in output
        assert int(pidfile.read_text()) == server.program.pid  # left alone
        assert server.stop(signal.SIGTERM) == ExitCode.STOP
    assert not pidfile.exists()


def test_log_file_and_debug(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with serve("pre_fork=1", options=("-d", "-l", str(log))) as server:
        assert int(ask(server.port, "pid")) > 0
        assert server.stop(signal.SIGTERM) == ExitCode.STOP
    text = log.read_text()
    assert "INFO pool 0: forked worker" in text
    assert "DEBUG pool 0 worker" in text and ": GOODBYE" in text  # control messages
    assert "forked worker" not in server.program.output()  # the log went to the file


def test_sigusr1_logs_statistics_without_stats_option() -> None:
    with serve("pre_fork=1", options=()) as server:
        server.wait(rb"forked worker")
        assert not server.matches(rb"stats total=")
        server.program.proc.send_signal(signal.SIGUSR1)
        server.wait(stats())


@contextmanager
def daemon(pidfile: Path) -> Iterator[int]:
    """Kill the detached master (and its session) by PID when the test ends."""
    pid = 0
    try:
        yield 0
    finally:
        if pidfile.exists():
            pid = int(pidfile.read_text())
        for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, 9)):
            try:
                if pid:
                    target()
            except (ProcessLookupError, PermissionError):
                pass


def test_background_mode_detaches_and_writes_the_pidfile(tmp_path: Path) -> None:
    pidfile, log = tmp_path / "daemon.pid", tmp_path / "daemon.log"
    argv = cli("-b", "-p", str(pidfile), "-l", str(log), str(SERVER), "pre_fork=1")
    with daemon(pidfile), running(argv) as program:
        port = program.wait_for_port()
        assert program.proc.wait(30) == ExitCode.STOP  # the foreground parent is done
        master = int(pidfile.read_text())
        assert master != program.pid
        assert os.getsid(master) == master  # a session of its own
        assert int(ask(port, "pid")) > 0
        watch = os.pidfd_open(master)
        try:
            os.kill(master, signal.SIGTERM)
            assert select.select([watch], [], [], 20)[0], "the detached master did not stop"
        finally:
            os.close(watch)
    assert not pidfile.exists()
    assert log.read_text().rstrip().endswith("INFO stopped")


def test_syslog_gets_facility_and_ident(tmp_path: Path) -> None:
    address = str(tmp_path / "log.sock")
    target = logging.getLogger("test_syslog_gets_facility_and_ident")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as syslog:
        syslog.bind(address)
        syslog.settimeout(10)
        handlers = configure(facility="local3", ident="mytest", target=target,
                             syslog_address=address)
        try:
            target.warning("hello syslog")
            message = syslog.recv(4096)
        finally:
            for handler in handlers:
                target.removeHandler(handler)
                handler.close()
    priority = 19 * 8 + 4  # local3, warning
    assert message.startswith(f"<{priority}>mytest[{os.getpid()}]: WARNING hello syslog".encode())


def test_syslog_unavailable_falls_back_to_stderr(tmp_path: Path) -> None:
    target = logging.getLogger("test_syslog_unavailable_falls_back_to_stderr")
    handlers = configure(ident="x", target=target, syslog_address=str(tmp_path / "none"))
    try:
        assert [type(handler) for handler in handlers] == [logging.StreamHandler]
    finally:
        for handler in handlers:
            target.removeHandler(handler)
