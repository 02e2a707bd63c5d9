"""The benchmark harness still runs: a tiny bounded run against our server and the references.

``bench/run.py`` is run as a user runs it, for one round of 1 s loads and
small uploads, against ours and the two reference servers only (the peers
need the benchmark venv). It must measure every workload without a failure,
the hostile-client workloads in their quick form too, write its three
outputs, and leave no server behind; interrupted with SIGINT, it must stop
every server it started and exit 130; a peer that is not installed is
skipped with a line saying so, and the run goes on. Skipped when wrk is not
installed (``bench/run.py`` installs it or says how).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import ROOT, Program, running

pytestmark = pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")

READY = re.compile(rb"bench: (\S+) ready on port (\d+) \(pid (\d+),")
WORKLOADS = ("keepalive", "one", "close", "upload-length", "upload-chunked", "multipart",
             "fairness", "idle", "slowloris", "never-close", "slow-reader",
             "slow-reader-static", "slow-upload", "upload-256-chunked")
CROWDS = ("idle", "slowloris")  # their value (normal requests answered in time) may be 0
HOSTILE = {"never-close": ("close", "malformed"), "slow-reader": ("reader",),
           "slow-reader-static": ("reader",), "slow-upload": ("uploader",)}
ATTACKERS = 3


def harness(output: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "bench" / "run.py"), "--servers", "ours",
            "--rounds", "1", "--duration", "1", "--upload-mib", "4", "--multipart-mib", "2",
            "--fairness-wait", "1", "--idle-connections", "50", "--slow-connections", "10",
            "--normal-requests", "2", "--normal-timeout", "2",
            "--attackers", str(ATTACKERS), "--attack-watch", "1", "--big-upload-mib", "8",
            "--python", sys.executable, "--no-install",
            "--output", str(output), *extra]


def announced(program: Program) -> dict[str, tuple[int, int]]:
    """Server name -> (port, pid) from the harness's ``ready`` lines."""
    found = {}
    for line in program.lines:
        match = READY.search(line)
        if match:
            found[match.group(1).decode()] = (int(match.group(2)), int(match.group(3)))
    return found


def refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


@pytest.fixture
def harness_run() -> Iterator[list[Program]]:
    """Programs started by a test; afterwards any server session they left is killed."""
    started: list[Program] = []
    yield started
    for program in started:
        for _port, pid in announced(program).values():
            try:
                if os.getsid(pid) == pid:
                    os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


