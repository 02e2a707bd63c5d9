"""The teacher's tools, for real: a hand-out without solutions, and grading.

``tools/handout.py`` writes a hand-out into a temporary folder; the tests
check that no line of any solution is in it, that it is a fresh Git
repository with one commit, that its site builds and its step programs'
tests pass, and that its exercise tests fail on the stubs. ``tools/grade.py``
then grades this repository's own solutions (full marks, hidden tests
included), the hand-out's stubs (nothing), and a student who solved one
exercise (that one only).
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType

import pytest
from support import ROOT

TOOLS = ROOT / "tools"
RUN_TIMEOUT = 600.0


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, TOOLS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


handout = load("handout")


def run(*argv: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    env.pop("PYTHONPATH", None)
    return subprocess.run([str(arg) for arg in argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=RUN_TIMEOUT, check=False)


@pytest.fixture(scope="module")
def handed_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("handout") / "course"
    result = run(sys.executable, TOOLS / "handout.py", dest)
    assert result.returncode == 0, result.stdout + result.stderr
    return dest


def section_body(text: str) -> list[str]:
    """The lines between a solution's section markers that a stub does not keep."""
    inside, lines = False, []
    for line in text.splitlines():
        if "--8<-- [start:" in line:
            inside = True
        elif "--8<-- [end:" in line:
            inside = False
        elif inside:
            lines.append(line.strip())
    return lines


def test_a_stub_keeps_names_signatures_and_docstrings_only() -> None:
    source = '''"""A solution."""

import os

# --8<-- [start:solution]
LIMIT = 3


class Counter:
    """Counts."""

    total: int = 0

    def add(self, n: int) -> None:
        self.total += n


@staticmethod
def answer(conn: object,
           size: int) -> bytes:
    """The answer."""
    return os.urandom(size)
# --8<-- [end:solution]


def main() -> None:
    print("listening on port 0")
'''
    stub = handout.stub_source(source, "part 9, exercise 9")
    tree = ast.parse(stub)
    assert "LIMIT" not in stub and "total" not in stub and "urandom" not in stub
    assert 'raise NotImplementedError("part 9, exercise 9: write answer()")' in stub
    assert 'raise NotImplementedError("part 9, exercise 9: write add()")' in stub
    assert '"""The answer."""' in stub and '"""Counts."""' in stub
    assert "def answer(conn: object,\n           size: int) -> bytes:" in stub
    assert "# --8<-- [start:solution]" in stub and 'print("listening on port 0")' in stub
    assert "# ruff: noqa: F401" in stub  # os is no longer used
    assert [node.name for node in tree.body if isinstance(node, ast.FunctionDef)] == [
        "answer", "main"]


def test_the_handout_is_a_fresh_repository_with_one_commit(handed_out: Path) -> None:
    log = run("git", "log", "--all", "--format=%s", cwd=handed_out)
    assert log.stdout.splitlines() == ["Course hand-out"]
    assert run("git", "status", "--porcelain", cwd=handed_out).stdout == ""
    for name in handout.TEACHER_ONLY:
        assert not (handed_out / name).exists(), name
    assert (handed_out / "layer1_sockets" / "_buffered.py").is_file()
    makefile = (handed_out / "Makefile").read_text()
    assert "tools/grade.py" not in makefile and "handout" not in makefile
    assert "bench-publish:" in makefile and "test: setup" in makefile  # the rest stays


