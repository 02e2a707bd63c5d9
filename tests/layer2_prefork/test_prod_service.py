"""Layer 2's public command-line helpers, log files that survive rotation, worker recycling.

* `add_server_options` / `ServerOptions` / `serve_command` give a program
  of its own the pidfile, logging and exit codes of ``python -m layer2_prefork``;
* ``--error-log -`` logs to stderr, ``--log-level`` filters;
* after logrotate renamed the log, ``SIGUSR1`` makes the master write to
  the new file (`reopen_logs`);
* ``max_requests`` retires a worker after that many connections, with
  ``max_requests_jitter`` spreading the limits.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path

import pytest
from prefork_support import EXIT, FORK, ask, cli, serve, stats
from support import running

from layer2_prefork import ExitCode, PoolOptions, ServerOptions, reopen_logs
from layer2_prefork.worker._loop import request_limit

OWN = Path(__file__).resolve().parents[1] / "prod_apps" / "own_command.py"


def own(*arguments: str) -> list[str]:
    return [sys.executable, str(OWN), *arguments]


def test_an_own_command_gets_pidfile_logging_and_exit_codes(tmp_path: Path) -> None:
    pidfile, log = tmp_path / "own.pid", tmp_path / "own.log"
    with running(own("-p", str(pidfile), "--error-log", str(log), "--greeting", "hi")) as program:
        port = program.wait_for_port()
        assert ask(port, "").startswith(b"hi ")
        assert int(pidfile.read_text()) == program.pid
        with running(own("-p", str(pidfile))) as second:
            second.wait_for_line(rb"ERROR already running \(pidfile .* held by PID \d+\)")
            assert second.proc.wait(30) == ExitCode.ALREADY_RUNNING
        assert program.stop(signal.SIGTERM) == ExitCode.STOP
    assert not pidfile.exists()
    assert "forked worker" in log.read_text()


def test_error_log_dash_is_stderr_and_log_level_filters(tmp_path: Path) -> None:
    with running(own("--error-log", "-", "--log-level", "warning")) as program:
        port = program.wait_for_port()
        assert ask(port, "").startswith(b"hello ")
        assert program.stop(signal.SIGTERM) == ExitCode.STOP
    assert "forked worker" not in program.output()  # INFO lines filtered
    with running(own("-l", "-")) as program:
        program.wait_for_line(rb"INFO pool 0: forked worker")
        assert program.stop(signal.SIGTERM) == ExitCode.STOP


def test_an_unopenable_log_exits_3() -> None:
    with running(own("--error-log", "/no/such/dir/log")) as program:
        program.wait_for_line(rb"own_command: error: cannot open the log")
        assert program.proc.wait(30) == ExitCode.STARTUP_ERROR


def test_server_options_default() -> None:
    options = ServerOptions()
    assert (options.graceful_timeout, options.logfile, options.background) == (30.0, None, False)


def test_sigusr1_reopens_a_rotated_log_file(tmp_path: Path) -> None:
    log, rotated = tmp_path / "server.log", tmp_path / "server.log.1"
    with running(cli("-s", "-l", str(log), str(Path(__file__).parent / "scripts" / "server.py"),
                     "pre_fork=1")) as program:
        port = program.wait_for_port()
        assert ask(port, "pid").strip().isdigit()  # the master loop runs: signals are handled
        log.rename(rotated)  # what logrotate does first
        program.proc.send_signal(signal.SIGUSR1)  # handled before the SIGTERM that follows
        assert program.stop(signal.SIGTERM) == ExitCode.STOP
    assert "SIGUSR1" not in rotated.read_text()
    text = log.read_text()
    assert "SIGUSR1: 1 log file(s) reopened" in text and "INFO stopped" in text


def test_reopen_logs_reopens_plain_and_watched_file_handlers(tmp_path: Path) -> None:
    target = logging.getLogger("test_prod_service.reopen")
    target.propagate = False
    plain = logging.FileHandler(tmp_path / "plain.log")
    watched = logging.handlers.WatchedFileHandler(tmp_path / "watched.log")
    for handler in (plain, watched):
        target.addHandler(handler)
    try:
        target.warning("before")
        for name in ("plain", "watched"):
            (tmp_path / f"{name}.log").rename(tmp_path / f"{name}.log.1")
        assert reopen_logs() >= 2
        target.warning("after")
        for name in ("plain", "watched"):
            assert (tmp_path / f"{name}.log.1").read_text() == "before\n"
            assert (tmp_path / f"{name}.log").read_text() == "after\n"
    finally:
        for handler in (plain, watched):
            target.removeHandler(handler)
            handler.close()


def test_max_requests_retires_a_worker_after_that_many_connections() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01",
               "max_requests=3") as server:
        server.wait(stats(total=1, idle=1))
        pids = [int(ask(server.port, "pid")) for _ in range(7)]
        assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5] != pids[6]
        server.wait(rb"served 3 requests \(max_requests\); retiring")
        _, exited = server.wait(EXIT)
        assert exited.group(3) == b"0"  # a normal exit: replaced at once, not a failure
        assert len(server.matches(FORK)) >= 3


def test_max_requests_jitter_spreads_the_limits() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=1", "fork_delay=0.01",
               "max_requests=1", "max_requests_jitter=3") as server:
        server.wait(stats(total=1, idle=1))
        pids = [int(ask(server.port, "pid")) for _ in range(40)]
    runs: list[int] = []
    for index, pid in enumerate(pids):
        if index and pid == pids[index - 1]:
            runs[-1] += 1
        else:
            runs.append(1)
    complete = runs[:-1]  # the last worker may not have reached its limit
    assert all(1 <= length <= 4 for length in complete), runs
    assert len(set(complete)) > 1, runs  # 4 equal limits in a row is likely; 10 are not


def test_request_limit_and_option_checks() -> None:
    assert request_limit(None, 5) is None and request_limit(7, 0) == 7
    assert {request_limit(1, 2) for _ in range(200)} == {1, 2, 3}
    with pytest.raises(ValueError, match="max_requests must be an int >= 1"):
        PoolOptions(max_requests=0)
    with pytest.raises(ValueError, match="max_requests_jitter must be an int >= 0"):
        PoolOptions(max_requests=5, max_requests_jitter=-1)
