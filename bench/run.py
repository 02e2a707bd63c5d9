"""Benchmark our HTTP server against real peers on loopback: the one command.

    python bench/run.py            # the full run (5 rounds, about 20 minutes)
    python bench/run.py --quick    # one short round, to see that everything works
    python bench/run.py --publish  # the full run, then update docs/performance.md

What it does, in order:

1. find wrk (as root, install the Debian package if missing; otherwise say
   how) and the benchmark venv ``bench/.venv`` with the peers (created from
   ``bench/requirements.txt`` if missing, each missing peer installed on its
   own; a peer that cannot be installed or started is skipped with a line
   saying why, see ``_peers``);
2. start every server under test on its own free port on 127.0.0.1, each
   with 2 worker processes where the server has the notion, and wait until
   each answers and has its workers;
3. for each round, for each workload, measure every server in turn, in
   the order A B C ... in odd rounds and ... C B A in even ones, so slow
   drifts of a shared machine hit every server alike;
4. stop every server (also on Ctrl-C, SIGTERM or an error): SIGTERM, then
   SIGKILL to what is left of its process group, every child reaped;
5. write ``bench/results/latest.md`` (the tables), ``latest.json`` (every
   measurement) and ``latest.svg`` (the chart); with ``--publish`` also
   the results section of ``docs/performance.md`` and
   ``docs/diagrams/performance.svg``.

Every figure in the tables is a ratio to the reference server measured in
the same round (see ``_workloads``), summarised over the rounds as median,
min and max.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import _peers
import _plot
import _report
import _wrk
from _clients import ClientError, payload_block
from _servers import ROOT, SERVERS, STATIC_FILE, Running, Server
from _workloads import MIB, WORKLOADS, Measurement, Settings, make_upload_dir, remove_upload_dir

BENCH = ROOT / "bench"
PAGE = ROOT / "docs" / "performance.md"
PAGE_SVG = ROOT / "docs" / "diagrams" / "performance.svg"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.split("\n")[0])
    cli.add_argument("--quick", action="store_true",
                     help="one round of 1 s loads and 32 MiB uploads (a check, not a measurement)")
    cli.add_argument("--rounds", type=int, help="rounds (5; --quick: 1)")
    cli.add_argument("--duration", type=int, help="seconds per wrk load (4; --quick: 1)")
    cli.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    cli.add_argument("--upload-mib", type=int, help="upload size in MiB (256; --quick: 32)")
    cli.add_argument("--multipart-mib", type=int,
                     help="multipart file size in MiB (64; --quick: 16)")
    cli.add_argument("--big-upload-mib", type=int,
                     help="size of the upload-256-chunked upload in MiB (256, also --quick)")
    cli.add_argument("--fairness-wait", type=float,
                     help="seconds the fairness clients wait for an answer (3; --quick: 1.5)")
    cli.add_argument("--idle-connections", type=int,
                     help="idle keep-alive connections held by the idle workload (1000; "
                          "--quick: 200)")
    cli.add_argument("--slow-connections", type=int,
                     help="connections trickling a request head in the slowloris workload "
                          "(100; --quick: 20)")
    cli.add_argument("--normal-requests", type=int,
                     help="requests of the normal client beside the idle or slow crowd "
                          "(20; --quick: 5)")
    cli.add_argument("--normal-timeout", type=float,
                     help="seconds each of those requests (and each idle connection's answer) "
                          "is waited for (2)")
    cli.add_argument("--attackers", type=int,
                     help="hostile connections of each kind in never-close, slow-reader, "
                          "slow-reader-static and slow-upload (8)")
    cli.add_argument("--attack-watch", type=float,
                     help="seconds after they open that the hostile connections are watched "
                          "for the server to let go of them (10; --quick: 5)")
    peers = ",".join(s for s in SERVERS
                     if s not in ("limit", "sink") and not SERVERS[s].companion_of)
    cli.add_argument("--servers", default=peers,
                     help="comma-separated servers to compare; the references (limit, sink) "
                          "are always added, and ours-static with ours when slow-reader-static "
                          "runs (default: all: %(default)s)")
    cli.add_argument("--workloads", default=",".join(WORKLOADS),
                     help="comma-separated workloads (default: all: %(default)s)")
    cli.add_argument("--python", help="interpreter for the servers (default: bench/.venv's, "
                                      "else this one)")
    cli.add_argument("--commit", metavar="REV",
                     help="run our server from this commit (a snapshot made with git archive) "
                          "instead of the working tree")
    cli.add_argument("--baseline", metavar="REV",
                     help="also run our server as of this commit (a snapshot), as the server "
                          "ours-before, measured in the same rounds: before and after in one run")
    cli.add_argument("--output", type=Path, default=BENCH / "results",
                     help="folder for latest.md, latest.json, latest.svg (bench/results)")
    cli.add_argument("--publish", action="store_true",
                     help="also write the results into docs/performance.md and its chart")
    cli.add_argument("--report-only", action="store_true",
                     help="measure nothing: render the tables and chart again from the "
                          "output folder's latest.json (with --publish: publish them)")
    cli.add_argument("--no-install", action="store_true",
                     help="never install anything (wrk, the venv): explain and stop instead")
    return cli


def settings_from(arguments: argparse.Namespace, wrk: str, upload_dir: Path) -> Settings:
    """The `Settings` the options ask for (``--quick`` changes the defaults)."""
    quick = arguments.quick

    def pick(value: float | None, full: float, short: float) -> float:
        return value if value is not None else (short if quick else full)

    return Settings(
        rounds=int(pick(arguments.rounds, 5, 1)),
        duration=int(pick(arguments.duration, 4, 1)),
        threads=arguments.threads,
        upload_bytes=int(pick(arguments.upload_mib, 256, 32)) * MIB,
        multipart_bytes=int(pick(arguments.multipart_mib, 64, 16)) * MIB,
        fairness_wait=pick(arguments.fairness_wait, 3.0, 1.5),
        idle_connections=int(pick(arguments.idle_connections, 1000, 200)),
        slow_connections=int(pick(arguments.slow_connections, 100, 20)),
        normal_requests=int(pick(arguments.normal_requests, 20, 5)),
        normal_timeout=pick(arguments.normal_timeout, 2.0, 2.0),
        big_upload_bytes=int(pick(arguments.big_upload_mib, 256, 256)) * MIB,
        attackers=int(pick(arguments.attackers, 8, 8)),
        attack_watch=pick(arguments.attack_watch, 10.0, 5.0),
        wrk=wrk, upload_dir=upload_dir, block=payload_block())


def choose(arguments: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The servers (references included, in table order) and workloads asked for."""
    workloads = [w for w in arguments.workloads.split(",") if w]
    wanted = {s for s in arguments.servers.split(",") if s}
    unknown = [w for w in workloads if w not in WORKLOADS] + [s for s in wanted if s not in SERVERS]
    if unknown:
        raise SystemExit(f"bench: unknown workload or server: {', '.join(unknown)}")
    wanted |= {WORKLOADS[w].reference for w in workloads}
    wanted |= {s.name for s in SERVERS.values() if s.companion_of in wanted
               and any(w in s.only for w in workloads)}
    return [s for s in SERVERS if s in wanted], workloads


