"""The API reference: Sphinx builds it from docstrings and type hints into the site's /api/.

``docs/api/hook.py`` runs ``sphinx-build -W --keep-going -n`` during every
``mkdocs build`` and resolves the tutorial's cross-references
(``[`poll`][layer1_sockets.poll]``) against Sphinx's inventory. These tests
check that every public name is documented, that the pages show no markup
left unrendered, that types come from the hints and not from docstrings,
that a broken reference fails the build (offline: the standard library's
names resolve from the inventory stored in ``docs/api/``), and that the
tutorial's links lead to the object they name.
"""

from __future__ import annotations

import ast
import importlib
import re
import shutil
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support import ROOT

API = ROOT / "docs" / "api"
PACKAGES = ("layer1_sockets", "layer2_prefork", "layer3_http")
NAMESPACES = (*PACKAGES, "layer3_http.protocol")  # each with a page of its own
sys.path.insert(0, str(API))
import hook  # noqa: E402  (docs/api/hook.py, the mkdocs hook)


def inventory(site: Path) -> dict[str, str]:
    return hook.read_inventory((site / "api" / "objects.inv").read_bytes())


# -- what is documented ----------------------------------------------------------------


@pytest.mark.parametrize("package", NAMESPACES)
def test_every_name_in_all_is_documented_on_its_package_page(built_site: Path,
                                                              package: str) -> None:
    found = inventory(built_site)
    module = importlib.import_module(package)
    parent = importlib.import_module(package.rpartition(".")[0] or package)
    # a name a sub-namespace shares with its package is documented once, on the package's page
    exported = [name for name in module.__all__
                if parent is module or getattr(parent, name, None) is not getattr(module, name)]
    missing = [name for name in exported if f"{package}.{name}" not in found]
    assert missing == []
    elsewhere = [name for name in exported
                 if not found[f"{package}.{name}"].startswith(f"{package}.html#")]
    assert elsewhere == []


@pytest.mark.parametrize("package", NAMESPACES)
def test_no_public_name_outside_all_is_documented(built_site: Path, package: str) -> None:
    exported = set(importlib.import_module(package).__all__)
    top_level = {name[len(package) + 1:].split(".")[0] for name in inventory(built_site)
                 if name.startswith(package + ".")}
    namespaces = {name for name in top_level if f"{package}.{name}" in sys.modules}
    extra = sorted(name for name in top_level - exported - namespaces
                   if not name.startswith("_"))
    assert extra == []


def test_the_inventory_reader_reads_what_sphinx_wrote(built_site: Path) -> None:
    found = inventory(built_site)
    assert found["layer1_sockets.poll"] == "layer1_sockets.html#layer1_sockets.poll"
    assert found["layer3_http.Request.send_status"].endswith("#layer3_http.Request.send_status")
    assert (found["layer2_prefork.master._holding"]
            == "layer2_prefork.html#module-layer2_prefork.master._holding")
    with pytest.raises(ValueError, match="version 2"):
        hook.read_inventory(b"# Sphinx inventory version 1\n# a\n# b\n# c\n"
                            + zlib.compress(b""))


# -- the tutorial's cross-references ----------------------------------------------------


def test_a_label_gets_a_relative_definition_and_an_unknown_one_is_reported() -> None:
    known = {"layer1_sockets.poll": "layer1_sockets.html#layer1_sockets.poll"}
    text = ("see [`poll`][layer1_sockets.poll], [`nope`][layer1_sockets.nope]"
            " and [`mine`][layer1_sockets.mine]\n\n[layer1_sockets.mine]: elsewhere.md\n")
    markdown, missing = hook.add_definitions(text, "part1/index.md", known)
    assert missing == ["layer1_sockets.nope"]
    assert markdown.endswith(
        "\n[layer1_sockets.poll]: ../api/layer1_sockets.html#layer1_sockets.poll\n")
    assert markdown.count("[layer1_sockets.mine]:") == 1  # the page's own definition stays
    top, _ = hook.add_definitions("[`poll`][layer1_sockets.poll]", "index.md", known)
    assert "]: api/layer1_sockets.html#" in top


def test_the_tutorial_links_into_the_api_reference(built_site: Path) -> None:
    page = (built_site / "part1" / "02-buffering" / "index.html").read_text(encoding="utf-8")
    assert 'href="../../api/layer1_sockets.html#layer1_sockets.BufferedSocket.read"' in page
    api = (built_site / "api" / "layer1_sockets.html").read_text(encoding="utf-8")
    assert 'id="layer1_sockets.BufferedSocket.read"' in api
    assert 'href="../"' in api  # and the API pages lead back to the tutorial


