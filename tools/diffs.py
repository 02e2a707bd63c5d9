"""Write the diffs between step programs that the chapter pages show.

Each chapter's step program grows out of an earlier one; the page shows
what changed as a unified diff, included from
``docs/examples/diffs/<layer>/<step>.diff``. This command writes those
files from the programs themselves, so a diff on the site is always the
difference between the two files as they are:

    python3 tools/diffs.py           # rewrite the diff files (or: make diffs)
    python3 tools/diffs.py --check   # exit 1 if a file is missing or stale

The test ``tests/docs/test_diffs.py`` runs the check.

The module docstrings (which say what each program is) and the snippet
section markers (which only name parts for the pages) are left out, so a
diff shows the code that changed and nothing else.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
DIFFS = EXAMPLES / "diffs"

# (earlier program, later program): each later one grew out of the earlier one.
STEPS: tuple[tuple[str, str], ...] = (
    ("layer1/step01_echo.py", "layer1/step02_line_reader.py"),
    ("layer1/step02_line_reader.py", "layer1/step02_buffered.py"),
    ("layer1/step02_buffered.py", "layer1/step03_idle.py"),
    ("layer1/step02_buffered.py", "layer1/step04_ending.py"),
    ("layer1/step03_poll.py", "layer1/step05_tls.py"),
    ("layer2/step01_fork.py", "layer2/step02_pass_fds.py"),
    ("layer2/step04_pool.py", "layer2/step05_signals.py"),
    ("layer2/step05_signals.py", "layer2/step06_main.py"),
    ("layer2/step04_pool.py", "layer2/step07_parking.py"),
    ("layer3/step01_request_line.py", "layer3/step02_fields.py"),
    ("layer3/step02_fields.py", "layer3/step03_bodies.py"),
    ("layer3/step02_tables.py", "layer3/step03_stream.py"),
)
MARKER = re.compile(r"-+8<-+\s+\[\s*(?:start|end)\s*:")


def code_lines(path: Path) -> list[str]:
    """The lines of a program without its module docstring and snippet markers."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    tree = ast.parse(text)
    first = tree.body[0] if tree.body else None
    if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
            and isinstance(first.value.value, str) and first.end_lineno is not None):
        lines = lines[first.end_lineno:]
        while lines and not lines[0].strip():
            lines = lines[1:]
    return [line for line in lines if not MARKER.search(line)]


def diff_path(later: str, diffs: Path = DIFFS) -> Path:
    """Where the diff that leads to `later` is kept."""
    return diffs / Path(later).with_suffix(".diff")


def render(earlier: str, later: str) -> str:
    """The unified diff from `earlier` to `later` (paths relative to docs/examples)."""
    lines = difflib.unified_diff(
        code_lines(EXAMPLES / earlier), code_lines(EXAMPLES / later),
        fromfile=earlier, tofile=later, n=2)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def expected(diffs: Path = DIFFS) -> dict[Path, str]:
    """Every diff file (in the folder `diffs`) and the text it must hold."""
    return {diff_path(later, diffs): render(earlier, later) for earlier, later in STEPS}


def stale(diffs: Path = DIFFS) -> list[Path]:
    """Diff files in `diffs` that are missing, out of date, or no longer produced."""
    wanted = expected(diffs)
    bad = [path for path, text in wanted.items()
           if not path.is_file() or path.read_text(encoding="utf-8") != text]
    extra = [path for path in diffs.rglob("*.diff") if path not in wanted]
    return sorted(bad + extra)


def write(diffs: Path = DIFFS) -> list[Path]:
    """Rewrite every diff file; remove those no longer produced; return what changed."""
    changed = stale(diffs)
    wanted = expected(diffs)
    for path in changed:
        if path in wanted:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(wanted[path], encoding="utf-8")
        else:
            path.unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="only report stale files; exit 1 if there are any")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale()
        for path in bad:
            print(f"stale: {path.relative_to(ROOT)}")
        if bad:
            print("run: python3 tools/diffs.py")
        return 1 if bad else 0
    for path in write():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