def environment(python: str, wrk: str, settings: Settings, versions: dict[str, str]
                ) -> list[str]:
    """The lines that say where, when and how the figures were measured."""
    probe = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0])"],
                           capture_output=True, text=True, timeout=30, check=False)
    peers = ", ".join(f"{name} {version}" for name, version in sorted(versions.items()))
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return [f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} cores, "
            f"Linux {platform.release()}, Python {probe.stdout.strip()}, {_wrk.version(wrk)}"
            f"{', ' + peers if peers else ''}; load average at the start {load}.",
            f"{settings.rounds} round{'s' if settings.rounds != 1 else ''}; "
            f"wrk: {settings.duration} s per load, "
            f"{settings.threads} thread{'s' if settings.threads != 1 else ''}, "
            f"{settings.connections} connections; uploads "
            f"{settings.upload_repeat} x {settings.upload_bytes // MIB} MiB, multipart "
            f"{settings.upload_repeat} x {settings.multipart_bytes // MIB} MiB; "
            f"fairness: {settings.fairness_clients} clients, answered within "
            f"{settings.fairness_within:g} s, waiting at most {settings.fairness_wait:g} s; "
            f"idle: {settings.idle_connections} keep-alive connections held; slowloris: "
            f"{settings.slow_connections} connections sending a header byte every "
            f"{settings.slow_gaps[0]:g}-{settings.slow_gaps[1]:g} s; beside them a normal "
            f"client makes {settings.normal_requests} requests, one after the other, each on a "
            f"new connection and waited for at most {settings.normal_timeout:g} s; "
            f"hostile clients: {settings.attackers} of each kind (never-close: with "
            f"Connection: close and malformed; slow readers at "
            f"{settings.read_rate / 1024:g} KiB/s; slow uploads at {settings.upload_rate:g} "
            f"bytes/s), watched for {settings.attack_watch:g} s; upload-256-chunked "
            f"{settings.big_upload_bytes // MIB} MiB; "
            f"descriptor limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}."]


