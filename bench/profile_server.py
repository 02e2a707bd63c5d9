"""Profile our server under a benchmark load: where does a request spend its time?

    python bench/profile_server.py                       # keep-alive load, 10 s
    python bench/profile_server.py --workload close      # Connection: close (the master works too)
    python bench/profile_server.py --workload one --top 30

It starts our server as ``bench/run.py`` does (2 workers), loads it with
wrk, and samples one worker and the master with py-spy (``py-spy record
--format raw``, from ``bench/.venv``; py-spy reads the other process's
memory, which needs root or ptrace permission). The folded stacks are
kept in ``bench/results/profile-*.txt`` (feed them to a flame graph tool)
and summarised here: the share of samples per function, by self time
(the function was on top of the stack) and by inclusive time (it was
anywhere on the stack), and per source file.

py-spy samples a process that is running or waiting for a CPU (not one
that sleeps), so on a busy machine the time inside system calls grows.
With ``--cprofile`` each worker runs under `cProfile` on CPU time instead
(``servers/profiled_app.py``), and the summary gives calls and
microseconds per request.
"""

from __future__ import annotations

import argparse
import collections
import pstats
import re
import subprocess
import sys
import time
from pathlib import Path

import _clients
import _wrk
from _servers import ROOT, SERVERS, Running, Server
from _workloads import make_upload_dir, remove_upload_dir

PY_SPY = ROOT / "bench" / ".venv" / "bin" / "py-spy"
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+)(?::\d+)?\)$")


def fold(path: Path) -> list[tuple[list[str], int]]:
    """Read py-spy's raw output: (frames from outermost to innermost, samples) per line."""
    stacks = []
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def _name(frame: str) -> tuple[str, str]:
    """``(function (file))`` without the line number, and the file."""
    match = FRAME.match(frame)
    if match is None:
        return frame, "?"
    return f"{match['function']} ({match['file']})", match["file"]


def summary(stacks: list[tuple[list[str], int]], top: int,
            splits: tuple[str, ...] = ()) -> list[str]:
    """Self, inclusive and per-file shares, as text lines."""
    total = sum(count for _frames, count in stacks) or 1
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    files: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        names = [_name(frame) for frame in frames]
        own[names[-1][0]] += count
        files[names[-1][1]] += count
        for function in {function for function, _file in names}:
            inclusive[function] += count
    lines = [f"{total} samples", "", "self time (on top of the stack):"]
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in own.most_common(top)]
    lines += ["", "inclusive time (anywhere on the stack; below the common outer frames):"]
    outer = max(inclusive.values(), default=0)
    lines += [f"  {100 * n / total:5.1f} %  {f}"
              for f, n in [(f, n) for f, n in inclusive.most_common() if n < outer][:top]]
    lines += ["", "self time by file:"]
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in files.most_common(top)]
    packages: collections.Counter[str] = collections.Counter()
    for file, n in files.items():
        packages[file.split("/")[0] if "/" in file else "stdlib and app"] += n
    lines += ["", "self time by package:"]
    lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in packages.most_common()]
    for function in splits:
        below = split(stacks, function)
        if below:
            lines += ["", f"time below {function} (share of all samples), by the call it made:"]
            lines += [f"  {100 * n / total:5.1f} %  {f}" for f, n in below.most_common(top)]
    return lines


SPLITS = {"worker": ("Connection._serve_one", "Connection._read_head", "Connection._handle",
                     "Request.finish"),
          "master": ("Master._step", "Master._dispatch")}


def split(stacks: list[tuple[list[str], int]], function: str) -> collections.Counter[str]:
    """Samples under the innermost call of `function`, by the frame directly below it.

    Samples where `function` itself is on top count as ``(itself)``.
    """
    below: collections.Counter[str] = collections.Counter()
    for frames, count in stacks:
        names = [_name(frame)[0] for frame in frames]
        at = [i for i, name in enumerate(names) if name.split(" (")[0] == function]
        if at:
            child = names[at[-1] + 1] if at[-1] + 1 < len(names) else "(itself)"
            below[child] += count
    return below