def test_the_navigation_has_the_api_reference(built_site: Path) -> None:
    home = (built_site / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<a href="api/" class="md-nav__link">(?:\s|<[^>]+>)*API reference', home)


# -- what the pages show ----------------------------------------------------------------


class _Prose(HTMLParser):
    """The text of the article, without code, signatures and the theme's navigation."""

    SKIP = {"code", "pre", "script", "style", "dt"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.skipping = 0
        self.text: list[str] = []
        self.classes: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.classes += (values.get("class") or "").split()
        if tag == "article":
            self.depth += 1
        if self.depth and tag in self.SKIP:
            self.skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag in self.SKIP:
            self.skipping -= 1
        if tag == "article":
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth and not self.skipping:
            self.text.append(data)


UNRENDERED = [
    ("a Markdown table", re.compile(r"\|\s*:?-{3,}|\|\s*\w[^|\n]*\|\s*\w")),
    ("a Markdown link", re.compile(r"\]\([^)\s]*\)|\]\[[\w.:-]*\]")),
    ("a code fence", re.compile(r"```|~~~")),
    ("a list marker run into a paragraph", re.compile(r"\n\s*[-*] \w.*\n\s*[-*] \w")),
    ("inline code markers", re.compile(r"`[^`\s][^`]*`")),
]
# docutils marks what it could not parse; a Markdown table becomes a line block.
BROKEN_CLASSES = {"system-message", "problematic", "line-block"}


def unrendered(html: str) -> list[str]:
    prose = _Prose()
    prose.feed(html)
    text = "".join(prose.text)
    found = [f"{what}: {match[0]!r}" for what, pattern in UNRENDERED
             for match in pattern.finditer(text)]
    found += [f"an element of class {name}" for name in sorted(BROKEN_CLASSES & set(prose.classes))]
    if "<blockquote>" in html:
        found.append("an indented block read as a quotation (a literal block needs '::')")
    return found


def test_the_check_finds_what_markdown_leaves_in_a_sphinx_page() -> None:
    page = ('<article><p>see [the reference][layer1_sockets.poll]</p>'
            '<div class="line-block"><div class="line">| a | b |</div></div>'
            '<dl><dt class="sig">f(**kwargs)</dt><dd><p>fine</p></dd></dl>'
            '<blockquote><div>indented</div></blockquote></article>')
    found = "\n".join(unrendered(page))
    for what in ("a Markdown link", "a Markdown table", "line-block", "quotation"):
        assert what in found
    assert "kwargs" not in found


@pytest.mark.parametrize("package", NAMESPACES)
def test_the_api_pages_show_no_markup_left_unrendered(built_site: Path, package: str) -> None:
    assert unrendered((built_site / "api" / f"{package}.html").read_text(encoding="utf-8")) == []


def test_parameter_types_are_rendered_from_the_hints(built_site: Path) -> None:
    text = (built_site / "api" / "layer1_sockets.html").read_text(encoding="utf-8")
    start = text.index('id="layer1_sockets.tcplisten"')
    entry = re.sub(r"<[^>]+>", "", text[start:text.index("</dl>", start)])
    assert "host (str | None)" in entry and "port (int)" in entry
    assert "Return type:" in entry and "Listener" in entry


ARG_WITH_TYPE = re.compile(r"\*{0,2}\w+ \([^)]*\):")
SECTION = re.compile(r"^\s*(Args|Arguments|Attributes|Keyword Args|Other Parameters):\s*$"
                     r"(.*?)(?=^\s*[A-Z][\w ]*:\s*$|\Z)", re.M | re.S)
RETURNS_WITH_TYPE = re.compile(r"^\s*(?:Returns|Yields):\s*\n\s+[\w.\[\], |]+:\s", re.M)


def docstring_type_repetitions(source: str) -> list[str]:
    """Docstring entries that state a type the hints already give: ``x (int): ...``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node) or ""
            for section in SECTION.finditer(doc):
                lines = [line for line in section[2].splitlines() if line.strip()]
                indent = min((len(line) - len(line.lstrip()) for line in lines), default=0)
                found += [match[0] for line in lines  # entries only, not their continuations
                          if len(line) - len(line.lstrip()) == indent
                          and (match := ARG_WITH_TYPE.match(line.strip()))]
            found += [m[0].split("\n")[-1].strip() for m in RETURNS_WITH_TYPE.finditer(doc)]
    return found


def test_the_type_check_finds_a_typed_argument_and_a_typed_return() -> None:
    source = ('def f(x: int) -> int:\n    """Do.\n\n    Args:\n        x (int): A number.\n\n'
              '    Returns:\n        int: The same.\n    """\n')
    assert docstring_type_repetitions(source) == ["x (int):", "int:"]
    assert docstring_type_repetitions(source.replace(" (int)", "").replace("int: ", "")) == []


@pytest.mark.parametrize("package", PACKAGES)
def test_docstrings_do_not_repeat_the_types_of_the_hints(package: str) -> None:
    found = [f"{path.name}: {entry}" for path in sorted((ROOT / package).glob("*.py"))
             for entry in docstring_type_repetitions(path.read_text(encoding="utf-8"))]
    assert found == []


# -- the build is strict and offline ---------------------------------------------------


def sphinx_project(folder: Path, body: str) -> Path:
    """A project with the API reference's configuration and one page."""
    folder.mkdir()
    for name in ("conf.py", "python-3.11.inv"):
        shutil.copy(API / name, folder / name)
    (folder / "index.rst").write_text("Test\n====\n\n" + body, encoding="utf-8")
    return folder


def test_an_unresolved_reference_fails_the_build_and_the_stdlib_resolves_offline(
        tmp_path: Path) -> None:
    good = sphinx_project(tmp_path / "good", ".. autofunction:: layer1_sockets.timeref\n\n"
                          "See :class:`socket.socket` and :class:`collections.abc.Callable`.\n")
    result = hook.build_api(tmp_path / "good-out", good)
    assert result.returncode == 0, result.stdout + result.stderr
    bad = sphinx_project(tmp_path / "bad", "See :class:`layer1_sockets.NoSuchThing`.\n")
    result = hook.build_api(tmp_path / "bad-out", bad)
    assert result.returncode != 0
    assert "layer1_sockets.NoSuchThing" in result.stderr