def measure_all(running: dict[str, Running], workloads: list[str], settings: Settings
                ) -> _report.Results:
    """Every round, every workload, every server (alternating order); print progress."""
    results = _report.Results(settings.rounds)
    order = list(running)
    for round_index in range(settings.rounds):
        servers = order if round_index % 2 == 0 else order[::-1]
        for name in workloads:
            workload = WORKLOADS[name]
            for server in servers:
                spec = running[server].server
                if server != workload.reference and not spec.takes_part(
                        name, workload.upload, workload.static):
                    continue
                m = measure_one(running[server], workload.measure, settings)
                results.record(name, server, round_index, m)
                shown = "failed: " + m.error if m.value is None else f"{m.value:,.1f}"
                print(f"round {round_index + 1}/{settings.rounds}  {name:<15} {server:<17} "
                      f"{shown} {workload.unit if m.value is not None else ''}", flush=True)
    return results


def measure_one(server: Running, measure: Callable[[Running, Settings], Measurement],
                settings: Settings) -> Measurement:
    """One measurement; a failure is recorded, not raised."""
    if not server.alive():
        return Measurement(None, error=f"the server had exited; log: {server.log_tail(200)!r}")
    if not server.answers():
        return Measurement(None, error="the server did not answer GET / before the measurement")
    try:
        return measure(server, settings)
    except (OSError, RuntimeError, ValueError, ClientError) as error:
        return Measurement(None, error=f"{type(error).__name__}: {error}")


LAYERS = ("layer1_sockets", "layer2_prefork", "layer3_http")


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, timeout=60,
                          check=True)
    return done.stdout.decode(errors="replace").strip()


def snapshot(commit: str, folder: Path) -> str:
    """Extract our packages as of `commit` into `folder`; return a description of it."""
    sha = _git("rev-parse", "--short", commit + "^{commit}")
    with subprocess.Popen(["git", "-C", str(ROOT), "archive", "--format=tar", sha, *LAYERS],
                          stdout=subprocess.PIPE) as archive:
        assert archive.stdout is not None
        with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
            tar.extractall(folder, filter="data")
    if archive.returncode != 0:
        raise SystemExit(f"bench: git archive {commit} failed")
    return f"commit {sha}"


def baseline_server(folder: Path, description: str) -> Server:
    """Our server run from a snapshot in `folder` (its packages go first on the path)."""
    ours = SERVERS["ours"]

    def command(python: str, port: int, files: Path) -> list[str]:
        argv = ours.command(python, port, files)
        assert argv[1:3] == ["-m", "layer3_http"]
        start = (f"import sys, runpy; sys.path.insert(0, {str(folder)!r}); "
                 "runpy.run_module('layer3_http', run_name='__main__', alter_sys=True)")
        return [python, "-c", start, *argv[3:]]
    return Server("ours-before", f"ours before ({description})", command, ours.workers)


def working_tree() -> str:
    """A description of the checkout our server runs from."""
    try:
        sha = _git("rev-parse", "--short", "HEAD")
        dirty = _git("status", "--porcelain", "--", *LAYERS)
    except (OSError, subprocess.SubprocessError):
        return f"the working tree in {ROOT}"
    return f"the working tree at {sha}" + (" with uncommitted changes" if dirty else "")


