#!/usr/bin/env python3
"""The hostile suite: the server's known attacks, each beside a normal client, as a table.

By default it starts its own two servers (``python -m layer3_http --static
DIR`` over a temporary folder, and ``python -m layer3_http
bench/_hostile_app.py:app``, each with 2 workers on a free loopback port),
runs every attack of `_hostile_suite.ATTACKS` against the one it needs,
stops them, and prints one row per attack: what the server did, the normal
client's worst latency, the peak memory of the master and of the workers,
the descriptors before and after, and a verdict. With ``--target
HOST:PORT --master-pid PID`` it attacks a server that is already running
instead (loopback addresses only; the attacks that need the application's
routes then ask the target for them, and their checks see its answers).

Usage::

    python3 bench/hostile.py                 # every attack, a few minutes
    python3 bench/hostile.py --quick         # every attack briefly, under a minute
    python3 bench/hostile.py --markdown      # the table as Markdown
    python3 bench/hostile.py --target 127.0.0.1:8000 --master-pid 1234

The exit status is 0 even when rows fail (it is a report), unless
``--strict``: then 1 if any row fails. A wrong command line exits 2.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _hostile_net import check_loopback
from _hostile_procs import Server, Target, alive, own_servers
from _hostile_suite import ATTACKS, FULL, QUICK, Row, run_attack

COLUMNS = ("attack", "server did", "normal worst ms", "master MiB peak (+growth)",
           "worker MiB peak (+growth)", "fds before -> after", "verdict")


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="bench/hostile.py", description=__doc__.split("\n")[0])
    cli.add_argument("--quick", action="store_true", help="run each attack briefly")
    cli.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    cli.add_argument("--strict", action="store_true", help="exit 1 if any row fails")
    cli.add_argument("--target", metavar="HOST:PORT", help="attack this running server")
    cli.add_argument("--master-pid", metavar="PID", type=int,
                     help="with --target: the PID of its master")
    cli.add_argument("--only", metavar="TEXT", action="append", default=[],
                     help="run only the attacks whose name contains TEXT (repeatable)")
    cli.add_argument("--json", metavar="FILE", help="also write the rows (and PIDs) as JSON")
    cli.add_argument("--list", action="store_true", help="list the attacks and exit")
    return cli


def parse_target(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit():
        raise ValueError(f"--target wants HOST:PORT, not {text!r}")
    return check_loopback(host), int(port)


def cells(row: Row) -> list[str]:
    worst = f"{row.normal_worst_ms:.0f}"
    if row.normal_failed:
        worst += f" ({row.normal_failed} failed)"
    did = row.server_did + (f"; {row.workers_died} worker(s) died" if row.workers_died else "")
    return [row.attack, did, worst,
            f"{row.master_peak_mib:.1f} (+{row.master_growth_mib:.1f})",
            f"{row.worker_peak_mib:.1f} (+{row.worker_growth_mib:.1f})",
            f"{row.fds_before} -> {row.fds_after}", row.verdict]


def table(rows: Sequence[Row], markdown: bool) -> str:
    lines = [list(COLUMNS), *(cells(row) for row in rows)]
    if markdown:
        escape = [[cell.replace("|", "\\|") for cell in line] for line in lines]
        out = ["| " + " | ".join(escape[0]) + " |", "|" + " --- |" * len(COLUMNS)]
        return "\n".join([*out, *("| " + " | ".join(line) + " |" for line in escape[1:])])
    widths = [max(len(line[index]) for line in lines) for index in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths,
                                                                          strict=True)).rstrip()
                     for line in lines)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10, cwd=Path(__file__).parent,
                              check=False).stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def _raise_descriptor_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(FULL.idle, QUICK.idle) + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        top = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (top, hard))


def main(argv: Sequence[str] | None = None) -> int:
    cli = parser()
    arguments = cli.parse_args(argv)
    attacks = [attack for attack in ATTACKS
               if not arguments.only or any(text in attack.name for text in arguments.only)]
    if not attacks:
        cli.error(f"no attack matches {arguments.only}")
    if arguments.list:
        print("\n".join(attack.name for attack in attacks))
        return 0
    if (arguments.target is None) != (arguments.master_pid is None):
        cli.error("--target and --master-pid go together")
    target: Target | None = None
    if arguments.target is not None:
        try:
            host, port = parse_target(arguments.target)
        except ValueError as error:
            cli.error(str(error))
        if not alive(arguments.master_pid):
            cli.error(f"no process {arguments.master_pid}")
        target = Target(host, port, arguments.master_pid)
    _raise_descriptor_limit()
    scale = QUICK if arguments.quick else FULL
    rows: list[Row] = []
    stopped: list[Server] = []
    print(f"hostile suite at commit {_commit()}, {'quick' if arguments.quick else 'full'} run, "
          f"{len(attacks)} attacks", flush=True)
    if target is not None:
        for attack in attacks:
            rows.append(run_attack(attack, target, scale))
            print(f"  {attack.name}: {rows[-1].verdict}", file=sys.stderr, flush=True)
    else:
        with own_servers(stopped) as servers:
            for name, server in servers.items():
                print(f"{name} server: port {server.target.port}, master {server.process.pid}, "
                      f"workers {' '.join(map(str, server.target.workers()))}", flush=True)
            for attack in attacks:
                rows.append(run_attack(attack, servers[attack.server].target, scale))
                servers[attack.server].remember()
                print(f"  {attack.name}: {rows[-1].verdict}", file=sys.stderr, flush=True)
    print(table(rows, arguments.markdown), flush=True)
    failed = sum(row.verdict != "ok" for row in rows)
    print(f"{len(rows) - failed} of {len(rows)} attacks held", flush=True)
    if arguments.json:
        pids = sorted(pid for server in stopped for pid in server.pids)
        Path(arguments.json).write_text(json.dumps(
            {"rows": [row.as_dict() for row in rows], "pids": pids,
             "pid": os.getpid(), "commit": _commit()}, indent=1))
    return 1 if arguments.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
