"""Grade a student's exercise solutions: the exercise tests plus hidden tests.

    python3 tools/grade.py STUDENT        # or: make grade STUDENT=path
    python3 tools/grade.py STUDENT --json report.json

STUDENT is the student's copy of the hand-out (a clone of it, or any
folder with the same layout). Only the solution files are taken from it,
``docs/examples/layer*/solutions/ex*.py``; everything else, the packages,
the step programs and the tests, comes from this repository, so a student
cannot pass by changing a test. A missing solution file counts as a stub.

The solutions are copied into a fresh copy of this repository in a
temporary folder, together with the hidden tests of ``tools/hidden_tests/``
(which the hand-out does not contain), and pytest runs every test of an
exercise there: the tests named ``test_exN_...`` in part N's test files,
and the parametrised tests that run a solution file. The score of an
exercise is the fraction of its tests that pass; a skipped test (a tool
such as curl missing) does not count either way. The table printed at the
end gives, per exercise, the visible and the hidden tests passed.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import handout  # the sibling module: the exercises and the stubs

ROOT = handout.ROOT
HIDDEN = ROOT / "tools" / "hidden_tests"
TEST_TIMEOUT = 60  # seconds for one test (a stub must fail, not hang)
RUN_TIMEOUT = 1800.0  # seconds for the whole run
TEST_NAME = re.compile(r"^test_ex(\d+)_")
SOLUTION_PARAMETER = re.compile(r"solutions/ex(\d+)_")
PART = re.compile(r"test_layer(\d)_")


@dataclass
class Score:
    """The tests of one exercise: how many passed and how many counted."""

    exercise: handout.Exercise
    visible: list[int] = field(default_factory=lambda: [0, 0])  # passed, counted
    hidden: list[int] = field(default_factory=lambda: [0, 0])
    failed: list[str] = field(default_factory=list)

    @property
    def fraction(self) -> float:
        passed, counted = self.visible[0] + self.hidden[0], self.visible[1] + self.hidden[1]
        return passed / counted if counted else 0.0


def build_tree(student: Path, tree: Path) -> None:
    """This repository's files in tree, with the student's solutions and the hidden tests."""
    for name in handout.tracked_files(ROOT):
        target = tree / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, target)
    for exercise in handout.exercises(ROOT):
        theirs = student / exercise.path
        if theirs.is_file():
            shutil.copyfile(theirs, tree / exercise.path)
        else:
            label = f"part {exercise.part}, exercise {exercise.number}"
            stub = handout.stub_source((ROOT / exercise.path).read_text(encoding="utf-8"),
                                       label)
            (tree / exercise.path).write_text(stub, encoding="utf-8")
    hidden = tree / "tests" / "hidden"
    hidden.mkdir()
    for path in sorted(HIDDEN.glob("*.py")):
        shutil.copyfile(path, hidden / path.name)


def run_tests(tree: Path, only: list[str] | None = None) -> Path:
    """Run every exercise test in tree (or only the given node ids); return the JUnit report."""
    report = tree / ("grading-again.xml" if only else "grading.xml")
    selection = only or ["tests/examples", "tests/hidden", "-k", "test_ex or solutions"]
    command = [sys.executable, "-m", "pytest", *selection, "-q", "-p", "no:randomly",
               f"--timeout={TEST_TIMEOUT}", f"--junitxml={report}"]
    subprocess.run(command, cwd=tree, capture_output=True, timeout=RUN_TIMEOUT, check=False)
    if not report.is_file():
        raise RuntimeError("pytest wrote no report: the tests could not run")
    return report


def tests_that(report: Path, passed: bool) -> list[str]:
    """The node ids of the tests of a report that passed (or failed)."""
    ids = []
    for case in ET.parse(report).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        if case.find("skipped") is None and failed != passed:
            ids.append(case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", ""))
    return ids


def tally(report: Path, exercise_list: list[handout.Exercise],
          passed_again: frozenset[str] = frozenset()) -> list[Score]:
    """Count each test of the report for the exercise it belongs to.

    A test in `passed_again` failed once and passed when run again: the
    tests use real processes and sockets on a machine that may be busy, and
    a student does not lose a point to the machine.
    """
    scores = {(e.part, e.number): Score(e) for e in exercise_list}
    for case in ET.parse(report).getroot().iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        part_match = PART.search(classname)
        number = TEST_NAME.match(name) or SOLUTION_PARAMETER.search(name)
        if part_match is None or number is None:
            continue
        score = scores.get((int(part_match[1]), int(number[1])))
        if score is None:
            continue
        if case.find("skipped") is not None:
            continue
        passed = (case.find("failure") is None and case.find("error") is None) or (
            classname.replace(".", "/") + ".py::" + name in passed_again)
        counts = score.hidden if ".hidden." in f".{classname}." else score.visible
        counts[0] += passed
        counts[1] += 1
        if not passed:
            score.failed.append(name)
    return list(scores.values())


def grade(student: Path, keep: Path | None = None) -> list[Score]:
    """Grade the solutions in student; with keep, leave the grading tree there."""
    with tempfile.TemporaryDirectory(prefix="grade-") as temporary:
        tree = keep if keep is not None else Path(temporary) / "tree"
        tree.mkdir(parents=True, exist_ok=keep is not None)
        build_tree(student, tree)
        report = run_tests(tree)
        failed = tests_that(report, passed=False)
        again: frozenset[str] = frozenset()
        if failed:  # once more, alone: a failure must be the solution's, not the machine's
            retried = run_tests(tree, failed)
            again = frozenset(failed) & frozenset(tests_that(retried, passed=True))
        return tally(report, handout.exercises(ROOT), again)


def table(scores: list[Score]) -> str:
    rows = [f"{'exercise':<34} {'visible':>8} {'hidden':>8} {'score':>6}"]
    for score in scores:
        name = f"part {score.exercise.part}, {score.exercise.stem}"
        visible = "{}/{}".format(*score.visible)
        hidden = "{}/{}".format(*score.hidden)
        rows.append(f"{name:<34} {visible:>8} {hidden:>8} {score.fraction:>6.0%}")
    total = sum(score.fraction for score in scores)
    rows.append(f"{'total':<34} {'':>8} {'':>8} {total:>6.2f} of {len(scores)}")
    return "\n".join(rows)


def as_json(scores: list[Score]) -> dict[str, object]:
    return {
        "exercises": {score.exercise.path: {
            "part": score.exercise.part, "number": score.exercise.number,
            "visible": score.visible, "hidden": score.hidden,
            "score": score.fraction, "failed": score.failed} for score in scores},
        "total": sum(score.fraction for score in scores),
        "maximum": len(scores),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("student", type=Path, help="the student's copy of the hand-out")
    parser.add_argument("--json", type=Path, help="also write the scores to this file")
    parser.add_argument("--keep", type=Path, help="build the grading tree here and keep it")
    args = parser.parse_args(argv)
    if not (args.student / "docs" / "examples").is_dir():
        print(f"grade: {args.student} has no docs/examples: not a copy of the course",
              file=sys.stderr)
        return 2
    scores = grade(args.student.resolve(), args.keep)
    print(table(scores))
    if args.json:
        args.json.write_text(json.dumps(as_json(scores), indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
