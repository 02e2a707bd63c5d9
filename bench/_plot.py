"""The ratio chart as a self-contained SVG, written with the standard library.

One group of horizontal bars per workload, one bar per server (the
references are the line at 1); a bar is the median ratio over the rounds,
its whisker spans min to max, and a short dashed mark shows our server's
goal where there is one. Text and axes use ``currentColor`` so the chart
follows the site's light or dark scheme; ids carry a ``perf-`` prefix so
they cannot clash with other diagrams inlined on the site.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from html import escape

from _report import TARGETS, Results, summarise
from _servers import SERVERS
from _workloads import WORKLOADS

COLOURS = {"ours": "#3f51b5", "ours-static": "#7986cb", "gunicorn-sync": "#ef6c00",
           "gunicorn-gthread": "#00897b", "waitress": "#8e24aa", "granian": "#c62828",
           "uwsgi": "#2e7d32", "bjoern": "#6d4c41", "stdlib": "#78909c"}
SHORT = {"keepalive": "keep-alive, 16 conn.", "one": "one connection",
         "close": "Connection: close, 16", "upload-length": "upload, Content-Length",
         "upload-chunked": "upload, chunked", "multipart": "multipart to a file",
         "fairness": "fairness: answered in 1 s", "idle": "1,000 idle: normal 0.1 s",
         "slowloris": "100 slowloris: normal 1 s", "never-close": "never-close: normal 0.1 s",
         "slow-reader": "slow readers: normal 0.1 s",
         "slow-reader-static": "slow readers, static: 0.1 s",
         "slow-upload": "slow uploads: normal 0.1 s",
         "upload-256-chunked": "upload 256 MiB chunked"}
WIDTH, LEFT, RIGHT, TOP = 720, 175, 50, 80
BAR, GAP, GROUP_GAP = 10, 3, 16


def goals() -> dict[str, float]:
    """Our ratio goals by workload."""
    return {workload: goal for workload, _t, key, _c, goal in TARGETS
            if key == "ratio" and isinstance(goal, float | int)}


def svg(results: Results, caption: str) -> str:
    """The chart for `results`; `caption` goes into its title."""
    workloads = [w for w in WORKLOADS if w in results.data]
    servers = [s for s in results.servers() if s in COLOURS]
    summaries = {(w, s): summarise(results.ratios(w, s)) for w in workloads for s in servers}
    highest = max([1.0, *(x.high for x in summaries.values() if x and x.high != math.inf)])
    x_max = math.ceil(highest * 4) / 4
    group = len(servers) * (BAR + GAP) + GROUP_GAP
    legend = _legend(servers)
    first = max(TOP, _legend_bottom(servers) + 30)
    height = first + len(workloads) * group + 40

    def x(ratio: float) -> float:
        return LEFT + (WIDTH - LEFT - RIGHT) * min(ratio, x_max) / x_max

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
           f'width="{WIDTH}" height="{height}" role="img" aria-labelledby="perf-title" '
           'font-family="sans-serif" font-size="12" fill="currentColor">',
           f'  <title id="perf-title">{escape(caption)}</title>']
    out += legend
    out += _grid(x, x_max, first - 8, height - 34)
    for index, workload in enumerate(workloads):
        top = first + index * group
        out.append(f'  <text x="{LEFT - 10}" y="{top + (group - GROUP_GAP) / 2 + 4:.1f}" '
                   f'text-anchor="end">{escape(SHORT.get(workload, workload))}</text>')
        for row, server in enumerate(servers):
            summary = summaries[(workload, server)]
            if summary is None:
                continue
            y = top + row * (BAR + GAP)
            out += _bar(x, y, summary.median, summary.low, summary.high, COLOURS[server])
        goal = goals().get(workload)
        if goal is not None and "ours" in servers:
            y = top + servers.index("ours") * (BAR + GAP)
            out.append(f'  <line x1="{x(goal):.1f}" y1="{y - 2}" x2="{x(goal):.1f}" '
                       f'y2="{y + BAR + 2}" stroke="currentColor" stroke-width="2" '
                       'stroke-dasharray="3 2"/>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _legend_rows(servers: list[str]) -> list[tuple[str, float, int]]:
    """Each colour key's server, x and y, in rows that fit the width."""
    placed = []
    left, y = 10.0, 10
    for server in servers:
        width = 24 + 6.8 * len(SERVERS[server].label)
        if left + width > WIDTH - 10:
            left, y = 10.0, y + 18
        placed.append((server, left, y))
        left += width
    return placed


def _legend_bottom(servers: list[str]) -> int:
    """The y of the line under the colour keys."""
    rows = _legend_rows(servers)
    return (rows[-1][2] if rows else 10) + 32


def _legend(servers: list[str]) -> list[str]:
    """Colour keys in rows that fit the width, then the key to the marks."""
    out: list[str] = []
    for server, left, y in _legend_rows(servers):
        label = SERVERS[server].label
        out.append(f'  <rect x="{left:.1f}" y="{y}" width="12" height="12" '
                   f'fill="{COLOURS[server]}"/>')
        out.append(f'  <text x="{left + 16:.1f}" y="{y + 10}">{escape(label)}</text>')
    out.append(f'  <text x="10" y="{_legend_bottom(servers)}" font-size="11">bar: median '
               'ratio to the reference in the same round; whisker: min to max; '
               'dashed mark: our goal</text>')
    return out


def _grid(x: Callable[[float], float], x_max: float, top: float, bottom: float) -> list[str]:
    out = ['  <g stroke="currentColor" opacity="0.35">']
    ticks = [i / 4 for i in range(int(x_max * 4) + 1)]
    for tick in ticks:
        dash = "" if tick in (0, 1) else ' stroke-dasharray="2 3"'
        out.append(f'    <line x1="{x(tick):.1f}" y1="{top}" x2="{x(tick):.1f}" '
                   f'y2="{bottom}"{dash}/>')
    out.append("  </g>")
    for tick in ticks:
        out.append(f'  <text x="{x(tick):.1f}" y="{bottom + 16}" text-anchor="middle" '
                   f'font-size="11">{tick:g}</text>')
    out.append(f'  <text x="{x(1.0):.1f}" y="{top - 2}" text-anchor="middle" font-size="11">'
               'reference = 1</text>')
    return out


def _bar(x: Callable[[float], float], y: float, median: float, low: float, high: float,
         colour: str) -> list[str]:
    middle = y + BAR / 2
    out = [f'  <rect x="{x(0):.1f}" y="{y}" width="{max(x(median) - x(0), 1):.1f}" '
           f'height="{BAR}" fill="{colour}"/>']
    if high > low:
        out.append(f'  <path d="M{x(low):.1f},{middle} H{x(high):.1f} M{x(low):.1f},{y + 2} '
                   f'V{y + BAR - 2} M{x(high):.1f},{y + 2} V{y + BAR - 2}" '
                   'stroke="currentColor" fill="none"/>')
    out.append(f'  <text x="{max(x(median), x(high)) + 4:.1f}" y="{y + BAR - 1}" '
               f'font-size="10">{median:.2f}</text>')
    return out
