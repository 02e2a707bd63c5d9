"""The tutorial site as a whole: built strictly, linked, offline, served by our server.

What ``mkdocs build --strict`` already checks (missing pages, broken
Markdown links and anchors, missing snippet files) is not repeated here.
These tests look at the *built* HTML, where every link ends up, including
those that Markdown never saw: navigation, the theme's own assets,
cross-references into the API reference, links inside inline SVG. They also
check the promises of the home page, that nothing is fetched from the
internet, and that ``make serve`` runs our server and stops cleanly on
Ctrl-C.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
from site_support import Served
from support import ROOT, example, running

DOCS = ROOT / "docs"
DIAGRAMS = DOCS / "diagrams"
TIMEOUT = 20.0
SITE_URL = "http://127.0.0.1:8000/"
LOADED = {("script", "src"), ("img", "src"), ("source", "src"), ("iframe", "src"),
          ("image", "href"), ("use", "href")}
LOADED_LINK_RELS = {"stylesheet", "icon", "preload", "modulepreload", "manifest"}


@dataclass
class Page:
    """What a built HTML page offers (ids) and what it points to (references)."""

    ids: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)


class _Collector(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        for name in ("id", "name"):
            if name in values and (name == "id" or tag == "a"):
                self.page.ids.add(values[name])
        for name in ("href", "src", "xlink:href"):
            if name not in values:
                continue
            target = values[name]
            rels = set(values.get("rel", "").split())
            if (tag, name.removeprefix("xlink:")) in LOADED or (tag == "link"
                                                              and rels & LOADED_LINK_RELS):
                self.page.loads.append(target)
            else:
                self.page.links.append(target)


def parse_page(path: Path) -> Page:
    page = Page()
    _Collector(page).feed(path.read_text(encoding="utf-8"))
    return page


def site_pages(site: Path) -> dict[str, Page]:
    """Every HTML page of the site, by its URL path (``part1/``, ``404.html``)."""
    pages = {}
    for path in sorted(site.rglob("*.html")):
        relative = path.relative_to(site).as_posix()
        url = relative.removesuffix("index.html") if path.name == "index.html" else relative
        pages[url] = parse_page(path)
    return pages


def is_external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc) and not url.startswith(SITE_URL)


def resolve(site: Path, page_url: str, reference: str) -> tuple[Path | None, str, str]:
    """The file a reference on a page leads to (None if missing), its URL path, the anchor."""
    absolute = urljoin("http://site/" + page_url, reference.replace(SITE_URL, "/"))
    parts = urlsplit(absolute)
    path = unquote(parts.path).lstrip("/")
    target = site / path
    if path == "" or path.endswith("/"):
        target = target / "index.html"
    elif target.is_dir():
        target = target / "index.html"
        path += "/"
    url = path.removesuffix("index.html") if target.name == "index.html" else path
    return (target if target.is_file() else None), url, unquote(parts.fragment)


def broken_references(site: Path) -> list[str]:
    pages = site_pages(site)
    broken = []
    for page_url, page in pages.items():
        for reference in page.links + page.loads:
            if is_external(reference) or reference.startswith(("mailto:", "data:", "#__")):
                continue
            target, url, anchor = resolve(site, page_url, reference)
            if target is None:
                broken.append(f"{page_url or '/'}: {reference} (no such file)")
            elif anchor and target.suffix == ".html" and anchor not in pages[url].ids:
                broken.append(f"{page_url or '/'}: {reference} (no such anchor)")
    return broken


# -- the built site ------------------------------------------------------------------


def test_the_link_checker_finds_a_broken_link_and_a_missing_anchor(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "index.html").write_text(
        '<h1 id="top">x</h1><a href="a/">ok</a><a href="a/#nowhere">bad anchor</a>'
        '<a href="b/">missing</a><a href="#top">self</a><link rel="stylesheet" href="s.css">'
        '<a href="https://example.org/">external</a>')
    (tmp_path / "a" / "index.html").write_text('<p id="here">a</p><a href="../#top">up</a>')
    assert broken_references(tmp_path) == [
        "/: a/#nowhere (no such anchor)", "/: b/ (no such file)", "/: s.css (no such file)"]


def test_every_internal_link_and_anchor_of_the_built_site_resolves(built_site: Path) -> None:
    assert broken_references(built_site) == []


def test_nothing_is_loaded_from_the_internet(built_site: Path) -> None:
    """Scripts, styles, fonts and images come from the site itself: it works offline."""
    external = [f"{url or '/'}: {load}" for url, page in site_pages(built_site).items()
                for load in page.loads if is_external(load)]
    assert external == []
    remote_css = re.compile(r"url\(\s*['\"]?(?:https?:)?//|@import\s+['\"]?(?:https?:)?//")
    css = [path.name for path in built_site.rglob("*.css")
           if remote_css.search(path.read_text(encoding="utf-8"))]
    assert css == []


def test_no_diagram_script_is_used(built_site: Path) -> None:
    """Diagrams are SVG inside the pages: no mermaid or other drawing script."""
    scripts = {load for page in site_pages(built_site).values() for load in page.loads
               if load.endswith(".js")}
    assert scripts, "the theme's scripts should have been found"
    assert [s for s in scripts if re.search(r"mermaid|kroki|plantuml|d3", s)] == []


def test_every_page_of_the_docs_is_built(built_site: Path) -> None:
    sources = {p.relative_to(DOCS).with_suffix("").as_posix()
               for p in DOCS.rglob("*.md") if "examples" not in p.parts}
    built = {p.relative_to(built_site).parent.as_posix()
             for p in built_site.rglob("index.html")}
    expected = {"." if s == "index" else s.removesuffix("/index") for s in sources}
    assert expected <= built


def test_the_home_page_says_what_a_reader_needs_to_start(built_site: Path) -> None:
    page = parse_page(built_site / "index.html")
    for anchor in ("what-moonbridge-is", "what-you-will-build", "the-learning-path",
                   "what-you-need", "running-the-examples"):
        assert anchor in page.ids
    for part in ("part1/", "part2/", "part3/", "how-it-works/", "teachers/", "mapping/"):
        assert part in page.links
    text = (built_site / "index.html").read_text(encoding="utf-8")
    path = text[text.index('id="the-learning-path"'):text.index('id="what-you-need"')]
    times = re.findall(r"<td>(\d+(?:[.,\u2013-]\d+)?\s*(?:h|min))\b", path)
    assert len(times) >= 3, "each part of the learning path says how long it takes"


def test_the_readme_first_screen_has_the_two_commands_and_the_start_of_the_tutorial() -> None:
    first_screen = (ROOT / "README.md").read_text(encoding="utf-8").split("\n---\n")[0]
    for needed in ("make serve", "make test", "docs/index.md", "layer3_http --static"):
        assert needed in first_screen
    assert len(first_screen.splitlines()) < 40


# -- diagrams ------------------------------------------------------------------------------

SVG = "{http://www.w3.org/2000/svg}"


def diagram_files() -> list[Path]:
    return sorted(DIAGRAMS.glob("*.svg"))


@pytest.mark.parametrize("diagram", diagram_files(), ids=lambda p: p.name)
def test_a_diagram_is_self_contained_svg_with_a_title(diagram: Path) -> None:
    root = ET.parse(diagram).getroot()
    assert root.tag == SVG + "svg"
    assert root.get("viewBox")
    title = root.find(SVG + "title")
    assert title is not None and (title.text or "").strip()
    text = diagram.read_text(encoding="utf-8")
    assert "<script" not in text
    assert not re.search(r"href=\"(?:https?:)?//", text), "no external references"


def test_every_diagram_is_inlined_by_a_page() -> None:
    pages = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))
    missing = [d.name for d in diagram_files()
               if f'--8<-- "docs/diagrams/{d.name}"' not in pages]
    assert missing == []


def test_diagram_ids_do_not_clash_across_pages() -> None:
    """Inline SVGs share their page's id space: markers and titles need unique ids."""
    seen: dict[str, str] = {}
    clashes = []
    for diagram in diagram_files():
        for ident in re.findall(r'\bid="([^"]+)"', diagram.read_text(encoding="utf-8")):
            if ident in seen and seen[ident] != diagram.name:
                clashes.append(f"{ident}: {seen[ident]} and {diagram.name}")
            seen[ident] = diagram.name
    assert clashes == []


