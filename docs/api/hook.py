"""The mkdocs hook that builds the API reference with Sphinx and publishes it at /api/.

Each ``mkdocs build`` (and each rebuild of ``mkdocs serve``) runs
``sphinx-build -W --keep-going -n`` on this folder into a fresh temporary
folder: a Sphinx warning, such as a reference that does not resolve, fails
the site's build. The HTML that Sphinx wrote joins the site's files under
``api/``, so mkdocs copies it into ``site/api/`` and checks links to it
like links to any other file of the site.

The tutorial names API objects the way it always did, as Markdown reference
links whose label is the dotted name: ``[`poll`][layer1_sockets.poll]``.
This hook reads Sphinx's inventory (``objects.inv``) and gives each page
the definitions of the labels it uses, pointing at the object's anchor in
the API reference. A label that names no documented object is a warning,
which the strict build turns into an error.
"""

from __future__ import annotations

import logging
import posixpath
import re
import shutil
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files, InclusionLevel
from mkdocs.structure.nav import Link, Navigation, Section
from mkdocs.structure.pages import Page

API = Path(__file__).resolve().parent
SPHINX_OPTIONS = ("-W", "--keep-going", "-n", "-q", "-b", "html")
SPHINX_TIMEOUT = 300.0
URL_PREFIX = "api"
# A reference link whose label is a dotted name in one of the packages.
LABEL = re.compile(r"\]\[(layer[123]_[a-z]+(?:\.\w+)*)\]")
DEFINED = re.compile(r"^ {0,3}\[([^\]]+)\]:", re.M)

log = logging.getLogger("mkdocs.hooks.api")
_built: dict[str, Any] = {}


def build_api(target: Path, source: Path = API) -> subprocess.CompletedProcess[str]:
    """Run sphinx-build on source (this folder) into target; return the finished run."""
    return subprocess.run(
        [sys.executable, "-m", "sphinx", *SPHINX_OPTIONS, str(source), str(target)],
        capture_output=True, text=True, timeout=SPHINX_TIMEOUT, check=False)


def read_inventory(data: bytes) -> dict[str, str]:
    """The Python objects of a Sphinx inventory (version 2): dotted name -> URL in the build."""
    header_end = 0
    for _ in range(4):  # four lines of header, then zlib-compressed lines
        header_end = data.index(b"\n", header_end) + 1
    if not data.startswith(b"# Sphinx inventory version 2"):
        raise ValueError("not a Sphinx inventory of version 2")
    found = {}
    for line in zlib.decompress(data[header_end:]).decode("utf-8").splitlines():
        match = re.fullmatch(r"(.+?)\s+(py:\w+)\s+(-?\d+)\s+(\S*)\s+(.*)", line)
        if match:
            name, _, _, uri, _ = match.groups()
            found[name] = uri[:-1] + name if uri.endswith("$") else uri
    return found


def add_definitions(markdown: str, page_path: str, inventory: dict[str, str]
                    ) -> tuple[str, list[str]]:
    """The markdown with a link definition for each API label it uses, and the unknown labels.

    page_path is the page's source path inside docs/ (``part1/index.md``);
    the definitions are relative to it, as mkdocs expects of any link.
    """
    defined = {label.lower() for label in DEFINED.findall(markdown)}
    wanted = sorted({label for label in LABEL.findall(markdown)
                     if label.lower() not in defined})
    missing = [label for label in wanted if label not in inventory]
    base = posixpath.dirname(page_path) or "."
    lines = [f"[{label}]: {posixpath.relpath(f'{URL_PREFIX}/{inventory[label]}', base)}"
             for label in wanted if label in inventory]
    if lines:
        markdown = markdown.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    return markdown, missing


# -- the mkdocs events --------------------------------------------------------------------


def on_pre_build(config: Any) -> None:
    folder = Path(tempfile.mkdtemp(prefix="api-"))
    _built["folder"] = folder
    result = build_api(folder / URL_PREFIX)
    if result.returncode != 0:
        raise PluginError("the API reference (sphinx-build -W --keep-going -n docs/api)"
                          f" failed:\n{result.stdout}{result.stderr}")
    _built["inventory"] = read_inventory((folder / URL_PREFIX / "objects.inv").read_bytes())


def on_files(files: Files, config: Any) -> Files:
    folder: Path = _built["folder"]
    for path in sorted((folder / URL_PREFIX).rglob("*")):
        relative = path.relative_to(folder).as_posix()
        if path.is_file() and not relative.startswith(f"{URL_PREFIX}/.doctrees/") \
                and path.name != ".buildinfo":
            files.append(File(relative, str(folder), config["site_dir"],
                              config["use_directory_urls"], inclusion=InclusionLevel.INCLUDED))
    return files


def on_nav(nav: Navigation, config: Any, files: Files) -> Navigation:
    """Make the nav entry of api/index.html a plain link.

    As a page named index it would become its section's index page, which
    the theme shows as the section's own link and not as an entry.
    """
    def relink(items: list[Any]) -> None:
        for position, item in enumerate(items):
            if isinstance(item, Section):
                relink(item.children)
            elif isinstance(item, Page) and item.file.src_uri == f"{URL_PREFIX}/index.html":
                link = Link(item.title, item.file.url)
                link.parent = item.parent
                items[position] = link
    relink(nav.items)
    return nav


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    markdown, missing = add_definitions(markdown, page.file.src_uri, _built["inventory"])
    for label in missing:
        log.warning("%s: [%s] names nothing in the API reference", page.file.src_uri, label)
    return markdown


def on_post_build(config: Any) -> None:
    folder = _built.pop("folder", None)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def on_build_error(error: Exception) -> None:
    on_post_build(None)
