"""The diffs between step programs on the chapter pages are the programs' real diffs.

``tools/diffs.py`` writes ``docs/examples/diffs/<layer>/<step>.diff`` from
the step programs; these tests regenerate every diff and compare it with
the file a page includes, so a step program cannot change without its
diff (run ``python3 tools/diffs.py`` to rewrite them).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from support import ROOT

TOOL = ROOT / "tools" / "diffs.py"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("diffs_tool", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


diffs = load_tool()


def test_every_diff_file_is_up_to_date() -> None:
    stale = [str(path.relative_to(ROOT)) for path in diffs.stale()]
    assert stale == [], "run: python3 tools/diffs.py"


def test_the_check_finds_a_stale_a_missing_and_an_extra_diff(tmp_path: Path) -> None:
    copy = tmp_path / "diffs"
    shutil.copytree(diffs.DIFFS, copy)
    assert diffs.stale(copy) == []
    changed = diffs.diff_path("layer1/step03_idle.py", copy)
    changed.write_text(changed.read_text() + "+one more line\n")
    missing = diffs.diff_path("layer3/step02_fields.py", copy)
    missing.unlink()
    extra = copy / "layer1" / "step09_nothing.diff"
    extra.write_text("")
    assert diffs.stale(copy) == sorted([changed, missing, extra])
    assert diffs.write(copy) == sorted([changed, missing, extra])
    assert diffs.stale(copy) == [] and not extra.exists()


def test_the_command_line_check_exits_0_when_everything_is_current() -> None:
    result = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_diff_shows_code_only_and_leads_from_one_program_to_the_next() -> None:
    for earlier, later in diffs.STEPS:
        text = diffs.diff_path(later).read_text(encoding="utf-8")
        lines = text.splitlines()
        assert lines[:2] == [f"--- {earlier}", f"+++ {later}"]
        assert "8<--" not in text  # section markers would be eaten by the include
        assert any(line.startswith("+") for line in lines[2:])
        # applying the hunks to the earlier program gives the later one
        assert apply(diffs.code_lines(diffs.EXAMPLES / earlier), lines[2:]) == \
            diffs.code_lines(diffs.EXAMPLES / later)


def apply(old: list[str], hunks: list[str]) -> list[str]:
    """Apply unified-diff hunks (without file headers) to old lines."""
    new: list[str] = []
    position = 0
    for line in hunks:
        if line.startswith("@@"):
            first, _, count = line.split()[1][1:].partition(",")  # "-first,count"
            start = int(first) - (0 if count == "0" else 1)
            new.extend(old[position:start])
            position = start
        elif line.startswith("-"):
            position += 1
        elif line.startswith("+"):
            new.append(line[1:] + "\n")
        else:
            new.append(old[position])
            position += 1
    return new + old[position:]


def test_every_diff_is_shown_on_a_chapter_page() -> None:
    pages = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "docs").rglob("*.md"))
    missing = [str(path.relative_to(ROOT)) for path in diffs.expected()
               if f'--8<-- "{path.relative_to(ROOT).as_posix()}"' not in pages]
    assert missing == []
