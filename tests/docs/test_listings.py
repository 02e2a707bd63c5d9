"""Guards for the tutorial: every listing is a tested file, every file is shown.

A Python fence in a page may hold only ``pymdownx.snippets`` include lines.
Every example under ``docs/examples/`` must be included by some page and be
named by some test, so nothing on the site is untested and nothing tested is
hidden.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = DOCS / "examples"
FENCE = re.compile(r"^([ \t]*)```\s*(?:py|python|pycon)\b[^\n]*\n(.*?)^\1```", re.M | re.S)
INCLUDE = re.compile(r'^\s*-+8<-+\s+"([^"]+)"\s*$')


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*.py") if p.name != "__init__.py")


def page_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in pages())


def hand_typed_fences(text: str) -> list[str]:
    bad = []
    for match in FENCE.finditer(text):
        lines = [line for line in match.group(2).splitlines() if line.strip()]
        if not lines or not all(INCLUDE.match(line) for line in lines):
            bad.append(match.group(0)[:80])
    return bad


def test_the_guard_catches_a_hand_typed_fence() -> None:
    assert hand_typed_fences("```python\nprint('hi')\n```\n")
    assert not hand_typed_fences('```python\n--8<-- "docs/examples/layer1/x.py:run"\n```\n')


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_no_hand_typed_python_listing(page: Path) -> None:
    assert hand_typed_fences(page.read_text(encoding="utf-8")) == []


def test_every_include_names_an_existing_file_and_section() -> None:
    for page in pages():
        for line in page.read_text(encoding="utf-8").splitlines():
            match = INCLUDE.match(line)
            if not match:
                continue
            target = match.group(1)
            path_part, _, section = target.partition(":")
            if re.fullmatch(r"\d+(:\d+)?", section):
                section = ""
            path = ROOT / path_part
            assert path.is_file(), f"{page}: {target}"
            if section:
                body = path.read_text(encoding="utf-8")
                assert f"--8<-- [start:{section}]" in body, f"{page}: {target}"
                assert f"--8<-- [end:{section}]" in body, f"{page}: {target}"


def test_every_example_is_shown_on_a_page() -> None:
    text = page_text()
    missing = [str(p.relative_to(ROOT)) for p in example_files()
               if str(p.relative_to(EXAMPLES)) not in text]
    assert missing == []


def test_every_example_is_run_by_a_test() -> None:
    tests_text = "\n".join(p.read_text(encoding="utf-8")
                           for p in (ROOT / "tests").rglob("*.py")
                           if p.resolve() != Path(__file__).resolve())
    missing = [str(p.relative_to(ROOT)) for p in example_files()
               if str(p.relative_to(EXAMPLES)) not in tests_text]
    assert missing == []
