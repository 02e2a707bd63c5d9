"""Terminal sessions on the site are recorded, and each recording still holds.

Every ``console`` block, and every ``text`` block that shows what a program
prints, is included from ``docs/sessions/NAME.txt``, which
``tools/sessions.py`` writes by running ``docs/sessions/NAME.py`` against the
real programs. The guard below fails on a hand-typed block that is not on
the allow-list (each entry says why it cannot be recorded); the replay
test runs every recording again and compares it, masked for clock times,
PIDs and the like, with the stored text. After a change of behaviour:
``make sessions`` re-records, and the diff is reviewed like code.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SESSIONS = DOCS / "sessions"
sys.path.insert(0, str(ROOT / "tools"))
import sessions  # noqa: E402

sys.modules.setdefault("sessions", sessions)

FENCE = re.compile(r"^([ \t]*)```(console|text)\b[^\n]*\n(.*?)^\1```", re.M | re.S)
INCLUDE = re.compile(r'^\s*-+8<-+\s+"([^"]+)"\s*$')

# Blocks that are typed, each with the reason it cannot be a recording. The
# key is the page and the first line of the block.
ALLOWED: dict[tuple[str, str], str] = {
    ("index.md", "$ make test"):
        "runs the whole suite, this test included; its output is the suite's report",
    ("deployment.md", "# systemctl daemon-reload"):
        "needs root and systemd on a real host; tests/layer2_prefork covers socket activation",
    ("part3/02-headers.md", 'field-line  = field-name ":" OWS field-value OWS'):
        "a grammar quoted from RFC 9110, not the output of a program",
    ("security.md", "=== cl-te-classic"):
        "an excerpt of a corpus file, not a session; test_hostile_smuggling.py replays the case",
    ("security.md",
     "$ .venv/bin/python -m pytest tests/layer3_http/test_hostile_*.py"
     " tests/layer2_prefork/test_fault_*.py"):
        "a test command shown without its output (the suite's report)",
    ("security.md",
     "$ .venv/bin/python -m pytest -m nightly tests/layer3_http/test_hostile_differential.py"):
        "a test command shown without its output (the nightly run's report)",
    ("teachers.md", "$ python docs/examples/tour/client.py 8002 'hello'"):
        "the client's behaviour, these answers included, is tests/examples/test_tour_client.py",
    ("teachers.md", "$ make handout HANDOUT=../course-2027"):
        "a command without output; tests/docs/test_teaching.py makes and checks a hand-out",
    ("teachers.md", "$ make grade STUDENT=../students/ada"):
        "a command whose report tests/docs/test_teaching.py runs and checks",
    ("teachers.md", "$ make setup"):
        "commands shown without their output: setting up, then one exercise's tests",
    ("teachers.md", '$ make serve HOST=0.0.0.0 SERVE_ARGS="--max-fork 64 --idle-timeout 5"'):
        "serves on every address, which recordings must not",
}


def pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "examples" not in p.parts)


def blocks(text: str) -> list[tuple[str, list[str]]]:
    """The terminal and text fences of a page: (kind, lines)."""
    return [(m.group(2), [line.strip() for line in m.group(3).splitlines() if line.strip()])
            for m in FENCE.finditer(text)]


def unrecorded(page: str, text: str) -> list[str]:
    """Blocks that are typed by hand and not allowed with a reason."""
    bad = []
    for kind, lines in blocks(text):
        targets = [m.group(1) for line in lines if (m := INCLUDE.match(line))]
        if lines and len(targets) == len(lines):
            recorded = all(t.startswith("docs/sessions/") for t in targets)
            a_file = kind == "text" and all(t.startswith("docs/examples/") for t in targets)
            if recorded or a_file:
                continue
        if (page, lines[0] if lines else "") not in ALLOWED:
            bad.append(f"{kind} block starting {lines[0] if lines else '(empty)'!r}")
    return bad


def test_the_guard_catches_a_typed_session_and_accepts_a_recorded_one() -> None:
    assert unrecorded("x.md", "```console\n$ echo hi\nhi\n```\n")
    assert unrecorded("x.md", "text\n\n    ```text\n    listening on port 1\n    ```\n")
    assert unrecorded("x.md", '```console\n--8<-- "docs/examples/layer1/step01_echo.py"\n```\n')
    assert not unrecorded("x.md", '```console\n--8<-- "docs/sessions/home.txt:hello"\n```\n')
    assert not unrecorded("x.md", '```text\n--8<-- "docs/examples/deploy/logrotate.conf"\n```\n')
    assert not unrecorded("index.md", "```console\n$ make test\n```\n")


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_every_terminal_block_is_recorded_or_allowed(page: Path) -> None:
    relative = page.relative_to(DOCS).as_posix()
    assert unrecorded(relative, page.read_text(encoding="utf-8")) == []


def test_every_allowed_block_still_exists() -> None:
    """An allow-list entry whose block is gone (recorded now, or removed) must go too."""
    present = set()
    for page in pages():
        relative = page.relative_to(DOCS).as_posix()
        for _, lines in blocks(page.read_text(encoding="utf-8")):
            if lines:
                present.add((relative, lines[0]))
    assert sorted(set(ALLOWED) - present) == []


def test_every_recording_has_its_text_and_every_block_is_shown() -> None:
    included = "\n".join(p.read_text(encoding="utf-8") for p in pages())
    for script in sessions.scripts():
        stored = script.with_suffix(".txt")
        assert stored.is_file(), f"{script.name}: run `make sessions`"
        for block in sessions.sections(stored.read_text(encoding="utf-8")):
            assert f'"docs/sessions/{stored.name}:{block}"' in included, \
                f"{stored.name}:{block} is recorded but no page shows it"
    for stored in SESSIONS.glob("*.txt"):
        assert stored == sessions.SIGNATURES or stored.with_suffix(".py").is_file(), stored


def test_signatures_on_the_site_are_the_functions_own() -> None:
    assert sessions.SIGNATURES.read_text(encoding="utf-8") == sessions.signatures_text(), \
        "a signature changed: run `make sessions`"


# -- the normaliser ------------------------------------------------------------------------


def test_display_maps_ports_pids_and_paths_to_stable_names() -> None:
    names = sessions.Names(ports={41234: 8001}, paths={"/tmp/session-x": "/tmp"})
    assert names.display("listening on port 41234") == "listening on port 8001"
    assert names.display("client 127.0.0.1:55002 connected") == "client 127.0.0.1:40001 connected"
    assert names.display("worker 31337 started; kill -9 31337") == \
        "worker 4201 started; kill -9 4201"
    assert names.display("worker 99 via tcp, from workers 31337, 98") == \
        "worker 4202 via tcp, from workers 4201, 4203"
    assert names.display("open descriptors in the master: 9") == \
        "open descriptors in the master: 9"
    assert names.display("--workers 4 in /tmp/session-x/app.sock") == "--workers 4 in /tmp/app.sock"


def test_mask_hides_what_differs_between_honest_runs_and_nothing_else() -> None:
    one = "2026-12-01 19:38:12,366 INFO pool 0 worker 22123: finishing after 2 connections in 0.7 s"
    two = "2026-12-08 01:15:43,827 INFO pool 0 worker 4202: finishing after 2 connections in 0.2 s"
    assert sessions.mask(one) == sessions.mask(two)
    assert sessions.mask(one) != sessions.mask(two.replace("2 connections", "3 connections"))
    assert sessions.mask("Date: Tue, 01 Dec 2026 19:50:11 GMT") == "Date: <date>"
    assert sessions.mask("real\t0m5.006s") == "real\t<duration>"
    assert sessions.mask("HTTP/1.1 200 OK, 127.0.0.1, waiting up to 30 s") == \
        "HTTP/1.1 200 OK, 127.0.0.1, waiting up to 30 s"
    assert sessions.mask("user-agent: 'curl/7.88.1'") == "user-agent: 'curl/<version>'"


# -- replaying every recording -------------------------------------------------------------


@pytest.mark.parametrize("script", sessions.scripts(), ids=lambda p: p.stem)
def test_recording_matches_a_fresh_run(script: Path) -> None:
    for tool in ("curl", "openssl", "make"):
        if tool in script.read_text(encoding="utf-8") and shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    recording = sessions.record(script)
    stored = script.with_suffix(".txt").read_text(encoding="utf-8")
    problems = sessions.differences(recording, stored)
    assert problems == [], (f"{script.stem} no longer matches its recording; if the change is"
                            " intended, run `make sessions` and review the diff:\n"
                            + "\n".join(problems))


# -- times the home page states -----------------------------------------------------------

TIME = re.compile(r"^(?:(\d+) h)?\s*(?:(\d+) min)?$")


def minutes(cell: str) -> int:
    match = TIME.match(cell.strip())
    assert match and any(match.groups()), f"not a time: {cell!r}"
    return int(match.group(1) or 0) * 60 + int(match.group(2) or 0)


def spelled(total: int) -> str:
    hours, rest = divmod(total, 60)
    return " ".join(part for part in (f"{hours} h" if hours else "", f"{rest} min" if rest else "")
                    if part)


def chapter_minutes(index: Path) -> int:
    """The sum of the time column of a part's chapter table, exercises left out."""
    total = 0
    for line in index.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.match(r"\[\d+\. ", cells[0]):
            total += minutes(cells[-1])
    assert total, f"no chapter table in {index}"
    return total


