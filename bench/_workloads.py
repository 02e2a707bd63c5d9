"""The workloads: what is measured, against which reference, and how.

Every wrk workload also records wrk's errors and timeouts, and the CPU
time the server's processes used per request: master and workers, user
and system, from ``/proc/PID/stat`` (and the master's share alone). An
upload measurement is `Settings.upload_repeat` uploads one after the
other: their bytes over their time, and the peak memory growth over all.

Each `Workload` measures one server once and returns a `Measurement`
whose ``value`` is the figure compared across servers (higher is better):
requests per second, MB/s, or clients answered. The ratio reported is
that value divided by the reference server's value measured in the same
round: the ``limit`` server for small requests, the raw byte ``sink`` for
uploads.

| name | load | value | also recorded |
| --- | --- | --- | --- |
| ``keepalive`` | wrk, 16 keep-alive connections, ``GET /`` | req/s | CPU per request |
| ``one`` | wrk, 1 connection | req/s | p50, p99 latency |
| ``close`` | wrk, 16 connections, ``Connection: close`` | req/s | CPU per request |
| ``upload-length`` | one POST of N bytes with ``Content-Length`` | MB/s | worker peak RSS growth |
| ``upload-chunked`` | the same, chunked | MB/s | worker peak RSS growth |
| ``multipart`` | a form with one file field, saved to a file | MB/s | worker peak RSS growth |
| ``fairness`` | 16 keep-alive clients at once, one GET each | answered in 1 s | p99 wait |
| ``idle`` | 1,000 idle keep-alive connections; a normal client | answered in 0.1 s | master RSS |
| ``slowloris`` | 100 connections trickling a head; a normal client | answered in 1 s | latency |
| ``never-close`` | 8 + 8 requests never read nor closed; normal client | in 0.1 s | release |
| ``slow-reader`` | 8 clients reading 16 MiB at 4 KiB/s; normal client | in 0.1 s | release |
| ``slow-reader-static`` | the same from a static file | in 0.1 s | release |
| ``slow-upload`` | 8 bodies sent at 100 bytes/s; normal client | in 0.1 s | release |
| ``upload-256-chunked`` | one chunked POST of 256 MiB (also ``--quick``) | MB/s | peak RSS |

The normal client of ``idle`` and ``slowloris`` makes
`Settings.normal_requests` requests one after the other, each on a fresh
connection with ``Connection: close`` and bounded by
`Settings.normal_timeout`. Afterwards the crowd is closed and the server
is given `Settings.recovery_wait` seconds to answer ``GET /`` again
before the next measurement.

The hostile-client workloads (``never-close``, ``slow-reader``,
``slow-reader-static``, ``slow-upload``; see `_attack`) open
`Settings.attackers` connections of each kind, give the server
`Settings.attack_warmup` seconds to take them, then run the same normal
client; its figure is how many of its requests were answered within
`Settings.attack_within` (every one should be). Then they wait until the
server has let go of every hostile connection, at most until
`Settings.attack_watch` seconds after they opened, and record for each
when that happened (``Measurement.detail``; None: still held at the end).
``slow-reader-static`` runs only on the servers that serve files (ours
with ``--static``, granian, uWSGI).
"""

from __future__ import annotations

import math
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import _attack
import _clients
import _crowd
import _wrk
from _servers import Running

MIB = 1 << 20


@dataclass(frozen=True)
class Settings:
    """The knobs of one benchmark run."""

    rounds: int = 5
    duration: int = 4
    threads: int = 1
    connections: int = 16
    upload_bytes: int = 256 * MIB
    multipart_bytes: int = 64 * MIB
    fairness_clients: int = 16
    fairness_within: float = 1.0
    fairness_wait: float = 3.0
    upload_repeat: int = 2
    idle_connections: int = 1000
    slow_connections: int = 100
    open_within: float = 5.0
    normal_requests: int = 20
    normal_timeout: float = 2.0
    idle_within: float = 0.1
    slow_within: float = 1.0
    slow_gaps: tuple[float, float] = (0.2, 0.5)
    slow_warmup: float = 1.0
    recovery_wait: float = 15.0
    upload_timeout: float = 60.0
    big_upload_bytes: int = 256 * MIB
    attackers: int = 8
    attack_within: float = 0.1
    attack_warmup: float = 0.5
    attack_watch: float = 10.0
    read_rate: float = 4096.0
    upload_rate: float = 100.0
    wrk: str = "wrk"
    upload_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()))
    block: bytes = b""


