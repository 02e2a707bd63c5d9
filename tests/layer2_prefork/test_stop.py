"""Stopping: graceful (SIGTERM) loses no accepted connection; fast (SIGINT, SIGHUP) kills."""

from __future__ import annotations

import signal
import socket
import sys
import time
from pathlib import Path

import pytest
from prefork_support import SERVER, cli, connect, read_line, serve, stats
from support import running


def hold(port: int) -> socket.socket:
    sock = connect(port)
    sock.sendall(b"hold\n")
    assert read_line(sock).startswith(b"held")
    return sock


def test_graceful_stop_under_load_loses_no_accepted_connection() -> None:
    with serve("pre_fork=0", "min_fork=3", "max_fork=3", "fork_delay=0.01") as server:
        server.wait(stats(total=3, idle=3))
        held = [hold(server.port) for _ in range(3)]
        queued = [connect(server.port) for _ in range(20)]  # no idle worker: in the backlog
        for sock in queued:
            sock.sendall(b"pid\n")
        mark = server.mark()
        server.program.proc.send_signal(signal.SIGTERM)
        server.wait(rb"graceful stop \(SIGTERM\)", mark)
        with pytest.raises(ConnectionRefusedError):
            connect(server.port)  # the listener is closed at once
        for sock in held:
            sock.sendall(b"go\n")
            assert read_line(sock).startswith(b"done")
        for sock in queued:
            assert read_line(sock).strip().isdigit()  # accepted before the stop: served
        assert server.stop(signal.SIGTERM) == 0
        server.wait(rb"INFO stopped$", mark)
        for sock in [*held, *queued]:
            sock.close()


def test_the_graceful_deadline_kills_workers_still_busy() -> None:
    with serve("pre_fork=1", "min_fork=1", "max_fork=2", "fork_delay=0.01",
               options=("-s", "-d", "-g", "0.3")) as server:  # -d: a stop's worker lines
        server.wait(stats(total=1, idle=1))
        with hold(server.port) as stuck:
            mark = server.mark()
            started = time.monotonic()
            assert server.stop(signal.SIGTERM) == 0
            elapsed = time.monotonic() - started
            assert 0.3 * 0.8 <= elapsed < 0.3 + 10.0
            server.wait(rb"fast stop \(the graceful stop deadline passed\)", mark)
            server.wait(rb"was killed by signal 9", mark)
            assert stuck.recv(100) == b""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_fast_stop_kills_busy_workers(sig: signal.Signals) -> None:
    with serve("pre_fork=1", "min_fork=1", "fork_delay=0.01", options=("-s", "-d")) as server:
        server.wait(stats(total=1, idle=1))
        with hold(server.port) as busy:
            mark = server.mark()
            assert server.stop(sig) == 0
            server.wait(rf"fast stop \({sig.name}\)".encode(), mark)
            server.wait(rb"was killed by signal 9", mark)
            assert busy.recv(100) == b""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_unix_socket_files_are_removed_at_exit(tmp_path: Path, sig: signal.Signals) -> None:
    path = tmp_path / "server.sock"
    with serve(f"local={path}", "pre_fork=1") as server:
        server.wait(stats(total=2, idle=2))
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(20)
            client.connect(str(path))
            client.sendall(b"echo over unix\n")
            assert read_line(client) == b"over unix\n"
        assert server.stop(sig) == 0
    assert not path.exists()


def test_a_main_listener_runs_once_then_the_server_stops() -> None:
    argv = cli("-s", str(SERVER), "tcp=none", "main=batch", "pre_fork=1", "fork_delay=0.01")
    with running(argv) as program:
        assert program.proc.wait(20) == 0
        program.drain_output(0.2)
        output = program.output()
        assert output.count("main batch ") == 1
        assert "graceful stop (the main listener ended)" in output
        assert output.rstrip().endswith("INFO stopped")


def test_a_script_run_directly_stops_on_sigterm_with_exit_code_0() -> None:
    with running([sys.executable, str(SERVER), "pre_fork=1"]) as program:
        port = program.wait_for_port()
        program.wait_for_line(rb"INFO pool 0: forked worker")
        with connect(port) as sock:
            sock.sendall(b"echo direct\n")
            assert read_line(sock) == b"direct\n"
        assert program.stop(signal.SIGTERM) == 0
