"""From measurements to figures: ratios per round, medians with min and max, Markdown.

`Results` holds every `Measurement` by workload, server and round. A
ratio is always taken within one round (a server's value over the
reference's value measured minutes apart at most, on the same noisy
machine); only then are the rounds summarised, as median, min and max.
`markdown` renders the tables; `targets` checks our server's figures
against the goals of the performance page.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field

from _servers import SERVERS
from _workloads import WORKLOADS, Measurement

# (workload, figure, "ratio", "value" or an extra's key, comparison, goal); a goal written
# "SERVER*F" is F times that server's median of the same figure in the same run
TARGETS: tuple[tuple[str, str, str, str, float | str], ...] = (
    ("keepalive", "keep-alive, 16 connections: ratio to limit", "ratio", ">=", "uwsgi*1"),
    ("keepalive", "keep-alive, 16 connections: p99, µs", "p99_us", "<=", 10000),
    ("one", "one connection: ratio to limit", "ratio", ">=", 0.75),
    ("close", "Connection: close: ratio to limit", "ratio", ">=", 0.35),
    ("close", "Connection: close: ratio to limit, against gunicorn sync", "ratio", ">=",
     "gunicorn-sync*1.5"),
    ("upload-256-chunked", "256 MiB chunked upload: ratio to sink", "ratio", ">=",
     "gunicorn-sync*1"),
    ("upload-length", "upload with Content-Length: ratio to sink", "ratio", ">=", 0.5),
    ("upload-length", "upload with Content-Length: RSS growth, MiB", "rss_mib", "<=", 2.0),
    ("fairness", "16 keep-alive clients: answered in 1 s", "value", ">=", 16),
    ("fairness", "16 keep-alive clients: p99 wait, ms", "p99_ms", "<=", 50),
    ("idle", "1,000 idle connections: normal client's slowest request, ms", "max_ms", "<=", 100),
    ("slowloris", "100 slowloris: normal client's slowest request, ms", "max_ms", "<=", 1000),
    ("never-close", "never-close: normal client's slowest request, ms", "max_ms", "<=", 100),
    ("slow-reader", "slow readers (handler): normal client's slowest request, ms", "max_ms",
     "<=", 100),
    ("slow-upload", "slow uploads: normal client's slowest request, ms", "max_ms", "<=", 100),
)
STATIC_TARGETS: tuple[tuple[str, str, str, str, float | str], ...] = (
    ("slow-reader-static", "slow readers (--static): normal client's slowest request, ms",
     "max_ms", "<=", 100),
)
"""Goals measured on the ``ours-static`` server (ours serving a folder)."""


@dataclass(frozen=True)
class Summary:
    """Median, min and max of a figure over the rounds."""

    median: float
    low: float
    high: float
    count: int

    def text(self, digits: int = 2) -> str:
        """``median (min-max)``, or the median alone when they agree; ∞: never answered."""
        def number(value: float) -> str:
            return "∞" if value == float("inf") else f"{value:.{digits}f}"

        if self.count == 1 or self.low == self.high:
            return number(self.median)
        return f"{number(self.median)} ({number(self.low)}-{number(self.high)})"


def summarise(values: Iterable[float | None]) -> Summary | None:
    """The `Summary` of the values present, or `None` if there are none."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return Summary(statistics.median(present), min(present), max(present), len(present))


@dataclass
class Results:
    """Every measurement of a run: ``data[workload][server]`` is one entry per round."""

    rounds: int
    data: dict[str, dict[str, list[Measurement | None]]] = field(default_factory=dict)

    def record(self, workload: str, server: str, round_index: int, m: Measurement) -> None:
        entries = self.data.setdefault(workload, {}).setdefault(server, [None] * self.rounds)
        entries[round_index] = m

    def values(self, workload: str, server: str) -> list[float | None]:
        return [m.value if m else None for m in self.data.get(workload, {}).get(server, [])]

    def extras(self, workload: str, server: str, key: str) -> list[float | None]:
        return [m.extra.get(key) if m else None
                for m in self.data.get(workload, {}).get(server, [])]

    def ratios(self, workload: str, server: str) -> list[float | None]:
        """The server's value over the reference's, round by round."""
        reference = self.values(workload, WORKLOADS[workload].reference)
        own = self.values(workload, server)
        return [v / r if v is not None and r else None
                for v, r in zip(own, reference, strict=False)]

    def errors(self) -> list[str]:
        found = []
        for workload, servers in self.data.items():
            for server, entries in servers.items():
                for index, m in enumerate(entries):
                    if m is not None and m.error:
                        found.append(f"{workload}, {server}, round {index + 1}: {m.error}")
        return found

    def servers(self) -> list[str]:
        seen = {s for by_server in self.data.values() for s in by_server}
        return [name for name in SERVERS if name in seen]


