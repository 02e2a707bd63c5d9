"""wrk, the load generator: finding or installing it, running it, reading its report.

wrk (Debian package ``wrk``) is a C program with its own event loop, so
the load it generates costs little of the machine it shares with the
servers. `run` starts it with ``bench/wrk/report.lua``, whose ``done``
hook prints one JSON line (requests, duration, errors, p50 and p99 in
microseconds), and bounds it by a timeout of its duration plus a margin.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent / "wrk" / "report.lua"

EXPLAIN = """wrk, the load generator, is not installed.
Install the Debian package and run again:

    sudo apt-get update && sudo apt-get install -y wrk

(or put a wrk binary on PATH; run as root, bench/run.py installs it itself)."""


class WrkMissing(Exception):
    """wrk is not installed and could not be installed."""


def find(install: bool = True) -> str:
    """The path of wrk; with `install`, as root, ``apt-get install`` it when missing.

    Raises:
        WrkMissing: With the explanation of how to install it.
    """
    path = shutil.which("wrk")
    if path is None and install and os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: wrk is missing; installing the Debian package (apt-get install wrk)",
              flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for step in (["apt-get", "install", "-y", "-q", "wrk"],
                     ["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "wrk"]):
            subprocess.run(step, env=env, stdin=subprocess.DEVNULL, timeout=600, check=False,
                           stdout=subprocess.DEVNULL)
            path = shutil.which("wrk")
            if path is not None:
                break
    if path is None:
        raise WrkMissing(EXPLAIN)
    return path


def version(wrk: str) -> str:
    """wrk's version line."""
    done = subprocess.run([wrk, "--version"], capture_output=True, timeout=10, check=False)
    line = (done.stdout or done.stderr).decode(errors="replace").splitlines()[0]
    return line.split(" Copyright")[0].strip()


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    requests: int
    seconds: float
    errors: int
    timeouts: int
    p50_us: int
    p99_us: int

    @property
    def rate(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def run(wrk: str, port: int, connections: int, threads: int, duration: int,
        close: bool = False) -> WrkResult:
    """Load ``GET /`` for `duration` seconds over `connections` connections.

    Raises:
        RuntimeError: wrk failed, hung or printed no report.
    """
    argv = [wrk, "-t", str(min(threads, connections)), "-c", str(connections),
            "-d", f"{duration}s", "--timeout", "2s", "-s", str(SCRIPT),
            f"http://127.0.0.1:{port}/"]
    if close:
        argv += ["--", "close"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        out, _ = proc.communicate(timeout=duration + 20)
    except subprocess.TimeoutExpired:
        raise RuntimeError("wrk did not finish in time") from None
    finally:  # also on Ctrl-C: never leave wrk running
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
    return parse(out.decode(errors="replace"))


def parse(output: str) -> WrkResult:
    """Read the JSON line of ``report.lua`` from wrk's output.

    Raises:
        RuntimeError: There is none.
    """
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            data = json.loads(line)
            errors = sum(data[key] for key in ("connect_errors", "read_errors",
                                               "write_errors", "status_errors"))
            return WrkResult(data["requests"], data["duration_us"] / 1e6, errors,
                             data["timeouts"], data["p50_us"], data["p99_us"])
    raise RuntimeError(f"wrk printed no report: {output[-500:]!r}")