def static_files(folder: Path) -> Path:
    """The folder the file-serving servers serve: 16 MiB `STATIC_FILE`, an index saying Hello."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_bytes(b"Hello, World!")
    with open(folder / STATIC_FILE, "wb") as out:
        out.truncate(16 * MIB)
    return folder


def start_all(servers: list[str], python: str, source: Path, logs: Path, upload_dir: Path,
              running: dict[str, Running]) -> None:
    """Start every server (into `running`, so a failure still stops those started).

    A peer that does not get ready is stopped and left out with a line saying
    why; ours or a reference that does not is an error.
    """
    env = dict(os.environ, PYTHONPATH=str(source) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               BENCH_UPLOAD_DIR=str(upload_dir), PYTHONUNBUFFERED="1")
    files = static_files(upload_dir / "static")
    for name in servers:
        running[name] = Running(SERVERS[name], python, logs / f"{name}.log", env, files)
    for name in servers:
        try:
            running[name].wait_ready()
        except RuntimeError as error:
            if not SERVERS[name].peer:
                raise
            running.pop(name).stop()
            print(f"bench: skipping {name}: it did not start: {error}", flush=True)
            continue
        print(f"bench: {name} ready on port {running[name].port} "
              f"(pid {running[name].pid}, workers {running[name].workers})", flush=True)


def publish_page(text: str, chart: str) -> None:
    """Replace the results section of the performance page; write its chart."""
    page = PAGE.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
    if not pattern.search(page):
        raise SystemExit(f"bench: {PAGE} has no {START} ... {END} section")
    page = pattern.sub(lambda _m: f"{START}\n{text}{END}", page)
    PAGE.write_text(page, encoding="utf-8")
    PAGE_SVG.write_text(chart, encoding="utf-8")
    print(f"bench: published into {PAGE.relative_to(ROOT)} and {PAGE_SVG.relative_to(ROOT)}")


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def load_results(path: Path) -> tuple[_report.Results, list[str], dict[str, object]]:
    """The results, header and settings saved in a ``latest.json``."""
    raw = json.loads(path.read_text())
    rounds = int(raw["settings"]["rounds"])
    results = _report.Results(rounds)
    for workload, by_server in raw["data"].items():
        for server, entries in by_server.items():
            for index, entry in enumerate(entries):
                if entry is not None:
                    results.record(workload, server, index, Measurement(**entry))
    return results, list(raw["header"]), dict(raw["settings"])


def render(results: _report.Results, header: list[str], settings: dict[str, object],
           output: Path, publish: bool) -> str:
    """Write latest.md, latest.json and latest.svg (with `publish`, the page); return the text."""
    text = _report.markdown(results, header)
    output.mkdir(parents=True, exist_ok=True)
    (output / "latest.md").write_text("# Benchmark results\n\n" + text)
    raw = {"header": header, "settings": settings,
           "data": {w: {s: [None if m is None else asdict(m) for m in ms]
                        for s, ms in by_server.items()} for w, by_server in results.data.items()}}
    (output / "latest.json").write_text(json.dumps(raw, indent=1) + "\n")
    chart = _plot.svg(results, "Ratios to the reference server measured in the same round: "
                      "median, min and max over the rounds")
    (output / "latest.svg").write_text(chart)
    if publish:
        publish_page(text, chart)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    if arguments.report_only:
        results, header, saved = load_results(arguments.output / "latest.json")
        SERVERS.setdefault("ours-before", baseline_server(Path(), "--baseline"))
        print(render(results, header, saved, arguments.output, arguments.publish))
        return 0
    baseline = ""
    if arguments.baseline:  # registered before `choose`, which checks the names
        folder = Path(tempfile.mkdtemp(prefix="bench-baseline-"))
        atexit.register(shutil.rmtree, folder, True)
        baseline = snapshot(arguments.baseline, folder)
        SERVERS["ours-before"] = baseline_server(folder, baseline)
        arguments.servers += ",ours-before"
    servers, workloads = choose(arguments)
    try:
        wrk = _wrk.find(install=not arguments.no_install)
    except _wrk.WrkMissing as missing:
        print(f"bench: {missing}", file=sys.stderr)
        return 2
    logs = arguments.output / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    prepared = _peers.prepare(servers, arguments.python, not arguments.no_install,
                              logs / "pip.log")
    for name, reason in prepared.skipped.items():
        print(f"bench: skipping {name}: {reason}", flush=True)
    servers, python = prepared.servers, prepared.python
    upload_dir = make_upload_dir()
    source, code = ROOT, working_tree()
    if arguments.commit:
        source = upload_dir / "source"
        code = snapshot(arguments.commit, source)
    if baseline:
        code += f"; ours-before from {baseline}"
    settings = settings_from(arguments, wrk, upload_dir)
    header = environment(python, wrk, settings, prepared.versions)
    header.append(f"Our server ran from {code}.")
    print("\n".join(header), flush=True)
    signal.signal(signal.SIGTERM, _terminate)
    running: dict[str, Running] = {}
    started = time.monotonic()
    try:
        start_all(servers, python, source, logs, upload_dir, running)
        results = measure_all(running, workloads, settings)
    except KeyboardInterrupt:
        print("bench: interrupted; stopping the servers", file=sys.stderr)
        return 130
    finally:
        for server in running.values():
            server.stop()
        remove_upload_dir(upload_dir)
    header[0] = header[0].rstrip(".") + ", at the end " + " ".join(
        f"{x:.2f}" for x in os.getloadavg()) + "."
    saved = {k: str(v) if isinstance(v, Path) else v
             for k, v in asdict(replace(settings, block=b"")).items() if k != "block"}
    text = render(results, header, saved, arguments.output, arguments.publish)
    print("\n" + text)
    print(f"bench: {time.monotonic() - started:.0f} s; results in "
          f"{arguments.output / 'latest.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