@dataclass
class Measurement:
    """One server's figures for one workload in one round (`value`: higher is better)."""

    value: float | None
    extra: dict[str, float] = field(default_factory=dict)
    error: str = ""
    detail: dict[str, list[float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Workload:
    """A workload: its name, title, reference server and measuring function.

    ``static``: it needs a server that serves files (`Server.static_url`).
    """

    name: str
    title: str
    unit: str
    reference: str
    upload: bool
    measure: Callable[[Running, Settings], Measurement]
    static: bool = False


def _wrk_measure(connections: Callable[[Settings], int], close: bool
                 ) -> Callable[[Running, Settings], Measurement]:
    def measure(server: Running, settings: Settings) -> Measurement:
        own, workers = server.cpu_seconds()
        result = _wrk.run(settings.wrk, server.port, connections(settings), settings.threads,
                          settings.duration, close=close)
        own_after, workers_after = server.cpu_seconds()
        extra = {"p50_us": float(result.p50_us), "p99_us": float(result.p99_us),
                 "errors": float(result.errors), "timeouts": float(result.timeouts)}
        cpu = (own_after - own) + max(0.0, workers_after - workers)
        if result.requests and cpu > 0:
            extra["cpu_us"] = cpu / result.requests * 1e6
            if server.server.workers:  # the master's share: accepting and passing on
                extra["master_cpu_us"] = (own_after - own) / result.requests * 1e6
        if result.requests == 0:
            return Measurement(None, extra, "no request answered")
        return Measurement(result.rate, extra)
    return measure


def _upload_measure(kind: str, big: bool = False) -> Callable[[Running, Settings], Measurement]:
    def measure(server: Running, settings: Settings) -> Measurement:
        size = (settings.big_upload_bytes if big else
                settings.multipart_bytes if kind == "multipart" else settings.upload_bytes)
        repeat = 1 if big else settings.upload_repeat
        baseline = server.reset_peaks()
        seconds = 0.0
        try:
            for _ in range(repeat):
                if kind == "multipart":
                    seconds += _clients.multipart_upload(server.port, size, settings.block,
                                                         settings.upload_timeout,
                                                         raw=server.server.name == "sink")
                else:
                    seconds += _clients.upload(server.port, size, kind == "chunked",
                                               settings.block, settings.upload_timeout)
        finally:
            _clear(settings.upload_dir)
        growth = server.peak_growth_kib(baseline) / 1024
        return Measurement(repeat * size / seconds / 1e6,
                           {"rss_mib": growth, "seconds": seconds})
    return measure


def _clear(folder: Path) -> None:
    """Remove the files the multipart handlers wrote."""
    for path in folder.glob("upload-*.bin"):
        path.unlink(missing_ok=True)


def _fairness(server: Running, settings: Settings) -> Measurement:
    times = _clients.fairness(server.port, settings.fairness_clients, settings.fairness_wait)
    within = sum(1 for t in times if t is not None and t <= settings.fairness_within)
    ordered = sorted(math.inf if t is None else t for t in times)
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return Measurement(float(within), {"p99_ms": p99 * 1000, "clients": float(len(times)),
                                       "answered": float(sum(t is not None for t in times))})


def _latencies(normal: _crowd.Normal) -> dict[str, float]:
    """The normal client's p50 and max in ms (∞ when too few were answered) and failures."""
    ordered = sorted(math.inf if t is None else t for t in normal.times)
    if not ordered:
        return {}
    return {"p50_ms": ordered[(len(ordered) - 1) // 2] * 1000, "max_ms": ordered[-1] * 1000,
            "normal_answered": float(sum(t is not None for t in normal.times)),
            "normal_timeouts": float(normal.timeouts), "normal_errors": float(normal.errors)}


def _recovered(server: Running, settings: Settings, extra: dict[str, float]) -> str:
    """Wait for the server to answer again after a crowd; note the seconds; an error if not."""
    seconds = server.recovers(settings.recovery_wait)
    if seconds is None:
        return f"no answer to GET / within {settings.recovery_wait:g} s after the crowd closed"
    extra["recovery_s"] = seconds
    return ""


def _idle(server: Running, settings: Settings) -> Measurement:
    request = f"GET / HTTP/1.1\r\nHost: {_clients.HOST}:{server.port}\r\n\r\n".encode()
    before = server.rss_kib()
    with _crowd.Crowd(server.port, settings.idle_connections, request) as crowd:
        crowd.open(settings.open_within)
        crowd.await_answers(settings.normal_timeout)
        normal = _crowd.normal_requests(server.port, settings.normal_requests,
                                        settings.normal_timeout)
        after = server.rss_kib()
        counts = crowd.counts
    extra = {**_latencies(normal), **counts.extra("idle")}
    if before is not None and after is not None:
        extra["master_rss_kib"] = float(after - before)
    error = _recovered(server, settings, extra)
    return Measurement(float(normal.within(settings.idle_within)), extra, error)


def _slowloris(server: Running, settings: Settings) -> Measurement:
    head = f"GET / HTTP/1.1\r\nHost: {_clients.HOST}:{server.port}\r\n".encode()
    with _crowd.Crowd(server.port, settings.slow_connections, head) as crowd:
        crowd.open(settings.open_within)
        with crowd.trickling(settings.slow_gaps):
            time.sleep(settings.slow_warmup)  # every slow client has sent a byte or two
            normal = _crowd.normal_requests(server.port, settings.normal_requests,
                                            settings.normal_timeout)
        counts = crowd.counts
        still = len(crowd.conns)
    extra = {**_latencies(normal), **counts.extra("slow"), "slow_still_open": float(still)}
    error = _recovered(server, settings, extra)
    return Measurement(float(normal.within(settings.slow_within)), extra, error)


def _attack_measure(*kinds: str, static: bool = False
                    ) -> Callable[[Running, Settings], Measurement]:
    def measure(server: Running, settings: Settings) -> Measurement:
        path = (server.server.static_url if static else None) or "/big"
        started = time.monotonic()
        with _attack.Attack(server.port, settings.read_rate, settings.upload_rate) as attack:
            for kind in kinds:
                attack.open(kind, settings.attackers, path)
            attack.start()
            time.sleep(settings.attack_warmup)  # the server takes the hostile connections
            normal = _crowd.normal_requests(server.port, settings.normal_requests,
                                            settings.normal_timeout)
            attack.wait_released(started + settings.attack_watch)
            watching = attack.watching
        extra = _latencies(normal)
        detail: dict[str, list[float | None]] = {}
        for kind, group in attack.groups.items():
            extra |= group.extra(kind)
            detail[f"{kind}_release_s"] = group.released
        error = _recovered(server, settings, extra)
        if not watching:
            error = error or f"{_attack.TCP_TABLE} could not be read: no release times"
        return Measurement(float(normal.within(settings.attack_within)), extra, error, detail)
    return measure


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("keepalive", "keep-alive, 16 connections", "req/s", "limit", False,
             _wrk_measure(lambda s: s.connections, False)),
    Workload("one", "one connection", "req/s", "limit", False,
             _wrk_measure(lambda s: 1, False)),
    Workload("close", "Connection: close, 16 connections", "req/s", "limit", False,
             _wrk_measure(lambda s: s.connections, True)),
    Workload("upload-length", "upload, Content-Length", "MB/s", "sink", True,
             _upload_measure("length")),
    Workload("upload-chunked", "upload, chunked", "MB/s", "sink", True,
             _upload_measure("chunked")),
    Workload("multipart", "multipart upload to a file", "MB/s", "sink", True,
             _upload_measure("multipart")),
    Workload("fairness", "fairness: 16 keep-alive clients", "answered in 1 s", "limit", False,
             _fairness),
    Workload("idle", "1,000 idle keep-alive: normal client in 0.1 s", "answered in 0.1 s",
             "limit", False, _idle),
    Workload("slowloris", "100 slowloris: normal client in 1 s", "answered in 1 s", "limit",
             False, _slowloris),
    Workload("never-close", "never-close (8 + 8): normal client in 0.1 s", "answered in 0.1 s",
             "limit", False, _attack_measure("close", "malformed")),
    Workload("slow-reader", "8 slow readers, handler: normal client in 0.1 s",
             "answered in 0.1 s", "limit", False, _attack_measure("reader")),
    Workload("slow-reader-static", "8 slow readers, static file: normal client in 0.1 s",
             "answered in 0.1 s", "limit", False, _attack_measure("reader", static=True),
             static=True),
    Workload("slow-upload", "8 slow uploads: normal client in 0.1 s", "answered in 0.1 s",
             "limit", False, _attack_measure("uploader")),
    Workload("upload-256-chunked", "upload 256 MiB, chunked", "MB/s", "sink", True,
             _upload_measure("chunked", big=True)),
)}


def make_upload_dir() -> Path:
    """A fresh folder for the multipart handlers' files."""
    return Path(tempfile.mkdtemp(prefix="bench-uploads-"))


def remove_upload_dir(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
