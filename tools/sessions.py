"""Record the terminal sessions of the tutorial; check them against a fresh run.

Every ``console`` block on the site that shows a program's output is
included from a file ``docs/sessions/NAME.txt``, and that file is written by
running ``docs/sessions/NAME.py``: a small recording script that starts the
real server (by PID, on a port the kernel chose), runs the commands a
reader would type, and stops the server again. Each named *block* of a
recording (one terminal: the server's, a client's) is one snippet section
of the ``.txt`` file, which a page includes inside its console fence:

    ```console
    --8<-- "docs/sessions/part1-echo.txt:server"
    ```

What differs from one run to the next is mapped to stable values before it
is stored (``display``): the real ports to the ports the page names, the
client's ephemeral ports and the PIDs to numbers in order of appearance,
the scratch folder to ``/tmp``. What still differs (clock times, dates,
durations, tool versions) is masked only when two recordings are compared
(``mask``); the stored text keeps the real values of the run that wrote it.

    python tools/sessions.py              # re-run every recording, report drift
    python tools/sessions.py --update     # re-record (only files whose masked text changed)
    python tools/sessions.py NAME...      # only these recordings

``tests/docs/test_sessions.py`` re-runs each recording and fails when its
masked output differs from the stored text. The running is in
``session_run.py``, the mapping and masking of text in ``session_text.py``;
recording scripts import both from here. A script synchronises on lines the
programs print: when a program's messages change, the patterns it waits for
may have to change with them. After a change of behaviour,
``make sessions`` re-records all of them; review the diff like code.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import importlib.util
import inspect
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

sys.path.insert(0, str(Path(__file__).resolve().parent))
from session_run import (  # re-exported for the recording scripts
    CLIENT,
    READY,
    ROOT,
    TIMEOUT,
    UNIX_CLIENT,
    Recording,
    RecordingError,
    Server,
)
from session_text import MASKS, Names, mask, pid_context

__all__ = ["CLIENT", "MASKS", "READY", "TIMEOUT", "UNIX_CLIENT", "Names", "Recording",
           "RecordingError", "Server", "mask", "pid_context"]

SESSIONS = ROOT / "docs" / "sessions"
SECTION = re.compile(r"^--8<-- \[(start|end):([\w.-]+)\]$")

# -- recordings on disk ----------------------------------------------------------------------


def scripts(names: Sequence[str] = ()) -> list[Path]:
    found = sorted(SESSIONS.glob("*.py"))
    if names:
        found = [p for p in found if p.stem in names]
        missing = set(names) - {p.stem for p in found}
        if missing:
            raise SystemExit(f"no such recording: {', '.join(sorted(missing))}")
    return found


def load(script: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_session_{script.stem}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(script: Path) -> Recording:
    """Run one recording script in a scratch folder; return the finished recording."""
    module = load(script)
    workdir = Path(tempfile.mkdtemp(prefix=f"session-{script.stem}-"))
    recording = Recording(script.stem, workdir)
    try:
        module.record(recording)
    finally:
        recording.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return recording


def sections(text: str) -> dict[str, list[str]]:
    """The blocks of a stored recording."""
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        marker = SECTION.match(line)
        if marker and marker.group(1) == "start":
            current = marker.group(2)
            blocks[current] = []
        elif marker:
            current = None
        elif current is not None:
            blocks[current].append(line)
    return blocks


def differences(recording: Recording, stored: str) -> list[str]:
    """How the masked blocks of a fresh recording differ from the stored text."""
    fresh = sections(recording.text())
    old = sections(stored)
    problems = []
    if fresh.keys() != old.keys():
        problems.append(f"blocks {sorted(old)} stored, {sorted(fresh)} recorded")
    for block in fresh.keys() & old.keys():
        pids = recording.names.pid_context
        new_lines = [mask(line, recording.masks, pids) for line in fresh[block]]
        old_lines = [mask(line, recording.masks, pids) for line in old[block]]
        if block in recording.unordered_blocks:
            new_lines, old_lines = sorted(new_lines), sorted(old_lines)
        if new_lines != old_lines:
            diff = difflib.unified_diff(old_lines, new_lines, "stored", "recorded", lineterm="")
            problems.append(f"block {block}:\n" + "\n".join(diff))
    return problems


# -- signatures ---------------------------------------------------------------------------

SIGNATURES = SESSIONS / "signatures.txt"
SIGNATURE_FUNCTIONS = ["layer2_prefork.listen", "layer2_prefork.run"]
WIDTH = 72


def plain_signature(function: Callable[..., object], name: str) -> str:
    """``name(a, b=1, *, c=None) -> R`` without annotations, wrapped at WIDTH."""
    signature = inspect.signature(function)
    parts = []
    star_done = False
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            parts.append("*" + parameter.name)
            star_done = True
            continue
        if parameter.kind is parameter.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        text = parameter.name
        if parameter.default is not parameter.empty:
            text += "=" + repr(parameter.default)
        parts.append(text)
    returns = signature.return_annotation
    tail = ")" + ("" if returns is signature.empty else f" -> {returns}")
    lines, line = [], name + "("
    indent = " " * len(line)
    for index, part in enumerate(parts):
        piece = part + ("," if index < len(parts) - 1 else tail)
        if len(line) + len(piece) + 1 > WIDTH and line.strip() not in ("", name + "("):
            lines.append(line.rstrip())
            line = indent
        line += piece + " "
    lines.append(line.rstrip())
    return "\n".join(lines)


def signatures_text() -> str:
    sys.path.insert(0, str(ROOT))
    out = []
    for dotted in SIGNATURE_FUNCTIONS:
        module_name, _, name = dotted.rpartition(".")
        module = importlib.import_module(module_name)
        out += [f"--8<-- [start:{name}]", plain_signature(getattr(module, name), name),
                f"--8<-- [end:{name}]"]
    return "\n".join(out) + "\n"


# -- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    sys.modules.setdefault("sessions", sys.modules[__name__])  # what the scripts import
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="recordings to run (default: all)")
    parser.add_argument("--update", action="store_true",
                        help="write the recordings whose masked text changed")
    args = parser.parse_args(argv)
    failed = 0
    if not args.names:
        text = signatures_text()
        if not SIGNATURES.exists() or SIGNATURES.read_text(encoding="utf-8") != text:
            if args.update:
                SIGNATURES.write_text(text, encoding="utf-8")
                print("signatures: written")
            else:
                print("signatures: differ from the source (run with --update)")
                failed += 1
    for script in scripts(args.names):
        target = script.with_suffix(".txt")
        started = time.monotonic()
        try:
            recording = record(script)
        except RecordingError as error:
            print(f"{script.stem}: FAILED: {error}")
            failed += 1
            continue
        took = f"{time.monotonic() - started:.1f} s"
        stored = target.read_text(encoding="utf-8") if target.exists() else ""
        problems = differences(recording, stored) if stored else ["not recorded yet"]
        if not problems:
            print(f"{script.stem}: same ({took})")
        elif args.update:
            target.write_text(recording.text(), encoding="utf-8")
            print(f"{script.stem}: written ({took})")
        else:
            print(f"{script.stem}: DIFFERS ({took})\n" + "\n".join(problems))
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
