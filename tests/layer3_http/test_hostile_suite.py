"""The hostile suite (``bench/hostile.py``) runs, reports every attack, and cleans up.

``bench/hostile.py --quick`` is run once for the module, as a user runs
it: it starts its own two servers, runs every attack briefly beside its
normal client, stops the servers and prints the table. The tests check:

* the table is well formed: one row per attack the tool lists, every
  column filled, the same rows in the JSON it writes;
* every process the suite started is gone afterwards, and for every
  attack the servers' descriptors came back to their count before it;
* the verdict of each row: the attacks the server withstands today must
  say ``ok``; the ones that still hurt it are marked ``xfail`` (not
  strict) with the reason, so a fix shows up as an unexpected pass;
* ``--target`` attacks a server that is already running and leaves it
  running, and refuses any address that is not a loopback one;
* the page's last section (docs/security.md, "The hostile suite") shows a
  row for every attack and uses only options the tool has.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_support import http_server
from prod_apps.prod_support import get
from support import ROOT, running

TOOL = ROOT / "bench" / "hostile.py"
SECURITY = ROOT / "docs" / "security.md"
RUN_TIMEOUT = 150.0
COLUMNS = 7

pytestmark = pytest.mark.timeout(240)

# Rows that still hurt the current server (not strict: a fix makes them pass).
STILL_HURTS: dict[str, str] = {}
"""Attacks that still hurt the server (their verdict is expected to fail); every other
row must say ``ok``."""


def tool(*arguments: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(TOOL), *arguments], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, check=False)


def attack_names() -> list[str]:
    listed = tool("--list")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout.split("\n")[:-1]


NAMES = attack_names()


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run ``bench/hostile.py --quick --json FILE`` once; yield its output and JSON."""
    output = tmp_path_factory.mktemp("hostile") / "rows.json"
    started = time.monotonic()
    with running([sys.executable, str(TOOL), "--quick", "--json", str(output)]) as program:
        program.proc.wait(RUN_TIMEOUT)
        program.drain_output(0.5)
        result = json.loads(output.read_text())
        result["rc"] = program.proc.returncode
        result["output"] = program.output()
        result["elapsed"] = time.monotonic() - started
        yield result


def table_rows(output: str) -> dict[str, str]:
    """The table's lines by attack name (the text table from the tool's output)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("attack  "))
    return {name: line for line in lines[start + 1:] for name in NAMES
            if line.startswith(name + "  ")}


def test_the_table_has_a_row_for_every_attack(quick_run: dict[str, Any]) -> None:
    assert quick_run["rc"] == 0, quick_run["output"]
    rows = quick_run["rows"]
    assert [row["attack"] for row in rows] == NAMES
    assert set(table_rows(quick_run["output"])) == set(NAMES), quick_run["output"]
    for row in rows:
        assert row["server_did"] and row["server_did"] != "nothing sent", row
        assert row["verdict"] == "ok" or row["verdict"].startswith("FAIL: "), row
        assert row["normal_worst_ms"] >= 0 and row["master_peak_mib"] > 0, row
        assert row["worker_peak_mib"] > 0 and row["fds_before"] > 0, row
    held = sum(row["verdict"] == "ok" for row in rows)
    assert f"{held} of {len(rows)} attacks held" in quick_run["output"]
    assert quick_run["elapsed"] < 120, quick_run["elapsed"]


def test_every_process_is_gone_and_descriptors_came_back(quick_run: dict[str, Any]) -> None:
    assert len(quick_run["pids"]) >= 6  # two masters, at least two workers each
    assert [pid for pid in quick_run["pids"] if not gone(pid)] == []
    moved = [(row["attack"], row["fds_before"], row["fds_after"]) for row in quick_run["rows"]
             if row["fds_before"] != row["fds_after"]]
    assert moved == []


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(strict=False, reason=STILL_HURTS[name]))
    if name in STILL_HURTS else name for name in NAMES])
def test_verdict(quick_run: dict[str, Any], name: str) -> None:
    row = next(row for row in quick_run["rows"] if row["attack"] == name)
    assert row["verdict"] == "ok", row


def test_every_known_failure_names_an_attack() -> None:
    assert set(STILL_HURTS) <= set(NAMES)


def test_target_mode_attacks_a_running_server_and_leaves_it_running(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("hello\n")
    with http_server("--static", str(tmp_path), "--workers", "2", app="") as server:
        output = tmp_path / "rows.json"
        result = tool("--quick", "--target", f"127.0.0.1:{server.port}", "--master-pid",
                      str(server.program.pid), "--only", "slow head 1 KiB",
                      "--only", "Content-Length with chunked", "--json", str(output),
                      timeout=60)
        assert result.returncode == 0, result.stderr
        rows = json.loads(output.read_text())["rows"]
        assert [(row["attack"], row["verdict"]) for row in rows] == [
            ("slow head 1 KiB", "ok"), ("Content-Length with chunked", "ok")]
        assert server.program.proc.poll() is None
        assert get(server.port, "/")[0] == 200


@pytest.mark.parametrize("address", ["192.0.2.1:80", "[2001:db8::1]:80", "localhost:80"])
def test_target_must_be_a_loopback_address(address: str) -> None:
    result = tool("--target", address, "--master-pid", str(os.getpid()))
    assert result.returncode == 2
    assert "loopback" in result.stderr


def test_strict_exits_1_when_a_row_fails(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("hello\n")
    (tmp_path / ".env").write_text("SECRET=1\n")
    with http_server("--static", str(tmp_path), "--workers", "2", app="") as server:
        result = tool("--quick", "--strict", "--target", f"127.0.0.1:{server.port}",
                      "--master-pid", str(server.program.pid), "--only", "dotfile")
    assert result.returncode == (1 if "FAIL" in result.stdout else 0), result.stdout


def _section() -> str:
    text = SECURITY.read_text()
    marker = "\n## The hostile suite\n"
    assert marker in text
    return text[text.index(marker):]


def test_the_security_page_ends_with_the_suite_and_its_full_table() -> None:
    section = _section()
    assert "\n## " not in section[1:], "the hostile suite is the page's last section"
    rows = [line for line in section.splitlines()
            if line.startswith("| ") and not line.startswith("| --- ")]
    names = [line[2:].split(" | ")[0] for line in rows[1:]]
    assert names == [name.replace("|", "\\|") for name in NAMES]
    assert all(line.count(" | ") == COLUMNS - 1 for line in rows)
    assert re.search(r"commit\s+`[0-9a-f]{7,}`", section)


def test_the_commands_on_the_page_use_options_the_tool_has() -> None:
    help_text = tool("--help").stdout
    commands = re.findall(r"python3? bench/hostile\.py([^\n`]*)", _section())
    assert commands
    for command in commands:
        for option in re.findall(r"(?<!\S)--[a-z-]+", command):
            assert option in help_text, option
