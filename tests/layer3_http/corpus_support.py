"""Load the parser corpus (``corpus/*.txt``) and replay inputs in pieces.

Corpus format, one file per parser, many cases per file::

    # A comment (outside a case's input).
    === name-of-the-case
    GET / HTTP/1.1\\r\\n
    Host: example.com\\r\\n
    \\r\\n
    ---
    path: ""
    headers: [["Host", "example.com"]]

* ``=== name`` starts a case. The lines up to ``---`` are the input: the
  file's own line breaks are not part of it, every byte is written out.
  Escapes: ``\\r``, ``\\n``, ``\\t``, ``\\s`` (a space, for trailing ones),
  ``\\\\`` and ``\\xHH``. A raw tab, a trailing space or a non-ASCII
  character in an input line is refused, so nothing is invisible.
* After ``---`` come expectations, ``key: JSON``; a line starting with a
  space continues the previous value. ``error``
  (a status) expects a `ClientError`; ``options`` are keyword arguments for
  the parser; the other keys are fields of the parser's result. A JSON
  string standing for bytes maps code points 0-255 to bytes (ISO-8859-1).

Every case is replayed whole, line by line (cut after each LF), byte by
byte, and cut at random places (seeded by the case name, so a failure
replays identically).
"""

from __future__ import annotations

import itertools
import json
import random
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import strategies as st

CORPUS = Path(__file__).parent / "corpus"
SPLITS = ("whole", "lines", "bytes", "random")
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|[rnts\\])|\\")
_SIMPLE = {"r": b"\r", "n": b"\n", "t": b"\t", "s": b" ", "\\": b"\\"}


@dataclass(frozen=True)
class Case:
    """One corpus case: the input bytes and what the parser must say."""

    name: str
    data: bytes
    expect: dict[str, Any]
    where: str = field(compare=False)

    @property
    def options(self) -> dict[str, Any]:
        """Keyword arguments for the parser."""
        return dict(self.expect.get("options", {}))


def unescape(text: str, where: str = "?") -> bytes:
    """Turn one input line of the corpus into bytes."""
    if "\t" in text or text != text.rstrip(" ") or not text.isascii():
        raise ValueError(f"{where}: raw tab, trailing space or non-ASCII in an input line")
    out = bytearray()
    position = 0
    for match in _ESCAPE.finditer(text):
        out += text[position : match.start()].encode("ascii")
        escape = match[1]
        if escape is None:
            raise ValueError(f"{where}: unknown escape in {text!r}")
        out += bytes([int(escape[1:], 16)]) if escape[0] == "x" else _SIMPLE[escape]
        position = match.end()
    out += text[position:].encode("ascii")
    return bytes(out)


def as_bytes(text: str) -> bytes:
    """Bytes for a JSON string of the expectations (code points 0-255)."""
    return text.encode("iso-8859-1")


def load(file_name: str) -> list[Case]:
    """Read every case of ``corpus/<file_name>``."""
    path = CORPUS / file_name
    cases: list[Case] = []
    name = ""
    data = bytearray()
    expect: dict[str, Any] = {}
    section = "outside"
    start = 0
    for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
        where = f"{path.name}:{number}"
        if line.startswith("=== "):
            if section != "outside":
                cases.append(Case(name, bytes(data), expect, f"{path.name}:{start}"))
            name, data, expect, section, start = line[4:].strip(), bytearray(), {}, "input", number
        elif section == "input" and line == "---":
            section = "expect"
        elif section == "input":
            data += unescape(line, where)
        elif line.strip() and not line.startswith("#"):
            if section != "expect":
                raise ValueError(f"{where}: text outside a case")
            if line[0] == " " and expect:
                key = list(expect)[-1]
                expect[key] += line
            else:
                key, _, value = line.partition(":")
                expect[key.strip()] = value
    if section != "outside":
        cases.append(Case(name, bytes(data), expect, f"{path.name}:{start}"))
    for case in cases:
        for key, value in case.expect.items():
            case.expect[key] = json.loads(value)
    names = [case.name for case in cases]
    duplicates = {case for case in names if names.count(case) > 1}
    if duplicates:
        raise ValueError(f"{path.name}: duplicate case names {sorted(duplicates)}")
    return cases


def split(data: bytes, how: str, seed: str = "") -> list[list[bytes]]:
    """Cut `data` the way `how` names; ``random`` gives three cuttings."""
    if how == "whole":
        return [[data]]
    if how == "lines":
        return [[line for line in data.splitlines(keepends=True)] or [b""]]
    if how == "bytes":
        return [[data[i : i + 1] for i in range(len(data))] or [b""]]
    if how == "random":
        rng = random.Random(zlib.crc32(seed.encode()))
        return [random_pieces(data, rng) for _ in range(3)]
    raise ValueError(how)


def random_pieces(data: bytes, rng: random.Random) -> list[bytes]:
    """Cut `data` at a random number of random places (empty pieces allowed)."""
    cuts = sorted(rng.randint(0, len(data)) for _ in range(rng.randint(0, 12)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def replays(file_name: str) -> list[Any]:
    """Return a pytest param per (case, way of cutting) of a corpus file."""
    return [pytest.param(case, how, id=f"{case.name}-{how}")
            for case in load(file_name) for how in SPLITS]


@st.composite
def cuttings(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """Hypothesis strategy: `data` cut at up to twelve drawn places."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=12)))
    return [data[a:b] for a, b in itertools.pairwise([0, *cuts, len(data)])]
