"""Make a student hand-out of the course: the repository without the solutions.

    python3 tools/handout.py DEST        # or: make handout HANDOUT=DEST

DEST (a new or empty folder) becomes a fresh Git repository with one
commit, holding every file the repository tracks, as it is in the working
tree, except:

* each exercise solution (``docs/examples/layer*/solutions/ex*.py``) is
  replaced by a stub: the same file outside its snippet section markers
  (docstring, imports, command line), and inside them the same names and
  signatures, each body replaced by ``raise NotImplementedError``;
* the solution blocks of the exercise pages show the stub and say where
  the student's solution goes and which tests check it;
* what only a teacher needs is left out: the grading command, its hidden
  tests, the answer key, this command, and their tests (`TEACHER_ONLY`).

Because the hand-out is a new repository, the solutions are not in its
history either. The site still builds (the stubs keep their markers), and
each exercise's tests fail until the student's program does what they
check.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = "docs/examples/layer[123]/solutions/ex*.py"
TEACHER_ONLY = ("tools/grade.py", "tools/handout.py", "tools/hidden_tests/",
                "tools/answer_key.md", "tests/docs/test_teaching.py")
MARKER = re.compile(r"--8<-- \[(start|end):([\w-]+)\]")
EXERCISE = re.compile(r"layer(\d)/solutions/ex(\d+)_\w+\.py$")
COMMIT_ENV = {"GIT_AUTHOR_NAME": "Course", "GIT_AUTHOR_EMAIL": "course@localhost",
              "GIT_COMMITTER_NAME": "Course", "GIT_COMMITTER_EMAIL": "course@localhost"}


@dataclass(frozen=True)
class Exercise:
    """One exercise: its part (the layer number), its number and its solution file."""

    part: int
    number: int
    path: str  # relative to the repository root

    @property
    def stem(self) -> str:
        return Path(self.path).stem

    @property
    def test_file(self) -> str:
        """The test file that runs this exercise's solution (relative to the root)."""
        relative = self.path.removeprefix("docs/examples/")
        for test in sorted((ROOT / "tests" / "examples").glob("test_*.py")):
            if relative in test.read_text(encoding="utf-8"):
                return test.relative_to(ROOT).as_posix()
        raise LookupError(f"no test in tests/examples runs {relative}")


def exercises(root: Path = ROOT) -> list[Exercise]:
    """Every exercise, in the order of the parts and their numbers."""
    found = []
    for path in root.glob(SOLUTIONS):
        match = EXERCISE.search(path.as_posix())
        assert match, path
        found.append(Exercise(int(match[1]), int(match[2]),
                              path.relative_to(root).as_posix()))
    return sorted(found, key=lambda e: (e.part, e.number))


def tracked_files(root: Path = ROOT) -> list[str]:
    """The files Git tracks in root that exist in its working tree."""
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True,
                             check=True).stdout.decode()
    return [name for name in listing.split("\0") if name and (root / name).is_file()]


def teacher_only(name: str) -> bool:
    return any(name == item or (item.endswith("/") and name.startswith(item))
               for item in TEACHER_ONLY)


# -- stubs ----------------------------------------------------------------------------


def stub_source(text: str, label: str) -> str:
    """The stub of a solution: everything outside its sections, signatures inside.

    Args:
        text: The solution's source.
        label: What the stubs' `NotImplementedError` names ("part 1, exercise 1").
    """
    lines = text.splitlines(keepends=True)
    sections: list[tuple[int, int]] = []  # 1-based line numbers of start and end markers
    start = 0
    for number, line in enumerate(lines, 1):
        match = MARKER.search(line)
        if match and match[1] == "start":
            start = number
        elif match:
            sections.append((start, number))
    if not sections:
        raise ValueError(f"{label}: the solution has no snippet section")
    tree = ast.parse(text)
    out: list[str] = []
    position = 1
    for begin, end in sections:
        out.extend(lines[position - 1:begin])  # up to and including the start marker
        stubs = [_stub(node, lines, label, "") for node in tree.body
                 if begin < node.lineno < end]
        out.append("\n\n".join(stub for stub in stubs if stub))
        position = end
    out.extend(lines[position - 1:])
    result = "".join(out)
    if not _unused_imports(result):
        return result
    # The stubs leave imports unused; say so once, so the linter stays quiet.
    result_lines = result.splitlines(keepends=True)
    result_lines.insert(_docstring_end(ast.parse(result)),
                        "# ruff: noqa: F401  (a stub: the solution uses them)\n")
    return "".join(result_lines)


def _unused_imports(text: str) -> set[str]:
    """Names a module imports (at its top level) and never uses."""
    tree = ast.parse(text)
    imported = {(alias.asname or alias.name).split(".")[0] for node in tree.body
                if isinstance(node, ast.Import | ast.ImportFrom)
                and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
                for alias in node.names}
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    return imported - used