def test_the_home_page_times_are_the_sums_of_the_chapters() -> None:
    rows = [line for line in (DOCS / "index.md").read_text(encoding="utf-8").splitlines()
            if re.match(r"\| \[Part \d", line)]
    assert len(rows) == 3
    for row in rows:
        part = re.search(r"\((part\d)/index\.md\)", row)
        assert part, row
        stated = row.rstrip(" |").rsplit("|", 1)[1].strip()
        assert stated == spelled(chapter_minutes(DOCS / part.group(1) / "index.md")), row


@pytest.mark.parametrize("part", ["part1", "part2", "part3"])
def test_a_part_that_states_its_total_states_the_sum(part: str) -> None:
    index = DOCS / part / "index.md"
    stated = re.search(r"add up to ([\d a-z]+?)\.", index.read_text(encoding="utf-8"))
    if stated:
        assert stated.group(1) == spelled(chapter_minutes(index))


def test_times_are_read_and_spelled_back() -> None:
    assert minutes("45 min") == 45 and minutes("5 h 50 min") == 350 and minutes("1 h") == 60
    assert spelled(350) == "5 h 50 min" and spelled(60) == "1 h" and spelled(45) == "45 min"


# -- signatures written in the prose --------------------------------------------------------

INLINE = re.compile(r"\[`([A-Za-z_][\w.]*)\(([^`]*)\)`\]\[([\w.]+)\]")


