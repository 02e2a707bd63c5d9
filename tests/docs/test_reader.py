"""What a reader checks on the built site, page by page, without a browser.

The strict build catches a missing page, file or snippet; it does not see
what a page *shows*. These tests read the article of every built page and
check what a careful reader would notice: a diagram or image without a
text alternative, Markdown that did not render (a fence, an admonition
marker, a table rule, a snippet line left as text), an admonition without
a title or without a body, and a page the site's search cannot find by
its own title. (Links and anchors are checked in ``test_site.py``; the
browser's view of the search is in ``test_browser.py``.)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from site_support import chapter_titles
from support import ROOT

DOCS = ROOT / "docs"
HIDDEN = {"code", "pre", "script", "style", "kbd", "samp", "svg", "math", "textarea"}
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
UNRENDERED = [
    ("a code fence", re.compile(r"```|~~~")),
    ("an admonition marker", re.compile(r"(?:^|\s)(?:!!!|\?\?\?\+?)\s")),
    ("a snippet line", re.compile(r"-+8<-+")),
    ("a table rule", re.compile(r"\|\s*:?-{3,}")),
    ("bold markers", re.compile(r"\*\*\S")),
    ("a Markdown link", re.compile(r"\]\((?:[^)\s]*)\)|\]\[[\w.:-]*\]")),
    ("inline code markers", re.compile(r"`[^`\s][^`]*`")),
    ("a heading marker", re.compile(r"(?:^|\n)#{1,6} \w")),
    ("an attribute list", re.compile(r"\{:\s*[.#]")),
]


@dataclass
class Box:
    """An admonition (``div.admonition`` or ``details``) as the reader sees it."""

    kind: str
    title: str = ""
    body: str = ""


@dataclass
class Article:
    """The readable parts of one page's article."""

    prose: list[str] = field(default_factory=list)
    images: list[dict[str, str]] = field(default_factory=list)
    diagrams: list[dict[str, str]] = field(default_factory=list)  # svg attributes + "title"
    ids: set[str] = field(default_factory=set)
    boxes: list[Box] = field(default_factory=list)


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.article = Article()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.inside = 0  # depth of <article>
        self.hidden = 0
        self.svg: dict[str, str] | None = None
        self.svg_depth = 0
        self.in_svg_title = False
        self.boxes: list[tuple[int, Box]] = []  # open boxes and their stack depth
        self.in_title = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "article":
            self.inside += 1
        if not self.inside:
            return
        if "id" in values:
            self.article.ids.add(values["id"])
        if tag == "svg":
            if self.svg is None:
                self.svg = dict(values, title="")
            self.svg_depth += 1
        elif tag == "title" and self.svg is not None and self.svg_depth == 1:
            self.in_svg_title = True
        if tag == "img":
            self.article.images.append(values)
        classes = values.get("class", "").split()
        if (tag == "div" and "admonition" in classes) or tag == "details":
            self.boxes.append((len(self.stack), Box(tag)))
        if (tag == "p" and "admonition-title" in classes) or tag == "summary":
            self.in_title += 1
        if tag in HIDDEN:
            self.hidden += 1
        if tag not in VOID:
            self.stack.append((tag, values))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.inside:
            return
        while self.stack:
            open_tag, values = self.stack.pop()
            self._close(open_tag, values)
            if open_tag == tag:
                break

    def _close(self, tag: str, values: dict[str, str]) -> None:
        classes = values.get("class", "").split()
        if tag in HIDDEN:
            self.hidden -= 1
        if (tag == "p" and "admonition-title" in classes) or tag == "summary":
            self.in_title -= 1
        if tag == "title":
            self.in_svg_title = False
        if tag == "svg" and self.svg is not None:
            self.svg_depth -= 1
            if self.svg_depth == 0:
                self.article.diagrams.append(self.svg)
                self.svg = None
        if self.boxes and self.boxes[-1][0] == len(self.stack):
            self.article.boxes.append(self.boxes.pop()[1])
        if tag == "article":
            self.inside -= 1

    def handle_data(self, data: str) -> None:
        if not self.inside:
            return
        if self.in_svg_title and self.svg is not None:
            self.svg["title"] += data
        if self.boxes:
            box = self.boxes[-1][1]
            if self.in_title:
                box.title += data
            else:
                box.body += data
        if not self.hidden:
            self.article.prose.append(data)


def read_article(path: Path) -> Article:
    reader = _Reader()
    reader.feed(path.read_text(encoding="utf-8"))
    return reader.article


def page_files(site: Path) -> dict[str, Path]:
    """Every page of the built site (not the theme's assets), by URL path."""
    pages = {}
    for path in sorted(site.rglob("index.html")):
        url = path.relative_to(site).parent.as_posix()
        pages["" if url == "." else url + "/"] = path
    return pages


@pytest.fixture(scope="module")
def articles(built_site: Path) -> dict[str, Article]:
    return {url: read_article(path) for url, path in page_files(built_site).items()}


def unrendered(article: Article) -> list[str]:
    """Markdown syntax that reached the reader as text."""
    text = "".join(article.prose)
    found = []
    for what, pattern in UNRENDERED:
        for match in pattern.finditer(text):
            start = max(0, match.start() - 40)
            found.append(f"{what}: {text[start:match.end() + 40]!r}")
    return found