def test_no_line_of_any_solution_is_in_the_handout(handed_out: Path) -> None:
    exercises = handout.exercises(ROOT)
    assert len(exercises) >= 20
    texts = {}
    for path in handed_out.rglob("*"):
        if path.is_file() and ".git" not in path.relative_to(handed_out).parts:
            try:
                texts[path] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
    everything = "\n".join(texts.values())
    solutions = {exercise.path for exercise in exercises}
    # Lines the rest of the course has anyway (a step program's accept loop) give nothing away.
    common = "\n".join((ROOT / name).read_text(encoding="utf-8")
                       for name in handout.tracked_files(ROOT)
                       if name not in solutions and not handout.teacher_only(name)
                       and name.endswith((".py", ".md")))
    for exercise in exercises:
        stub = (handed_out / exercise.path).read_text(encoding="utf-8")
        assert "NotImplementedError" in stub, exercise.path
        kept = set(section_body(stub))
        secret = [line for line in section_body((ROOT / exercise.path).read_text(encoding="utf-8"))
                  if len(line) >= 25 and line not in kept and line not in common]
        assert len(secret) >= 3, exercise.path
        leaked = [line for line in secret if line in everything]
        assert leaked == [], exercise.path
    pages = "\n".join(texts[p] for p in texts if p.name == "exercises.md")
    assert '??? success "Solution"' not in pages
    assert pages.count('??? example "Your solution"') == len(exercises)


def test_the_handout_passes_its_own_lint_and_builds_its_site(handed_out: Path) -> None:
    lint = run(sys.executable, "-m", "ruff", "check", ".", cwd=handed_out)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    site = run(sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
               "--site-dir", handed_out.parent / "site", cwd=handed_out)
    assert site.returncode == 0, site.stdout + site.stderr
    page = (handed_out.parent / "site" / "part1" / "exercises" / "index.html").read_text()
    assert "NotImplementedError" in page and "receive_all" in page


def test_in_the_handout_the_steps_pass_and_the_exercises_fail(handed_out: Path) -> None:
    report = handed_out.parent / "report.xml"
    result = run(sys.executable, "-m", "pytest", "tests/examples/test_layer1_examples.py",
                 "tests/docs/test_listings.py", "-k", "step02 or ex1_ or ex2_ or listing or shown",
                 "-q", "--timeout=60", f"--junitxml={report}", cwd=handed_out)
    assert result.returncode == 1, result.stdout + result.stderr  # some tests failed
    outcomes = {case.get("name", ""): case.find("failure") is None and case.find("error") is None
                for case in ET.parse(report).getroot().iter("testcase")}
    exercise_tests = {name: ok for name, ok in outcomes.items() if name.startswith("test_ex")}
    others = {name: ok for name, ok in outcomes.items() if not name.startswith("test_ex")}
    assert exercise_tests and not any(exercise_tests.values())
    assert len(others) > 5 and all(others.values()), others


def grade(student: Path, tmp_path: Path) -> dict[str, object]:
    report = tmp_path / "grade.json"
    result = run(sys.executable, TOOLS / "grade.py", student, "--json", report)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0].split() == ["exercise", "visible", "hidden", "score"]
    scores: dict[str, object] = json.loads(report.read_text())
    return scores


def test_grading_the_reference_solutions_gives_full_marks(tmp_path: Path) -> None:
    scores = grade(ROOT, tmp_path)
    exercises = scores["exercises"]
    assert isinstance(exercises, dict) and len(exercises) == len(handout.exercises(ROOT))
    for path, score in exercises.items():
        assert score["visible"][1] >= 1 and score["hidden"][1] >= 1, path  # tests of both kinds
        assert score["score"] == 1.0, (path, score["failed"])
    assert scores["total"] == scores["maximum"]


def test_grading_the_stubs_gives_nothing(handed_out: Path, tmp_path: Path) -> None:
    scores = grade(handed_out, tmp_path)
    exercises = scores["exercises"]
    assert isinstance(exercises, dict)
    for path, score in exercises.items():
        assert score["visible"][1] >= 1 and score["hidden"][1] >= 1, path
        assert score["score"] == 0.0, path
    assert scores["total"] == 0


def test_grading_counts_each_exercise_on_its_own(tmp_path: Path) -> None:
    student = tmp_path / "student"
    solved = "docs/examples/layer3/solutions/ex4_wordcount.py"
    (student / solved).parent.mkdir(parents=True)
    shutil.copyfile(ROOT / solved, student / solved)  # the others are missing: stubs
    exercises = grade(student, tmp_path)["exercises"]
    assert isinstance(exercises, dict)
    assert {path for path, score in exercises.items() if score["score"] > 0} == {solved}
    assert exercises[solved]["score"] == 1.0