def resolve(dotted: str) -> object:
    import importlib
    module_name, *rest = dotted.split(".")
    target: object = importlib.import_module(module_name)
    for part in rest:
        target = getattr(target, part)
    return target


def inline_signature_errors(text: str) -> list[str]:
    """Keyword defaults, ``*args`` and ``**kwargs`` of linked calls that the code lacks."""
    import ast
    import inspect
    errors = []
    for match in INLINE.finditer(text):
        shown, arguments, dotted = match.groups()
        try:
            parameters = inspect.signature(resolve(dotted)).parameters  # type: ignore[arg-type]
        except (ValueError, TypeError):
            continue
        for argument in (a.strip() for a in arguments.split(",")):
            name, equals, default = argument.partition("=")
            if argument.startswith("*") and argument not in ("*",):
                kind = (inspect.Parameter.VAR_KEYWORD if argument.startswith("**")
                        else inspect.Parameter.VAR_POSITIONAL)
                real = parameters.get(argument.lstrip("*"))
                if real is None or real.kind is not kind:
                    errors.append(f"{shown}({arguments}): no {argument}")
            elif equals:
                real = parameters.get(name.strip())
                if real is None:
                    errors.append(f"{shown}({arguments}): no parameter {name.strip()}")
                elif real.default is not inspect.Parameter.empty and \
                        real.default != ast.literal_eval(default.strip()):
                    errors.append(f"{shown}({arguments}): {name.strip()} defaults to"
                                  f" {real.default!r}")
    return errors


def test_the_inline_check_catches_a_wrong_default_and_a_missing_keyword() -> None:
    assert inline_signature_errors(
        "[`tcplisten(host, port, backlog=5)`][layer1_sockets.tcplisten]")
    assert inline_signature_errors("[`poll(readers, limit=None)`][layer1_sockets.poll]")
    assert not inline_signature_errors(
        "[`tcplisten(host, port, backlog=1024)`][layer1_sockets.tcplisten]")


@pytest.mark.parametrize("page", pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_signatures_in_the_prose_match_the_code(page: Path) -> None:
    assert inline_signature_errors(page.read_text(encoding="utf-8")) == []