def _docstring_end(tree: ast.Module) -> int:
    first = tree.body[0] if tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
            isinstance(first.value.value, str) and first.end_lineno is not None:
        return first.end_lineno
    return 0


def _stub(node: ast.stmt, lines: list[str], label: str, indent: str) -> str:
    """A definition with its signature and docstring, and no body of its own."""
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return ""  # module or class attributes belong to the solution
    first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
    body = node.body
    head = "".join(lines[first - 1:body[0].lineno - 1])
    docstring = ""
    rest = body
    if isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and \
            isinstance(body[0].value.value, str) and body[0].end_lineno is not None:
        docstring = "".join(lines[body[0].lineno - 1:body[0].end_lineno])
        rest = body[1:]
    inner = indent + "    "
    if isinstance(node, ast.ClassDef):
        methods = [_stub(item, lines, label, inner) for item in rest]
        members = "\n".join(method for method in methods if method)
        filler = "" if docstring or members else f"{inner}pass\n"
        return head + docstring + ("\n" if docstring and members else "") + members + filler
    message = f"{label}: write {node.name}()"
    return head + docstring + f'{inner}raise NotImplementedError("{message}")\n'


# -- the exercise pages ---------------------------------------------------------------


SOLUTION_BLOCK = re.compile(r'^\?\?\? success "Solution"\n((?:[ \t]*\n|    .*\n)*)', re.M)
INCLUDE = re.compile(r'--8<-- "(docs/examples/layer\d/solutions/ex\d+_\w+\.py)(?::[\w-]+)?"')


def page_without_solutions(text: str, by_path: dict[str, Exercise]) -> str:
    """An exercise page whose solution blocks show the stub and say what to do."""
    def replace(match: re.Match[str]) -> str:
        block = match.group(1)
        paths = INCLUDE.findall(block)
        if not paths:
            return match.group(0)
        exercise = by_path[paths[0]]
        fences = re.findall(r"    ```python\n(?:    .*\n)*?    ```\n", block)
        note = (f"    This copy of the course has no solution. Write yours in\n"
                f"    `{exercise.path}`, between the marker lines; the stub\n"
                f"    below keeps the names the rest of the program uses. Check it with\n"
                f"    `.venv/bin/python -m pytest {exercise.test_file} -k ex{exercise.number}_`.\n")
        return ('??? example "Your solution"\n\n' + note + "\n" + "\n".join(fences) + "\n")
    return SOLUTION_BLOCK.sub(replace, text)


TEACHING_TARGETS = re.compile(r"\n# Teaching:.*?tools/grade\.py[^\n]*\n", re.S)


def makefile_without_teaching(text: str) -> str:
    """The Makefile without its teaching targets (their tools are not in the hand-out)."""
    return TEACHING_TARGETS.sub("", text)


# -- the hand-out ---------------------------------------------------------------------


def make_handout(dest: Path, root: Path = ROOT) -> list[str]:
    """Write the hand-out into dest (new or empty) and commit it; return its files."""
    if dest.exists() and any(dest.iterdir()):
        raise FileExistsError(f"{dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    exercise_list = exercises(root)
    by_path = {exercise.path: exercise for exercise in exercise_list}
    written = []
    for name in tracked_files(root):
        if teacher_only(name):
            continue
        source = root / name
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if name in by_path:
            exercise = by_path[name]
            label = f"part {exercise.part}, exercise {exercise.number}"
            target.write_text(stub_source(source.read_text(encoding="utf-8"), label),
                              encoding="utf-8")
        elif name == "Makefile":
            target.write_text(makefile_without_teaching(source.read_text(encoding="utf-8")),
                              encoding="utf-8")
        elif re.fullmatch(r"docs/part\d/exercises\.md", name):
            target.write_text(page_without_solutions(source.read_text(encoding="utf-8"),
                                                     by_path), encoding="utf-8")
        else:
            shutil.copyfile(source, target)
        shutil.copymode(source, target)
        written.append(name)
    git = ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]
    env = dict(os.environ, **COMMIT_ENV)
    subprocess.run([*git, "init", "--quiet"], cwd=dest, check=True)
    subprocess.run([*git, "add", "--all"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "--quiet", "-m", "Course hand-out"], cwd=dest, env=env,
                   check=True)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="a new or empty folder")
    args = parser.parse_args(argv)
    try:
        files = make_handout(args.dest)
    except FileExistsError as error:
        print(f"handout: {error}", file=sys.stderr)
        return 2
    count = len(exercises())
    print(f"hand-out in {args.dest}: {len(files)} files, {count} exercises as stubs, "
          "one commit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
