"""The benchmark harness still runs: a tiny bounded run against our server and the references.

``bench/run.py`` is run as a user runs it, for one round of 1 s loads and
small uploads, against ours and the two reference servers only (the peers
need the benchmark venv). It must measure every workload without a failure,
write its three outputs, and leave no server behind; interrupted with
SIGINT, it must stop every server it started and exit 130. Skipped when
wrk is not installed (``bench/run.py`` installs it or says how).
"""

from __future__ import annotations

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
             "fairness", "idle", "slowloris")
CROWDS = ("idle", "slowloris")  # their value (normal requests answered in time) may be 0


def harness(output: Path, *extra: str) -> list[str]:
    return [sys.executable, str(ROOT / "bench" / "run.py"), "--servers", "ours",
            "--rounds", "1", "--duration", "1", "--upload-mib", "4", "--multipart-mib", "2",
            "--fairness-wait", "1", "--idle-connections", "50", "--slow-connections", "10",
            "--normal-requests", "2", "--normal-timeout", "2",
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


@pytest.mark.timeout(60)
def test_a_tiny_run_measures_every_workload_and_cleans_up(
        tmp_path: Path, harness_run: list[Program]) -> None:
    with running(harness(tmp_path)) as program:
        harness_run.append(program)
        assert program.proc.wait(45) == 0, program.output()
        program.drain_output()
    servers = announced(program)
    assert set(servers) == {"ours", "limit", "sink"}
    assert all(refused(port) for port, _pid in servers.values())
    assert not any(Path(f"/proc/{pid}").exists() for _port, pid in servers.values())

    data = json.loads((tmp_path / "latest.json").read_text())["data"]
    assert set(data) == set(WORKLOADS)
    for workload, by_server in data.items():
        for server, rounds in by_server.items():
            (measured,) = rounds
            assert measured["error"] == "", (workload, server, measured)
            if workload in CROWDS:
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

    table = (tmp_path / "latest.md").read_text()
    ours = next(line for line in table.splitlines() if line.startswith("| ours (layer3_http) |"))
    ratios = [cell.strip() for cell in ours.strip("|").split("|")[1:]]
    assert len(ratios) == len(WORKLOADS) and all(re.fullmatch(r"\d+\.\d\d", r) for r in ratios)
    assert "Goals for our server" in table
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
