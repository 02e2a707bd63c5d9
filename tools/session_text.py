"""Mapping a recorded run to stable text, and masking what differs between honest runs.

`Names.display` turns the real values of one run (ports, process ids, the
scratch folder) into the stable ones a page shows; `mask` hides, only for
comparing two runs, what no run can reproduce (clock times, dates,
durations, tool versions). Both work on text alone, by context ("a number
after the word worker"), not on the wording of particular log lines, so
that a change of the server's messages needs no change here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

PID_WORDS = [r"worker", r"workers", r"PID", r"pid", r"process", r"kill(?: -[A-Z0-9]+)?"]
"""A number after one of these words is a process id (``worker 4213``, ``kill -9 4213``)."""


def pid_context(extra: Sequence[str] = ()) -> re.Pattern[str]:
    """Where process ids are: after PID_WORDS and a separator, or after an extra prefix."""
    words = "|".join(PID_WORDS)
    prefixes = "|".join([rf"(?<![-\w])(?:{words})[ :=#]+", *extra])
    return re.compile(rf"((?:{prefixes}))(\d+(?:, \d+)*)\b")


PID_CONTEXT = pid_context()
PORT_CONTEXT = re.compile(r"((?:127\.0\.0\.1|localhost|\[::1\]):|\bport )(\d{4,5})\b")
"""A number after an address or the word ``port`` is a port."""
FIRST_PID = 4201
FIRST_EPHEMERAL_PORT = 40001


@dataclass
class Names:
    """Real values met in one recording and the stable ones shown instead."""

    ports: dict[int, int] = field(default_factory=dict)
    """real listening port -> the port the page names"""
    pids: dict[str, str] = field(default_factory=dict)
    ephemeral: dict[str, str] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    """real path prefix -> shown path prefix (longest first when applied)"""
    pid_context: re.Pattern[str] = PID_CONTEXT

    def display(self, text: str) -> str:
        for real, shown in sorted(self.paths.items(), key=lambda item: -len(item[0])):
            text = text.replace(real, shown)
        for real_port, shown_port in self.ports.items():
            text = re.sub(rf"\b{real_port}\b", str(shown_port), text)
        shown_ports = {str(port) for port in self.ports.values()}

        def port(match: re.Match[str]) -> str:
            number = match.group(2)
            if number in shown_ports:
                return match.group(0)
            if number not in self.ephemeral:
                self.ephemeral[number] = str(FIRST_EPHEMERAL_PORT + len(self.ephemeral))
            return match.group(1) + self.ephemeral[number]

        def pids(match: re.Match[str]) -> str:
            shown = []
            for number in match.group(2).split(", "):
                if number not in self.pids:
                    self.pids[number] = str(FIRST_PID + len(self.pids))
                shown.append(self.pids[number])
            return match.group(1) + ", ".join(shown)

        text = PORT_CONTEXT.sub(port, text)
        return self.pid_context.sub(pids, text)


MASKS: list[tuple[re.Pattern[str], str]] = [(re.compile(pattern), replacement)
                                            for pattern, replacement in [
    (r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", "<date>"),
    (r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", "[<date>]"),
    (r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?", "<time>"),
    (r"\b\d\d:\d\d:\d\d(?:[,.]\d+)?\b", "<time>"),
    (r"\b\d+m\d+\.\d+s\b", "<duration>"),
    (r"\b\d+(?:\.\d+)? ?(?:ms|µs|us)\b", "<duration>"),
    (r"(?<![\d.])\d+\.\d+ ?s\b", "<duration>"),
    (r"(?<![\d.])\d+\.\d{3}(?![\d.])", "<seconds>"),
    (r"\b(curl|Python|OpenSSL)/[\d.]+", r"\1/<version>"),
    (r"_ssl\.c:\d+", "_ssl.c:<line>"),
]]  # dates before times: an HTTP date holds a time
"""What differs between two honest runs; masked only when runs are compared."""


def mask(text: str, extra: Iterable[tuple[str, str]] = (),
         pids: re.Pattern[str] = PID_CONTEXT) -> str:
    """Text with the run-dependent parts replaced by placeholders, for comparison.

    Process ids become ``<pid>``: which worker serves a connection is the
    kernel's or the master's choice, not something a page promises.
    """
    for pattern, replacement in [*((re.compile(p), r) for p, r in extra), *MASKS]:
        text = pattern.sub(replacement, text)
    return pids.sub(lambda m: m.group(1) + re.sub(r"\d+", "<pid>", m.group(2)), text)