def missing_alternatives(article: Article) -> list[str]:
    """Images without alt text, inline diagrams without an accessible name."""
    missing = [f"<img src={image.get('src')!r}> has no alt text" for image in article.images
               if not image.get("alt", "").strip()]
    for svg in article.diagrams:
        title = svg["title"].strip()
        label = svg.get("aria-label", "").strip()
        named_by = svg.get("aria-labelledby", "")
        if svg.get("aria-hidden") == "true":
            continue
        if not (title or label):
            missing.append(f"an inline svg ({svg.get('viewbox')}) has no <title> or aria-label")
        elif svg.get("role") != "img":
            missing.append(f"the svg {title or label!r} lacks role=\"img\"")
        elif named_by and named_by not in article.ids:
            missing.append(f"the svg {title!r} is labelled by #{named_by}, which is not there")
    return missing


def broken_boxes(article: Article) -> list[str]:
    return [f"{box.kind} {box.title.strip()!r}: " + ("no title" if not box.title.strip()
                                                      else "no body")
            for box in article.boxes if not box.title.strip() or not box.body.strip()]


# -- the checks are checked ------------------------------------------------------------


BAD_PAGE = """<html><body><article>
<p>!!! note "Lost"</p><p>    indented</p>
<p>| a | b |
| --- | --- |</p>
<p>see [the reference][layer1_sockets.poll] and **this**</p>
<pre><code>```python  (inside code: fine)</code></pre>
<div class="admonition tip"><p class="admonition-title">Only a title</p></div>
<details><summary></summary><p>no title</p></details>
<img src="a.png"><img src="b.png" alt="a diagram">
<div class="diagram"><svg viewBox="0 0 10 10"><rect/></svg></div>
<svg viewBox="0 0 9 9" role="img" aria-labelledby="t"><title id="t">Named</title></svg>
<svg viewBox="0 0 8 8"><title>No role</title></svg>
</article></body></html>"""


def test_the_checks_find_what_a_reader_would(tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    page.write_text(BAD_PAGE)
    article = read_article(page)
    found = "\n".join(unrendered(article))
    for what in ("an admonition marker", "a table rule", "a Markdown link", "bold markers"):
        assert what in found
    assert "a code fence" not in found  # text inside <code> is not prose
    assert broken_boxes(article) == ["div 'Only a title': no body", "details '': no title"]
    assert missing_alternatives(article) == [
        "<img src='a.png'> has no alt text",
        "an inline svg (0 0 10 10) has no <title> or aria-label",
        "the svg 'No role' lacks role=\"img\""]


# -- the built site ------------------------------------------------------------------------


def test_every_page_has_an_article(articles: dict[str, Article]) -> None:
    assert len(articles) > 40
    assert [url for url, article in articles.items() if not "".join(article.prose).strip()
            and url != "404.html/"] == []


def test_every_image_and_diagram_has_a_text_alternative(articles: dict[str, Article]) -> None:
    assert sum(len(article.diagrams) for article in articles.values()) >= 10
    problems = {url: found for url, article in articles.items()
                if (found := missing_alternatives(article))}
    assert problems == {}


def test_no_page_shows_unrendered_markdown(articles: dict[str, Article]) -> None:
    problems = {url: found for url, article in articles.items() if (found := unrendered(article))}
    assert problems == {}


def test_every_admonition_has_a_title_and_a_body(articles: dict[str, Article]) -> None:
    assert sum(len(article.boxes) for article in articles.values()) >= 30
    problems = {url: found for url, article in articles.items()
                if (found := broken_boxes(article))}
    assert problems == {}


# -- search --------------------------------------------------------------------------------


def words(text: str, separator: str) -> list[str]:
    """The search index's terms: split at its separator, trimmed, lower-cased."""
    return [term for term in (re.sub(r"^\W+|\W+$", "", part).lower()
                              for part in re.split(separator, text)) if term]


def test_the_search_index_finds_every_chapter_by_its_title(built_site: Path) -> None:
    """Each chapter is a document of the index, and ranks first for its own title.

    The ranking here is the one the index's configuration asks for: a term
    in a title weighs its title boost, a term in the text one. It is a
    stand-in for the browser's search (``test_browser.py`` asks the real one).
    """
    index = json.loads((built_site / "search" / "search_index.json").read_text())
    separator = index["config"]["separator"]
    boost = index["config"]["fields"]["title"]["boost"]
    pages = {doc["location"]: doc for doc in index["docs"] if "#" not in doc["location"]}
    titles = chapter_titles()
    assert len(titles) >= 25
    missing = [url for url in titles if url not in pages]
    assert missing == []

    def score(doc: dict[str, str], terms: list[str]) -> float:
        title, text = set(words(doc["title"], separator)), set(words(doc["text"], separator))
        return sum(boost * (term in title) + (term in text) for term in terms)

    wrong = {}
    for url, title in titles.items():
        assert words(pages[url]["title"], separator) == words(title, separator), url
        terms = words(title, separator)
        best = max(pages.values(), key=lambda doc: score(doc, terms))
        if best["location"] != url and score(best, terms) > score(pages[url], terms):
            wrong[title] = best["location"]
    assert wrong == {}
