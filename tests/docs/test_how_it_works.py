"""Every ``file.py:Name`` a page names exists, so a rename fails the build.

The "How it works" pages walk through the code step by step and name
each step's function the way a traceback or an editor does:
``layer2_prefork/worker/_loop.py:Worker._accept``. Other pages name callbacks
the same way on a command line (``docs/examples/tour/hello.py:hello``).
This guard finds every such reference under ``docs/`` and checks it:

* a file in one of our packages is imported, and each dotted part of the
  name is looked up with ``getattr`` (so a re-export or a property counts);
* any other file (an example, a benchmark) is only parsed, never run, and
  the name must be defined at its top level (a class's method: in its body).

Snippet includes (``--8<-- "file.py:section"``) name sections, not
attributes: ``test_listings.py`` checks those. Pytest node IDs
(``file.py::test``) are checked as well: the test function must exist.
"""

from __future__ import annotations

import ast
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PACKAGES = ("layer1_sockets", "layer2_prefork", "layer3_http")
REFERENCE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-]+\.py):([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)")
"""``path/file.py:Name`` or ``path/file.py:Class.method`` (one colon: ``::`` is pytest's)."""
NODE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*test_\w+\.py)::(\w+)")
"""A pytest node ID: ``tests/.../test_x.py::test_name``."""
INCLUDE = re.compile(r"-+8<-+")
PLACEHOLDERS = frozenset({"script.py", "path/script.py"})
"""File names the pages use to stand for any script of the reader's."""


@dataclass(frozen=True)
class Reference:
    page: str
    line: int
    path: str
    name: str

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.path}:{self.name}"


def references(text: str, page: str, pattern: re.Pattern[str] = REFERENCE) -> list[Reference]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if INCLUDE.search(line):
            continue
        for match in pattern.finditer(line):
            if match.group(1) not in PLACEHOLDERS:
                found.append(Reference(page, number, match.group(1), match.group(2)))
    return found


def page_references(pattern: re.Pattern[str] = REFERENCE) -> list[Reference]:
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        text = page.read_text(encoding="utf-8")
        found += references(text, str(page.relative_to(ROOT)), pattern)
    return found


def locate(path: str) -> Path | None:
    """The file a reference means: a path from the root or from a package, or a bare
    name found once in the packages (at any depth)."""
    candidate = ROOT / path
    if candidate.is_file():
        return candidate
    if "/" in path:
        matches = [ROOT / package / path for package in PACKAGES
                   if (ROOT / package / path).is_file()]
    else:
        matches = [found for package in PACKAGES for found in (ROOT / package).rglob(path)]
    return matches[0] if len(matches) == 1 else None


def defined_in_source(source: str, dotted: str) -> bool:
    """Whether `dotted` is defined at the top of `source` (a method: in its class)."""
    body: list[ast.stmt] = ast.parse(source).body
    for part in dotted.split("."):
        found: ast.stmt | None = None
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names = {node.name}
            elif isinstance(node, ast.Assign):
                names = {t.id for t in node.targets if isinstance(t, ast.Name)}
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                names = {node.target.id}
            elif isinstance(node, ast.ImportFrom | ast.Import):
                names = {(alias.asname or alias.name).split(".")[0] for alias in node.names}
            else:
                continue
            if part in names:
                found = node
        if found is None:
            return False
        body = found.body if isinstance(found, ast.ClassDef) else []
    return True


def problem(reference: Reference) -> str | None:
    """What is wrong with a reference, or `None`."""
    file = locate(reference.path)
    if file is None:
        return "no such file"
    relative = file.relative_to(ROOT)
    if relative.parts[0] in PACKAGES:
        module_name = ".".join(relative.with_suffix("").parts)
        if module_name.endswith(".__init__"):
            module_name = module_name[: -len(".__init__")]
        target: object = importlib.import_module(module_name)
        for part in reference.name.split("."):
            if not hasattr(target, part):
                return f"{module_name} has no {reference.name}"
            target = getattr(target, part)
        return None
    if not defined_in_source(file.read_text(encoding="utf-8"), reference.name):
        return f"{relative} defines no {reference.name}"
    return None


# -- the guard catches what it should ---------------------------------------------------


def test_the_guard_finds_references_and_skips_includes_and_placeholders() -> None:
    text = ("Step 2 is `layer2_prefork/worker/_loop.py:Worker._accept`, then `_table.py:Workers`.\n"
            '--8<-- "layer2_prefork/worker/_loop.py:idle"\n'
            "Run `python -m layer3_http path/script.py:name` or `tests/x/test_a.py::test_b`.\n")
    found = [(r.path, r.name) for r in references(text, "page.md")]
    assert found == [("layer2_prefork/worker/_loop.py", "Worker._accept"), ("_table.py", "Workers")]


def test_the_guard_rejects_a_renamed_method_a_missing_file_and_a_missing_example_name() -> None:
    def check(path: str, name: str) -> str | None:
        return problem(Reference("page.md", 1, path, name))

    assert check("layer2_prefork/worker/_loop.py", "Worker._accept") is None
    assert check("_table.py", "Workers.sync") is None
    assert check("worker/_loop.py", "Worker._take_queued") is None
    assert check("_loop.py", "Worker.run") is not None  # master/_loop.py or worker/_loop.py?
    assert check("docs/examples/tour/hello.py", "hello") is None
    assert check("layer2_prefork/worker/_loop.py", "Worker._accept_renamed") is not None
    assert check("layer2_prefork/worker/_loop.py", "NoSuchClass") is not None
    assert check("layer2_prefork/_gone.py", "Worker") is not None
    assert check("docs/examples/tour/hello.py", "goodbye") is not None


def test_the_how_it_works_pages_name_the_code_of_their_steps() -> None:
    on_pages = {r.page for r in page_references()}
    for page in ("process-model.md", "control-protocol.md", "data-path.md"):
        assert f"docs/how-it-works/{page}" in on_pages, page


# -- the pages ----------------------------------------------------------------------------


@pytest.mark.parametrize("reference", page_references(), ids=str)
def test_every_named_function_exists(reference: Reference) -> None:
    assert problem(reference) is None, f"{reference}: {problem(reference)}"


def locate_test(path: str) -> Path | None:
    """A test file: a path from the root, or a bare name found once under ``tests/``."""
    if (ROOT / path).is_file():
        return ROOT / path
    if "/" not in path:
        matches = sorted((ROOT / "tests").rglob(path))
        if len(matches) == 1:
            return matches[0]
    return None


def test_a_bare_test_file_name_is_found_under_tests() -> None:
    assert locate_test("test_how_it_works.py") == Path(__file__)
    assert locate_test("test_no_such_thing.py") is None


@pytest.mark.parametrize("reference", page_references(NODE), ids=str)
def test_every_named_test_exists(reference: Reference) -> None:
    file = locate_test(reference.path)
    assert file is not None, f"{reference}: no such file"
    assert defined_in_source(file.read_text(encoding="utf-8"), reference.name), \
        f"{reference}: no such test"