def _cell(summary: Summary | None, digits: int = 2) -> str:
    return "-" if summary is None else summary.text(digits)


def ratio_table(results: Results) -> list[str]:
    """Ratios to the reference, median (min-max) over the rounds."""
    names = [w for w in WORKLOADS if w in results.data]
    lines = ["| server | " + " | ".join(WORKLOADS[w].title for w in names) + " |",
             "| --- |" + " ---: |" * len(names)]
    for server in results.servers():
        cells = [_cell(summarise(results.ratios(w, server)))
                 if server in results.data[w] else "" for w in names]
        lines.append(f"| {SERVERS[server].label} | " + " | ".join(cells) + " |")
    return lines


SMALL = (("keepalive", None, "keep-alive req/s", 0), ("keepalive", "cpu_us", "CPU µs/req", 0),
         ("one", None, "one connection req/s", 0),
         ("one", "p50_us", "p50 µs", 0), ("one", "p99_us", "p99 µs", 0),
         ("close", None, "close req/s", 0), ("close", "cpu_us", "CPU µs/req", 0),
         ("fairness", None, "answered in 1 s", 0), ("fairness", "p99_ms", "fairness p99 ms", 1))
CROWD = (("idle", None, "idle: normal in 0.1 s", 0), ("idle", "p50_ms", "p50 ms", 1),
         ("idle", "max_ms", "max ms", 1), ("idle", "idle_opened", "idle opened", 0),
         ("idle", "idle_answered", "idle answered", 0),
         ("idle", "master_rss_kib", "master RSS growth KiB", 0),
         ("slowloris", None, "slowloris: normal in 1 s", 0), ("slowloris", "p50_ms", "p50 ms", 1),
         ("slowloris", "max_ms", "max ms", 1))
HOSTILE = (("never-close", None, "never-close: normal in 0.1 s", 0),
           ("never-close", "max_ms", "max ms", 1),
           ("never-close", "close_released", "close: let go", 0),
           ("never-close", "close_release_max_s", "after s (max)", 2),
           ("never-close", "malformed_released", "malformed: let go", 0),
           ("never-close", "malformed_release_max_s", "after s (max)", 2),
           ("slow-reader", None, "slow readers: normal in 0.1 s", 0),
           ("slow-reader", "max_ms", "max ms", 1),
           ("slow-reader", "reader_released", "let go", 0),
           ("slow-reader", "reader_release_max_s", "after s (max)", 2),
           ("slow-reader-static", None, "static: normal in 0.1 s", 0),
           ("slow-reader-static", "max_ms", "max ms", 1),
           ("slow-reader-static", "reader_released", "let go", 0),
           ("slow-reader-static", "reader_release_max_s", "after s (max)", 2),
           ("slow-upload", None, "slow uploads: normal in 0.1 s", 0),
           ("slow-upload", "max_ms", "max ms", 1),
           ("slow-upload", "uploader_released", "let go", 0),
           ("slow-upload", "uploader_release_max_s", "after s (max)", 2))
LARGE = (("upload-length", None, "Content-Length MB/s", 0),
         ("upload-length", "rss_mib", "RSS growth MiB", 1),
         ("upload-chunked", None, "chunked MB/s", 0), ("upload-chunked", "rss_mib", "RSS MiB", 1),
         ("multipart", None, "multipart MB/s", 0), ("multipart", "rss_mib", "RSS MiB", 1),
         ("upload-256-chunked", None, "256 MiB chunked MB/s", 0),
         ("upload-256-chunked", "rss_mib", "RSS MiB", 1))