# -- served by our server ----------------------------------------------------------------


def get(port: int, path: str, headers: dict[str, str] | None = None
        ) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_our_server_serves_the_site(served_site: Served) -> None:
    status, headers, body = get(served_site.port, "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert b"<title>Moonbridge in Python</title>" in body
    status, headers, body = get(served_site.port, "/search/search_index.json")
    assert status == 200 and headers["content-type"] == "application/json"
    assert any(doc["location"].startswith("how-it-works/") for doc in json.loads(body)["docs"])
    status, headers, _ = get(served_site.port, "/how-it-works")
    assert status == 301 and headers["location"] == "/how-it-works/"
    status, _, _ = get(served_site.port, "/assets/site.css", {"If-None-Match": "*"})
    assert status == 304


# -- make serve ------------------------------------------------------------------------------


def make_commands(*variables: str) -> list[str]:
    """The commands ``make serve`` would run, as ``make -n`` prints them."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = subprocess.run(["make", "--no-print-directory", "-n", "serve", *variables],
                            cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT,
                            check=True)
    return [line for line in result.stdout.splitlines() if line.strip()]


def test_make_serve_builds_strictly_then_runs_our_server() -> None:
    commands = make_commands("HOST=127.0.0.1", "PORT=8000")
    build = [i for i, c in enumerate(commands) if "mkdocs build" in c]
    serve = [i for i, c in enumerate(commands) if "-m layer3_http" in c]
    assert len(build) == 1 and len(serve) == 1 and build[0] < serve[0]
    assert "--strict" in commands[build[0]]
    assert shlex.split(commands[serve[0]]) == [
        ".venv/bin/python", "-m", "layer3_http", "--static", "site",
        "--listen", "127.0.0.1:8000"]
    assert "http://127.0.0.1:8000/" in commands[serve[0] - 1]  # the address, announced


def test_ctrl_c_stops_make_serve_cleanly(built_site: Path, tmp_path: Path) -> None:
    """Run the command line of ``make serve``; SIGINT to its process group, as Ctrl-C does."""
    command = next(c for c in make_commands("PORT=0") if "-m layer3_http" in c)
    argv = shlex.split(command)
    assert argv[0] == ".venv/bin/python"
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv: make setup has not run")
    (tmp_path / "site").symlink_to(built_site)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    with running(argv, cwd=tmp_path) as server:
        port = server.wait_for_port()
        assert get(port, "/")[0] == 200
        server.drain_output()
        workers = re.findall(r"forked worker (\d+)", server.output())
        os.killpg(server.pid, signal.SIGINT)  # the terminal signals the whole foreground group
        server.proc.wait(TIMEOUT)
        rc = server.stop()  # it has exited: this only collects the rest of its output
        log = server.output()
    assert rc == 0, log
    assert "Traceback" not in log
    assert log.rstrip().endswith("stopped")
    assert workers
    assert " WARNING " not in log, log  # a stop that went as asked: no worker's end is one
    assert re.search(r"fast stop \(SIGINT\): listeners closed, killing \d+ workers?\n", log)
    for pid in workers:  # the master reaped every worker before it said "stopped"
        with pytest.raises(ProcessLookupError):
            os.close(os.pidfd_open(int(pid)))
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()


# -- the example on the home page --------------------------------------------------------------


def test_hello_example_answers_from_a_pre_forked_worker() -> None:
    with example("tour/hello.py") as (program, port):
        status, headers, body = get(port, "/?name=Ada")
        assert status == 200
        assert headers["content-type"] == "text/plain; charset=utf-8"
        match = re.fullmatch(rb"hello, Ada, from worker (\d+)\n", body)
        assert match and int(match[1]) != program.pid
        assert get(port, "/")[2].startswith(b"hello, world, from worker ")
        assert program.stop(signal.SIGTERM, timeout=TIMEOUT) == 0