@pytest.mark.timeout(120)
def test_a_tiny_run_measures_every_workload_and_cleans_up(
        tmp_path: Path, harness_run: list[Program]) -> None:
    with running(harness(tmp_path)) as program:
        harness_run.append(program)
        assert program.proc.wait(100) == 0, program.output()
        program.drain_output()
    servers = announced(program)
    assert set(servers) == {"ours", "ours-static", "limit", "sink"}
    assert all(refused(port) for port, _pid in servers.values())
    assert not any(Path(f"/proc/{pid}").exists() for _port, pid in servers.values())

    data = json.loads((tmp_path / "latest.json").read_text())["data"]
    assert set(data) == set(WORKLOADS)
    for workload, by_server in data.items():
        for server, rounds in by_server.items():
            (measured,) = rounds
            assert measured["error"] == "", (workload, server, measured)
            if workload in CROWDS or workload in HOSTILE:
                assert measured["value"] >= 0, (workload, server, measured)
            else:
                assert measured["value"] > 0, (workload, server, measured)
    assert data["fairness"]["limit"][0]["value"] == 16  # the limit server answers everyone
    for crowd in CROWDS:
        assert data[crowd]["limit"][0]["value"] == 2, data[crowd]["limit"]
        # Our master holds idle and slow connections, so the normal client is answered.
        assert data[crowd]["ours"][0]["extra"]["normal_answered"] == 2, data[crowd]["ours"]
    assert data["idle"]["limit"][0]["extra"]["idle_opened"] == 50
    assert data["upload-length"]["ours"][0]["extra"]["rss_mib"] >= 0
    assert set(data["slow-reader-static"]) == {"limit", "ours-static"}
    assert "ours-static" not in data["slow-reader"]
    for workload, kinds in HOSTILE.items():
        for server, ((measured),) in data[workload].items():
            extra = measured["extra"]
            assert extra["normal_answered"] + extra["normal_timeouts"] \
                + extra["normal_errors"] == 2, (workload, server, extra)
            for kind in kinds:
                assert extra[f"{kind}_opened"] == ATTACKERS, (workload, server, extra)
                assert len(measured["detail"][f"{kind}_release_s"]) == ATTACKERS
    # The limit server is never pinned; it closes after a Connection: close answer (so the
    # watch sees it let go) and holds every other connection (so the watch sees it hold).
    limit = {w: data[w]["limit"][0] for w in HOSTILE}
    assert all(m["value"] == 2 for m in limit.values()), limit
    assert limit["never-close"]["extra"]["close_released"] == ATTACKERS, limit
    assert limit["never-close"]["extra"]["close_release_max_s"] < 1, limit
    assert limit["never-close"]["detail"]["malformed_release_s"] == [None] * ATTACKERS, limit
    assert limit["slow-upload"]["extra"]["uploader_bytes_sent"] > 0, limit
    reader = data["slow-reader"]["ours"][0]["extra"]
    assert reader["reader_kib_received"] > 0, reader  # a 16 MiB answer began to flow
    assert data["upload-256-chunked"]["ours"][0]["extra"]["seconds"] > 0

    table = (tmp_path / "latest.md").read_text()
    ours = next(line for line in table.splitlines() if line.startswith("| ours (layer3_http) |"))
    ratios = [cell.strip() for cell in ours.strip("|").split("|")[1:]]
    assert len(ratios) == len(WORKLOADS)
    assert all(re.fullmatch(r"\d+\.\d\d", r) for w, r in zip(WORKLOADS, ratios, strict=True)
               if w != "slow-reader-static"), ratios
    assert "Goals for our server" in table and "Hostile clients" in table
    root = ET.parse(tmp_path / "latest.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}title") is not None


@pytest.mark.timeout(60)
def test_ctrl_c_stops_every_server_it_started(tmp_path: Path,
                                              harness_run: list[Program]) -> None:
    with running(harness(tmp_path, "--workloads", "keepalive", "--duration", "5")) as program:
        harness_run.append(program)
        program.wait_for_line(rb"bench: ours ready on port", timeout=30)
        program.wait_for_line(rb"bench: limit ready on port", timeout=30)
        servers = announced(program)
        assert not any(refused(port) for port, _pid in servers.values())
        os.kill(program.pid, signal.SIGINT)
        assert program.proc.wait(20) == 130, program.output()
        program.drain_output()
    assert all(refused(port) for port, _pid in servers.values())
    assert not any(Path(f"/proc/{pid}").exists() for _port, pid in servers.values())
    assert not (tmp_path / "latest.md").exists()


@pytest.mark.timeout(60)
@pytest.mark.skipif(importlib.util.find_spec("bjoern") is not None
                    or importlib.util.find_spec("granian") is not None,
                    reason="the peers are installed in this interpreter")
def test_a_peer_that_is_not_installed_is_skipped_and_the_run_goes_on(
        tmp_path: Path, harness_run: list[Program]) -> None:
    command = harness(tmp_path, "--workloads", "one")
    command[command.index("--servers") + 1] = "ours,bjoern,granian"
    with running(command) as program:
        harness_run.append(program)
        assert program.proc.wait(45) == 0, program.output()
        program.drain_output()
    output = program.output()
    for peer in ("bjoern", "granian"):
        assert f"bench: skipping {peer}: {peer} is not installed in {sys.executable}" in output
    data = json.loads((tmp_path / "latest.json").read_text())["data"]
    assert set(data["one"]) == {"ours", "limit"}
