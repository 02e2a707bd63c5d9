"""The hostile suite: every attack with its bounds, and how one attack becomes a row.

`ATTACKS` lists the attacks in the order they run. Each `Attack` names the
server it needs (``static``: the static-file server; ``app``: the
`_hostile_app` server, whose routes read bodies, forms and cookies), the
function that runs it, and the bounds of its verdict: the most the
master's and a worker's memory may grow during the attack (peak ``VmHWM``
minus ``VmRSS`` before), in MiB. Every row also fails when the normal
client waited more than `LATENCY_LIMIT`, when a worker died, when the
descriptors did not come back to their count before the attack, or when
the attack's own check found a problem.

`run_attack` runs one attack beside a `NormalClient` inside a `Watch`,
then lets the server recover (bounded: a normal request answered, the
descriptors back) and returns a `Row`.

Invariants: an attack's duration and count are bounded (`Scale`); the
recovery waits at most `RECOVERY` seconds; nothing here starts or stops
a server.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import _hostile_bombs as bombs
import _hostile_slow as slow
from _hostile_net import NormalClient, Tally
from _hostile_procs import Target, Watch, alive

LATENCY_LIMIT = 1.0
RECOVERY = 15.0
FDS_WAIT = 10.0
KiB = 1024
MiB = 1024 * KiB


@dataclass(frozen=True)
class Scale:
    """How long and how big: `QUICK` for a check, `FULL` for the report."""

    duration: float  # seconds an attack that holds connections holds them
    burst: float  # seconds a request-repeating attack repeats
    idle: int  # idle connections
    form: int  # bytes of the urlencoded bomb
    parts: int  # parts of the multipart bomb
    chunks: int  # 1-byte chunks


QUICK = Scale(duration=2.0, burst=0.5, idle=1000, form=4 * MiB, parts=20_000, chunks=100_000)
FULL = Scale(duration=10.0, burst=3.0, idle=2000, form=32 * MiB, parts=200_000,
             chunks=1_000_000)


@dataclass(frozen=True)
class Attack:
    """One attack: its name, its server, how to build it, and its memory bounds (MiB)."""

    name: str
    server: str
    build: Callable[[Scale], Callable[[Target, float, int], Tally]]
    master_mib: float = 16.0
    worker_mib: float = 16.0
    holds: bool = False  # holds connections for Scale.duration (else repeats for Scale.burst)


def _close_request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()


BAD_REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\nBad header line\r\n\r\n"

ATTACKS: tuple[Attack, ...] = (
    Attack("slow head 1 KiB", "static", lambda s: slow.slow_head(1 * KiB, "/"), holds=True),
    Attack("slow head 60 KiB", "static", lambda s: slow.slow_head(60 * KiB, "/"), holds=True),
    Attack("slow head 70 KiB", "static", lambda s: slow.slow_head(70 * KiB, "/"), holds=True),
    Attack("slow head 900 KiB", "static", lambda s: slow.slow_head(900 * KiB, "/"),
           holds=True, worker_mib=32.0),
    Attack("slow body 1 byte/s", "app", lambda s: slow.slow_body("/body"), holds=True),
    Attack("slow reader, static 16 MiB", "static", lambda s: slow.slow_reader("/big.bin"),
           holds=True),
    Attack("slow reader, handler 16 MiB", "app", lambda s: slow.slow_reader("/big"),
           holds=True),
    Attack("never closing after Connection: close", "static",
           lambda s: slow.never_closing(_close_request("/")), holds=True),
    Attack("never closing after a bad request", "static",
           lambda s: slow.never_closing(BAD_REQUEST), holds=True),
    Attack("idle connections from one address", "static", lambda s: slow.idle_crowd,
           holds=True, master_mib=64.0),
    Attack("huge range (4,400 zeros)", "static", lambda s: bombs.huge_range("/big.bin")),
    Attack("form bomb, urlencoded", "app", lambda s: bombs.urlencoded_bomb("/form", s.form),
           worker_mib=16.0),
    Attack("form bomb, multipart parts", "app",
           lambda s: bombs.multipart_bomb("/form", s.parts)),
    Attack("header bomb, 10,000 fields", "static", lambda s: bombs.many_headers("/")),
    Attack("header bomb, one 2 MiB field", "static", lambda s: bombs.huge_header("/")),
    Attack("header bomb, 900 KiB cookie", "app", lambda s: bombs.huge_cookie("/cookies")),
    Attack("tiny chunks (1-byte chunks)", "app", lambda s: bombs.tiny_chunks("/body", s.chunks)),
    Attack("Content-Length: 5, 5", "app", lambda s: bombs.double_length("/body")),
    Attack("Content-Length with chunked", "app", lambda s: bombs.length_and_chunked("/body")),
    Attack("dotfile /.env", "static", lambda s: bombs.dotfile("/.env")),
    Attack("open redirect GET //docs", "static", lambda s: bombs.double_slash("//docs")),
    Attack("Forwarded: for=127.0.0.1 from 127.0.0.2", "app",
           lambda s: bombs.forwarded_spoof("/who")),
)


@dataclass
class Row:
    """One line of the report (memory in MiB, latency in ms)."""

    attack: str
    server_did: str
    normal_worst_ms: float
    normal_failed: int
    master_peak_mib: float
    master_growth_mib: float
    worker_peak_mib: float
    worker_growth_mib: float
    fds_before: int
    fds_after: int
    workers_died: int
    verdict: str

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _answered(target: Target, deadline: float) -> bool:
    """Wait until a normal request is answered (bounded)."""
    probe = NormalClient(target, timeout=2.0)
    while time.monotonic() < deadline:
        probe.once()
        if not probe.failures:
            return True
        probe.failures.clear()
        time.sleep(0.1)
    return False


def _descriptors(target: Target, want: int | None, within: float) -> int:
    """The descriptor count once it is steady (three equal samples 0.1 s apart).

    With `want`, keep waiting (up to `within` seconds) until it is steady at `want`.
    """
    deadline = time.monotonic() + within
    samples = [target.descriptors()]
    while time.monotonic() < deadline:
        time.sleep(0.1)
        samples.append(target.descriptors())
        steady = len(set(samples[-3:])) == 1 and len(samples) >= 3
        if steady and (want is None or samples[-1] == want):
            break
    return samples[-1]


def run_attack(attack: Attack, target: Target, scale: Scale) -> Row:
    """Run one attack beside the normal client; measure it; judge it."""
    _answered(target, time.monotonic() + RECOVERY)
    fds_before = _descriptors(target, None, FDS_WAIT)
    workers_before = target.workers()
    deaths_before = target.deaths()
    connections = max(4, 2 * len(workers_before))
    if attack.name.startswith("idle"):
        connections = scale.idle
    duration = scale.duration if attack.holds else scale.burst
    function = attack.build(scale)
    with Watch(target) as watch, NormalClient(target, timeout=duration + 5) as normal:
        tally = function(target, duration, connections)
    _answered(target, time.monotonic() + RECOVERY)
    fds_after = _descriptors(target, fds_before, FDS_WAIT)
    died = max(target.deaths() - deaths_before,
               sum(not alive(pid) for pid in workers_before))
    peaks = watch.peaks
    row = Row(attack.name, tally.text(), round(normal.worst * 1000), len(normal.failures),
              round(peaks.master_peak / KiB, 1),
              round(max(0, peaks.master_peak - peaks.master_before) / KiB, 1),
              round(peaks.worker_peak / KiB, 1),
              round(max(0, peaks.worker_growth) / KiB, 1),
              fds_before, fds_after, died, "")
    row.verdict = verdict(attack, row, tally.problems)
    return row


def verdict(attack: Attack, row: Row, problems: list[str]) -> str:
    """``ok`` or ``FAIL: reasons`` (see the module's docstring for the rules)."""
    reasons = list(problems)
    if row.normal_worst_ms > LATENCY_LIMIT * 1000:
        reasons.append(f"normal client waited {row.normal_worst_ms:.0f} ms > "
                       f"{LATENCY_LIMIT * 1000:.0f}")
    if row.normal_failed:
        reasons.append(f"{row.normal_failed} normal requests failed")
    if row.master_growth_mib > attack.master_mib:
        reasons.append(f"master grew {row.master_growth_mib} MiB > {attack.master_mib:g}")
    if row.worker_growth_mib > attack.worker_mib:
        reasons.append(f"a worker grew {row.worker_growth_mib} MiB > {attack.worker_mib:g}")
    if row.workers_died:
        reasons.append(f"{row.workers_died} worker(s) died")
    if row.fds_after != row.fds_before:
        reasons.append(f"descriptors {row.fds_before} -> {row.fds_after}")
    return "ok" if not reasons else "FAIL: " + "; ".join(reasons)