def figure_table(results: Results, columns: tuple[tuple[str, str | None, str, int], ...]
                 ) -> list[str]:
    """Absolute figures, median (min-max) over the rounds."""
    columns = tuple(c for c in columns if c[0] in results.data)
    if not columns:
        return []
    lines = ["| server | " + " | ".join(c[2] for c in columns) + " |",
             "| --- |" + " ---: |" * len(columns)]
    for server in results.servers():
        cells = []
        for workload, key, _title, digits in columns:
            if server not in results.data[workload]:
                cells.append("")
                continue
            values = (results.values(workload, server) if key is None
                      else results.extras(workload, server, key))
            cells.append(_cell(summarise(values), digits))
        if any(cells):
            lines.append(f"| {SERVERS[server].label} | " + " | ".join(cells) + " |")
    return lines


def targets(results: Results) -> list[tuple[str, str, Summary | None, bool | None]]:
    """Our server's figures against the goals: (figure, goal, summary, met)."""
    checked = []
    goals = [("ours", *t) for t in TARGETS] + [("ours-static", *t) for t in STATIC_TARGETS]
    def figure(server: str, workload: str, key: str) -> Summary | None:
        if server not in results.data.get(workload, {}):
            return None
        return summarise(results.ratios(workload, server) if key == "ratio"
                         else results.values(workload, server) if key == "value"
                         else results.extras(workload, server, key))

    for server, workload, title, key, comparison, goal in goals:
        if server not in results.data.get(workload, {}):
            continue
        summary = figure(server, workload, key)
        written = f"{comparison} {goal}"
        if isinstance(goal, str):  # relative to a peer in the same run
            peer, _, factor = goal.partition("*")
            reference = figure(peer, workload, key)
            if reference is None:
                continue
            written = (f"{comparison} {float(factor):g} times {SERVERS[peer].label} "
                       f"({reference.median:.2f})")
            goal = reference.median * float(factor)
        met = None if summary is None else (
            summary.median >= goal if comparison == ">=" else summary.median <= goal)
        checked.append((title, written, summary, met))
    return checked


def target_table(results: Results) -> list[str]:
    rows = targets(results)
    if not rows:
        return []
    lines = ["| our figure (median) | goal | measured | met |", "| --- | --- | ---: | --- |"]
    for title, goal, summary, met in rows:
        verdict = "-" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {title} | {goal.replace('>=', '≥').replace('<=', '≤')} | "
                     f"{_cell(summary)} | {verdict} |")
    return lines


def markdown(results: Results, header: list[str]) -> str:
    """The whole report: header lines, then the tables."""
    parts = [*header, "", "Ratios to the reference measured in the same round (limit server for "
             "small requests, raw byte sink for uploads; higher is better), median (min-max) "
             f"over {results.rounds} round{'s' if results.rounds != 1 else ''}:", "",
             *ratio_table(results)]
    small, large = figure_table(results, SMALL), figure_table(results, LARGE)
    crowd = figure_table(results, CROWD)
    hostile = figure_table(results, HOSTILE)
    if small:
        parts += ["", "Small requests, measured values:", "", *small]
    if crowd:
        parts += ["", "Idle and slow clients, measured values (the normal client's requests "
                  "answered in time, its p50 and slowest request, ∞: not answered; idle "
                  "connections opened and answered; master RSS growth: the resident memory of "
                  "the server's own process while it holds the idle connections minus before "
                  "they opened, KiB):", "", *crowd]
    if hostile:
        parts += ["", "Hostile clients, measured values (the normal client's requests answered "
                  "within 0.1 s and its slowest, ∞: not answered; how many hostile "
                  "connections the server let go of while they were watched, and after how "
                  "many seconds the last of them; '-': none):", "", *hostile]
    if large:
        parts += ["", "Uploads, measured values (RSS growth: the worker's peak resident "
                  "memory during the upload minus its resident memory before):", "", *large]
    goals = target_table(results)
    if goals:
        parts += ["", "Goals for our server:", "", *goals]
    errors = results.errors()
    if errors:
        parts += ["", "Failed measurements:", "", *(f"- {e}" for e in errors)]
    return "\n".join(parts) + "\n"
