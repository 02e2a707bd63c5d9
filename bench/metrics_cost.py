"""What counting for the metrics endpoint costs: our server with ``--metrics`` and without.

Starts ``bench/servers/moonbridge_app.py`` under ``python -m layer3_http``
(two workers) twice, once plain and once with ``--metrics 127.0.0.1:0``,
and loads ``GET /`` with wrk over 16 connections, keep-alive and
``Connection: close``, alternating the two servers in each round (and
which goes first) so that the machine's other load falls on both alike. Prints requests per second
per round and the ratio on/off of the best round, and scrapes the
endpoint at the end so the counts are seen to be real. Standard library
and wrk only:

    python3 bench/metrics_cost.py [--rounds 2] [--duration 4]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from statistics import median

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import _wrk  # noqa: E402

APP = BENCH / "servers" / "moonbridge_app.py"
PORT_LINE = re.compile(rb"listening on port (\d+)")
METRICS_LINE = re.compile(rb"metrics on port (\d+)")


class Running:
    """One server process (its own session: the master and its workers end together)."""

    def __init__(self, metrics: bool) -> None:
        argv = [sys.executable, "-m", "layer3_http", f"{APP}:app", "--listen", "127.0.0.1:0",
                "--workers", "2"] + (["--metrics", "127.0.0.1:0"] if metrics else [])
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     start_new_session=True, cwd=BENCH.parent,
                                     env={**os.environ, "PYTHONPATH": str(BENCH.parent)})
        assert self.proc.stdout is not None
        self.port = self._read(PORT_LINE)
        self.metrics_port = self._read(METRICS_LINE) if metrics else 0

    def _read(self, pattern: re.Pattern[bytes]) -> int:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if match := pattern.search(line):
                return int(match.group(1))
        raise RuntimeError("the server ended before it printed its port")

    def cpu(self) -> float:
        """CPU seconds (user and system) of the master and its workers so far."""
        total = 0.0
        pending = [self.proc.pid]
        while pending:
            pid = pending.pop()
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{pid}/task/{pid}/children") as children:
                    pending.extend(int(child) for child in children.read().split())
            except OSError:
                continue  # gone meanwhile
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def scrape(self) -> str:
        with socket.create_connection(("127.0.0.1", self.metrics_port), timeout=10) as sock:
            sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        return data.decode()

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def counting_cost(calls: int = 200_000) -> float:
    """Microseconds one `record()` takes, the best of three runs of `calls` calls."""
    from layer2_prefork import _counters
    from layer2_prefork._scoreboard import Scoreboard, Writer
    from layer3_http import _counting
    board = Scoreboard(2, 1, _counters.declared())
    _counters.enter(Writer(board, board.claim(0)))
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(calls):
            _counting.record(200, 0.0007, 120, 13)
        best = min(best, (time.perf_counter() - started) / calls * 1e6)
    return best


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("--rounds", type=int, default=2)
    cli.add_argument("--duration", type=int, default=4)
    arguments = cli.parse_args()
    wrk = _wrk.find(install=False)
    servers = {"off": Running(False), "on": Running(True)}
    rates: dict[tuple[str, str], list[float]] = {}
    costs: dict[tuple[str, str], list[float]] = {}
    try:
        for _ in range(2):  # warm both up
            for server in servers.values():
                _wrk.run(wrk, server.port, 16, 1, 1)
        for number in range(arguments.rounds):
            for workload in ("close", "keepalive"):
                order = list(servers.items())
                for name, server in order if number % 2 == 0 else order[::-1]:
                    before = server.cpu()
                    result = _wrk.run(wrk, server.port, 16, 1, arguments.duration,
                                      close=workload == "close")
                    cost = (server.cpu() - before) / max(result.requests, 1) * 1e6
                    rates.setdefault((workload, name), []).append(result.rate)
                    costs.setdefault((workload, name), []).append(cost)
                    print(f"round {number + 1} {workload:9} metrics {name:3}: "
                          f"{result.rate:8.0f} req/s  {cost:6.1f} us CPU/request"
                          f"  p99 {result.p99_us / 1000:6.2f} ms  errors {result.errors}",
                          flush=True)
        text = servers["on"].scrape()
        counted = re.findall(r'moonbridge_http_requests_total\{code="2xx"\} (\d+)', text)
        print(f"requests counted by the metrics: {counted[0] if counted else '?'}")
    finally:
        for server in servers.values():
            server.stop()
    print("| workload | off: req/s | on: req/s | on / off | off: µs CPU per request |"
          " on: µs CPU per request | on / off |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for workload in ("close", "keepalive"):
        off, on = median(rates[(workload, "off")]), median(rates[(workload, "on")])
        cost_off, cost_on = median(costs[(workload, "off")]), median(costs[(workload, "on")])
        print(f"| {workload} | {off:.0f} | {on:.0f} | {on / off:.2f} | {cost_off:.0f} |"
              f" {cost_on:.0f} | {cost_on / cost_off:.2f} |")
    print(f"counting one request (record): {counting_cost():.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