def record(pid: int, seconds: int, rate: int, out: Path) -> subprocess.Popen[bytes]:
    """Start py-spy sampling `pid` for `seconds`, writing folded stacks to `out`."""
    return subprocess.Popen([str(PY_SPY), "record", "--pid", str(pid), "--duration",
                             str(seconds), "--rate", str(rate), "--format", "raw",
                             "--nonblocking", "--output", str(out)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def profile_uploads(server: Running, arguments: argparse.Namespace, worker_out: Path,
                    master_out: Path) -> None:
    """Sample while uploads of 256 MiB follow each other for the sampling time."""
    block = _clients.payload_block()
    for old in worker_out.parent.glob(worker_out.stem + "-*.txt"):
        old.unlink()
    sampled = [record(pid, arguments.duration, arguments.rate,
                      worker_out.with_name(worker_out.stem + f"-{pid}.txt"))
               for pid in server.worker_pids()]
    sampled.append(record(server.pid, arguments.duration, arguments.rate, master_out))
    end = time.monotonic() + arguments.duration
    count, seconds = 0, 0.0
    while time.monotonic() < end:
        seconds += _clients.upload(server.port, 256 << 20, arguments.workload == "chunked",
                                   block, 120.0)
        count += 1
    for sampler in sampled:
        sampler.wait(arguments.duration + 30)
    print(f"{arguments.workload}: {count} uploads of 256 MiB, "
          f"{count * 256 * 1.048576 / seconds:,.0f} MB/s under sampling\n")
    stacks = [stack for path in worker_out.parent.glob(worker_out.stem + "-*.txt")
              for stack in fold(path)]
    print(f"== workers ({worker_out.stem}-PID.txt)")
    print("\n".join(summary(stacks, arguments.top, SPLITS["worker"])))


def cprofile_run(arguments: argparse.Namespace, wrk: str, python: str, env: dict[str, str]
                 ) -> None:
    """Serve under cProfile in each worker (CPU time), load with wrk, print per-request costs."""
    folder = arguments.output / f"cprofile-{arguments.workload}"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("worker-*.prof"):
        old.unlink()
    script = str(ROOT / "bench" / "servers" / "profiled_app.py")
    spec = Server("ours-profiled", "ours under cProfile", lambda py, port, _files: [
        py, "-m", "layer2_prefork", script, str(port), str(folder)], 2)
    server = Running(spec, python, arguments.output / "profile-server.log", env)
    try:
        server.wait_ready()
        result = _wrk.run(wrk, server.port, 1 if arguments.workload == "one" else 16, 1,
                          arguments.duration, close=arguments.workload == "close")
    finally:
        server.stop()
    files = sorted(str(path) for path in folder.glob("worker-*.prof"))
    if not files:
        print("no profile was written")
        return
    print(f"{arguments.workload}: {result.requests} requests in {result.seconds:.1f} s under "
          f"cProfile ({result.rate:,.0f} req/s; profiling slows every call)\n")
    print("\n".join(per_request(pstats.Stats(*files), result.requests, arguments.top)))


def per_request(stats: pstats.Stats, requests: int, top: int) -> list[str]:
    """The costliest functions by own and by cumulative CPU time, per request."""
    table = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in table.values()) or 1.0
    lines = [f"worker CPU time per request: {total / requests * 1e6:.1f} µs (profiled)", ""]
    for title, column in (("own time", 2), ("cumulative time", 3)):
        lines += [f"by {title}:  share   µs/request  calls/request  function"]
        ranked = sorted(table.items(), key=lambda item: item[1][column], reverse=True)
        for (file, line, function), entry in ranked[:top]:
            where = "/".join(Path(file).parts[-2:]) if file != "~" else "builtin"
            share, cost = 100 * entry[column] / total, entry[column] / requests * 1e6
            lines.append(f"  {share:13.1f} % {cost:9.2f} {entry[1] / requests:12.2f}  "
                         f"{function} ({where}:{line})")
        lines.append("")
    return lines


def main() -> int:
    cli = argparse.ArgumentParser(prog="python bench/profile_server.py",
                                  description=__doc__.split("\n")[0])
    cli.add_argument("--workload", choices=("keepalive", "one", "close", "upload", "chunked"),
                     default="keepalive", help="a wrk load, or 256 MiB uploads one after "
                     "the other (upload: Content-Length; chunked)")
    cli.add_argument("--duration", type=int, default=10, help="seconds of sampling (10)")
    cli.add_argument("--rate", type=int, default=250, help="samples per second (250)")
    cli.add_argument("--top", type=int, default=20, help="functions to list (20)")
    cli.add_argument("--output", type=Path, default=ROOT / "bench" / "results")
    cli.add_argument("--cprofile", action="store_true",
                     help="instead of py-spy: cProfile inside each worker, counting CPU time "
                          "only, with calls and microseconds per request (wrk loads only)")
    arguments = cli.parse_args()
    if not PY_SPY.exists() and not arguments.cprofile:
        print(f"bench: {PY_SPY} is missing: pip install -r bench/requirements.txt "
              "into bench/.venv", file=sys.stderr)
        return 2
    wrk = _wrk.find()
    arguments.output.mkdir(parents=True, exist_ok=True)
    python = str(ROOT / "bench" / ".venv" / "bin" / "python")
    upload_dir = make_upload_dir()
    env = {"PYTHONPATH": str(ROOT), "BENCH_UPLOAD_DIR": str(upload_dir), "PATH": "/usr/bin:/bin"}
    if arguments.cprofile:
        try:
            cprofile_run(arguments, wrk, python, env)
        finally:
            remove_upload_dir(upload_dir)
        return 0
    server = Running(SERVERS["ours"], python, arguments.output / "profile-server.log", env)
    try:
        server.wait_ready()
        worker_out = arguments.output / f"profile-{arguments.workload}-worker.txt"
        master_out = arguments.output / f"profile-{arguments.workload}-master.txt"
        if arguments.workload in ("upload", "chunked"):
            profile_uploads(server, arguments, worker_out, master_out)
            return 0
        connections = 1 if arguments.workload == "one" else 16
        load = subprocess.Popen([wrk, "-t1", "-c", str(connections), "-d",
                                 f"{arguments.duration + 3}s", "-s", str(_wrk.SCRIPT),
                                 f"http://127.0.0.1:{server.port}/",
                                 *(["--", "close"] if arguments.workload == "close" else [])],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            time.sleep(1)  # let the load settle before sampling
            samplers = [record(server.worker_pids()[0], arguments.duration, arguments.rate,
                               worker_out),
                        record(server.pid, arguments.duration, arguments.rate, master_out)]
            for sampler in samplers:
                sampler.wait(arguments.duration + 30)
            out, _ = load.communicate(timeout=arguments.duration + 30)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
        result = _wrk.parse(out.decode(errors="replace"))
        print(f"{arguments.workload}: {result.rate:,.0f} req/s under sampling "
              f"(sampling slows the server; compare shares, not speeds)\n")
        for title, path in (("worker", worker_out), ("master", master_out)):
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            print(f"== {title} ({shown})")
            print("\n".join(summary(fold(path), arguments.top, SPLITS[title]))
                  if path.exists() else "no samples")
            print()
    finally:
        server.stop()
        remove_upload_dir(upload_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
