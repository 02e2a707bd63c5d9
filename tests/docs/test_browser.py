"""The tutorial in a real browser, served by our own server.

Headless Chromium loads every page of the built site from
``python -m layer3_http --static`` and the tests check what a reader would
see: each page renders (title, heading, text, the theme's stylesheet),
each diagram is an SVG that was laid out with a size, the search finds
pages (from a ``?q=`` link and by typing) and each chapter by its title,
no script fails, and every
request the browser makes is answered 2xx or 304 by our server; none goes
anywhere else, so the site works offline. Screenshots of the home page and
of a diagram go to ``test-artifacts/``, with a JSON report of what was
visited and how long it took.

The browser is driven with the DevTools protocol over
``--remote-debugging-pipe`` (JSON messages ended by NUL on descriptors 3
and 4): no extra package, and no debugging port that other local users
could connect to. When Chromium is missing, the tests try to install
Debian's package (as root, with apt) and are skipped only if that fails.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import selectors
import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from site_support import Served, chapter_titles
from support import ROOT, kill_group

ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT = 30.0
INSTALL_TIMEOUT = 900.0
SEARCH_LINK_TERM = "SCM_RIGHTS"  # the control protocol page explains it
TYPED_TERM = "backpressure"  # part 1, chapter 3 is about it
DIAGRAM_PAGE = "how-it-works/data-path/"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-proxy-server", "--hide-scrollbars", "--window-size=1280,900",
         "--remote-debugging-pipe")
Message = dict[str, Any]


# -- finding (or installing) Chromium ------------------------------------------------


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        if path := shutil.which(name):
            return path
    return None


def install_chromium() -> str | None:
    """Install Debian's chromium with apt (as root), updating the lists if the first try fails."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for update_first in (False, True):
        try:
            if update_first:
                subprocess.run(["apt-get", "update"], env=env, capture_output=True,
                               timeout=INSTALL_TIMEOUT, check=False)
            subprocess.run(["apt-get", "install", "-y", "chromium"], env=env,
                           capture_output=True, timeout=INSTALL_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if path := find_chromium():
            return path
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    path = find_chromium() or install_chromium()
    if path is None:
        pytest.skip("Chromium is not installed and could not be installed here")
    return path


# -- the DevTools protocol over a pipe -------------------------------------------------


class DevTools:
    """Commands to the browser and the events it sends back, over two pipes.

    Every event is kept in `events`, in arrival order, so that a test can
    look at everything that happened since a mark. Workers that a page
    starts (the search runs in one) are attached automatically, with their
    network events enabled before their first request.
    """

    def __init__(self, to_browser: int, from_browser: int) -> None:
        self.to_browser = to_browser
        self.from_browser = from_browser
        self.pending = b""
        self.next_id = 0
        self.events: list[Message] = []
        self.selector = selectors.DefaultSelector()
        self.selector.register(from_browser, selectors.EVENT_READ)

    def send(self, method: str, session: str | None = None, **params: Any) -> int:
        self.next_id += 1
        message: Message = {"id": self.next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self.to_browser, data):]
        return self.next_id

    def call(self, method: str, session: str | None = None, **params: Any) -> Message:
        """Send a command and return its result; events that arrive meanwhile are kept."""
        ident = self.send(method, session, **params)
        deadline = time.monotonic() + TIMEOUT
        while True:
            message = self._receive(deadline, method)
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: Message = message.get("result", {})
                return result

    def wait_for(self, predicate: Callable[[Message], bool], since: int,
                 what: str) -> Message:
        """Return the first event from index `since` on that satisfies predicate."""
        deadline = time.monotonic() + TIMEOUT
        checked = since
        while True:
            while checked < len(self.events):
                event = self.events[checked]
                checked += 1
                if predicate(event):
                    return event
            self._receive(deadline, what)

    def _receive(self, deadline: float, what: str) -> Message:
        while b"\0" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0 or not self.selector.select(left):
                raise TimeoutError(f"the browser did not answer in time: {what}")
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise EOFError("the browser closed its DevTools pipe")
            self.pending += chunk
        raw, _, self.pending = self.pending.partition(b"\0")
        message: Message = json.loads(raw)
        if "method" in message:
            self.events.append(message)
            if message["method"] == "Target.attachedToTarget":
                child = message["params"]["sessionId"]
                self.send("Network.enable", child)
                self.send("Runtime.runIfWaitingForDebugger", child)
        return message


def _above(fd: int, lowest: int = 10) -> int:
    """Move a descriptor to a number >= lowest (close-on-exec), out of the way of 3 and 4."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, lowest)
    os.close(fd)
    return moved


@dataclass
class Browser:
    """A headless Chromium process in its own process group, and its DevTools pipe."""

    process: subprocess.Popen[bytes]
    devtools: DevTools
    log: Path

    @classmethod
    def start(cls, executable: str, workdir: Path) -> Browser:
        profile = workdir / "profile"
        profile.mkdir()
        commands_read, commands_write = map(_above, os.pipe())
        events_read, events_write = map(_above, os.pipe())

        def descriptors_3_and_4() -> None:  # runs in the child, before exec
            os.dup2(commands_read, 3)
            os.dup2(events_write, 4)

        log = workdir / "chromium.log"
        with open(log, "wb") as output:
            process = subprocess.Popen(
                [executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=output, stderr=output, close_fds=False,
                preexec_fn=descriptors_3_and_4, start_new_session=True)
        os.close(commands_read)
        os.close(events_write)
        return cls(process, DevTools(commands_write, events_read), log)

    def close(self) -> None:
        """Ask the browser to close; kill its process group if it does not, and reap it."""
        try:
            self.devtools.send("Browser.close")
            self.process.wait(TIMEOUT / 3)
        except (OSError, subprocess.TimeoutExpired):
            pass
        kill_group(self.process.pid)
        self.process.wait(TIMEOUT / 3)
        for fd in (self.devtools.to_browser, self.devtools.from_browser):
            os.close(fd)
        self.devtools.selector.close()


@dataclass
class Tab:
    """One page target of the browser, with its own DevTools session."""

    devtools: DevTools
    session: str

    @classmethod
    def open(cls, devtools: DevTools) -> Tab:
        target = devtools.call("Target.createTarget", url="about:blank")["targetId"]
        session = devtools.call("Target.attachToTarget", targetId=target, flatten=True)
        tab = cls(devtools, session["sessionId"])
        for domain in ("Page", "Network", "Runtime"):
            tab.call(f"{domain}.enable")
        tab.call("Target.setAutoAttach", autoAttach=True, waitForDebuggerOnStart=True,
                 flatten=True)
        tab.call("Emulation.setDeviceMetricsOverride", width=1280, height=900,
                 deviceScaleFactor=1, mobile=False)
        return tab

    def call(self, method: str, **params: Any) -> Message:
        return self.devtools.call(method, self.session, **params)

    def navigate(self, url: str) -> None:
        """Load url and wait for its load event and for the network to fall quiet."""
        mark = len(self.devtools.events)
        result = self.call("Page.navigate", url=url)
        assert not result.get("errorText"), f"{url}: {result.get('errorText')}"
        self.devtools.wait_for(lambda event: event["method"] == "Page.loadEventFired"
                               and event.get("sessionId") == self.session, mark, url)
        self.wait_network_quiet(mark, url)

    def wait_network_quiet(self, since: int, what: str) -> None:
        """Wait until every request started since the mark has finished or failed."""
        def open_requests() -> set[str]:
            started, ended = set(), set()
            for event in self.devtools.events[since:]:
                if event["method"] == "Network.requestWillBeSent":
                    # Chromium fetches a page's icon for its tab, outside the page: a
                    # later page's mark can see it start and never see it end
                    if "favicon" not in event["params"]["request"]["url"]:
                        started.add(event["params"]["requestId"])
                elif event["method"] in ("Network.loadingFinished", "Network.loadingFailed"):
                    ended.add(event["params"]["requestId"])
            return started - ended

        checked = len(self.devtools.events)
        while open_requests():
            self.devtools.wait_for(lambda event: event["method"].startswith("Network.loading"),
                                   checked, f"the requests of {what}")
            checked = len(self.devtools.events)

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))


# -- what the page shows ------------------------------------------------------------------

PAGE_FACTS = """(() => {
  const article = document.querySelector("article");
  const header = document.querySelector(".md-header");
  return {
    title: document.title,
    heading: article?.querySelector("h1")?.textContent.trim() ?? "",
    textLength: article ? article.innerText.trim().length : 0,
    styled: header ? getComputedStyle(header).position
                   : document.querySelector(".sidebar-drawer") ? "furo " +
                     getComputedStyle(document.querySelector(".sidebar-drawer")).display : "",
    diagrams: [...document.querySelectorAll(".diagram")].map(div => {
      const svg = div.querySelector("svg");
      if (!svg) return null;
      const box = svg.getBoundingClientRect();
      return {width: box.width, height: box.height,
              shapes: svg.querySelectorAll("line, polyline, path, rect, circle, text").length};
    }),
    brokenImages: [...document.images].filter(i => !(i.complete && i.naturalWidth > 0))
                                      .map(i => i.src),
  };
})()"""

SCROLL_TO_DIAGRAM = """(async () => {
  document.querySelector(".diagram").scrollIntoView({block: "center"});
  for (let frame = 0; frame < 2; frame++) await new Promise(requestAnimationFrame);
  await Promise.all(document.getAnimations().map(animation => animation.finished));
})()"""

SEARCH_RESULTS = """new Promise(resolve => {
  const wanted = %s;
  const found = () => {
    const links = [...document.querySelectorAll(".md-search-result__item a")].map(a => a.href);
    if (!links.some(href => href.includes(wanted))) return false;
    const meta = document.querySelector(".md-search-result__meta");
    resolve({links, meta: meta ? meta.textContent : ""});
    return true;
  };
  if (found()) return;
  const watch = new MutationObserver(() => { if (found()) watch.disconnect(); });
  watch.observe(document.body, {childList: true, subtree: true, characterData: true});
  setTimeout(() => { watch.disconnect(); resolve(null); }, %d);
})"""


WATCH_RESULTS = """(() => {
  const list = document.querySelector(".md-search-result__list");
  window.__resultsChanged = new Promise(resolve => {
    const watch = new MutationObserver(() => { watch.disconnect(); resolve(true); });
    watch.observe(list, {childList: true, subtree: true});
    setTimeout(() => { watch.disconnect(); resolve(false); }, %d);
  });
  return true;
})()"""


def search_results(tab: Tab, wanted: str) -> dict[str, Any] | None:
    """Wait (bounded, inside the page) for a search result linking to `wanted`."""
    result: dict[str, Any] | None = tab.evaluate(
        SEARCH_RESULTS % (json.dumps(wanted), int(TIMEOUT * 1000 / 2)))
    return result


@dataclass
class Tour:
    """Everything the browser saw while it read the site."""

    base: str
    pages: dict[str, dict[str, Any]] = field(default_factory=dict)
    expected_diagrams: dict[str, int] = field(default_factory=dict)
    searches: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    title_searches: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    screenshots: list[Path] = field(default_factory=list)
    events: list[Message] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


def page_paths(site: Path) -> list[str]:
    """The URL path of every page of the built site ("" for the home page)."""
    paths = (index.relative_to(site).parent.as_posix() for index in site.rglob("index.html"))
    return sorted("" if path == "." else path + "/" for path in paths)


def take_the_tour(browser: Browser, base: str, site: Path) -> Tour:
    tour = Tour(base)
    tab = Tab.open(browser.devtools)
    for path in page_paths(site):
        started = time.monotonic()
        tab.navigate(base + path)
        tour.pages[path] = tab.evaluate(PAGE_FACTS)
        tour.timings[path or "/"] = time.monotonic() - started
        html = (site / path / "index.html").read_text(encoding="utf-8")
        tour.expected_diagrams[path] = html.count('<div class="diagram">')
        if path == "":
            tour.screenshots.append(ARTIFACTS / "home.png")
            tab.screenshot(tour.screenshots[-1])
        if path == DIAGRAM_PAGE:
            tab.evaluate(SCROLL_TO_DIAGRAM)
            tour.screenshots.append(ARTIFACTS / "diagram-data-path.png")
            tab.screenshot(tour.screenshots[-1])
    started = time.monotonic()
    tab.navigate(f"{base}?q={SEARCH_LINK_TERM}")
    tour.searches["link"] = search_results(tab, "how-it-works/control-protocol/")
    tour.timings["search from a link"] = time.monotonic() - started
    started = time.monotonic()
    tour.searches["typed"] = type_a_query(tab, TYPED_TERM, "part1/")
    tour.timings["search by typing"] = time.monotonic() - started
    started = time.monotonic()
    for url, title in chapter_titles().items():  # a reader looks a chapter up by its name
        tour.title_searches[url] = type_a_query(tab, title, base + url)
    tour.timings["a search for each chapter's title"] = time.monotonic() - started
    tab.wait_network_quiet(0, "the search")
    tour.events = list(browser.devtools.events)
    return tour


def type_a_query(tab: Tab, text: str, wanted: str) -> dict[str, Any] | None:
    """Clear the search field and type text into it, key by key as far as the page can tell."""
    tab.evaluate(WATCH_RESULTS % int(TIMEOUT * 1000 / 2))  # results of *this* query only
    tab.evaluate("""(() => { const input = document.querySelector("input.md-search__input");
                              input.value = ""; input.focus(); })()""")
    tab.call("Input.insertText", text=text)
    tab.call("Input.dispatchKeyEvent", type="keyDown", key=text[-1], code=f"Key{text[-1].upper()}")
    tab.call("Input.dispatchKeyEvent", type="keyUp", key=text[-1], code=f"Key{text[-1].upper()}")
    tab.evaluate("window.__resultsChanged")
    return search_results(tab, wanted)


@pytest.fixture(scope="module")
def tour(chromium: str, served_site: Served, built_site: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tour]:
    workdir = tmp_path_factory.mktemp("browser")
    started = time.monotonic()
    browser = Browser.start(chromium, workdir)
    try:
        browser.devtools.call("Browser.getVersion")
        ready = time.monotonic() - started
        result = take_the_tour(browser, served_site.base, built_site)
        result.timings = {"browser start": ready, **result.timings,
                          "total": time.monotonic() - started}
    finally:
        browser.close()
    write_report(result)
    yield result


def write_report(tour: Tour) -> None:
    responses = [e for e in tour.events if e["method"] == "Network.responseReceived"]
    report = {
        "pages": len(tour.pages),
        "requests": sum(e["method"] == "Network.requestWillBeSent" for e in tour.events),
        "responses by status": _count(str(e["params"]["response"]["status"]) for e in responses),
        "screenshots": [str(p.relative_to(ROOT)) for p in tour.screenshots],
        "seconds": {name: round(seconds, 3) for name, seconds in tour.timings.items()},
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "browser-report.json").write_text(json.dumps(report, indent=2) + "\n")


def _count(items: Iterator[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts


# -- the checks ------------------------------------------------------------------------------


def test_every_page_renders(tour: Tour) -> None:
    assert "" in tour.pages and DIAGRAM_PAGE in tour.pages
    # The API reference (api/) is Sphinx's, in the furo theme: its own title and layout.
    title = {True: "API reference", False: "Moonbridge in Python"}
    styled = {True: "furo flex", False: "sticky"}
    bad = {path: facts for path, facts in tour.pages.items()
           if not facts["title"].endswith(title[path.startswith("api/")]) or not facts["heading"]
           or facts["textLength"] == 0 or facts["styled"] != styled[path.startswith("api/")]
           or facts["brokenImages"]}
    assert bad == {}
    assert "api/" in tour.pages


def test_every_diagram_is_drawn_as_svg(tour: Tour) -> None:
    assert sum(tour.expected_diagrams.values()) >= 4
    for path, facts in tour.pages.items():
        drawn = [d for d in facts["diagrams"]
                 if d is not None and d["width"] > 100 and d["height"] > 50 and d["shapes"] > 5]
        assert len(drawn) == tour.expected_diagrams[path], (path, facts["diagrams"])


def test_search_finds_pages_from_a_link_and_by_typing(tour: Tour) -> None:
    linked = tour.searches["link"]
    assert linked is not None, f"no result for {SEARCH_LINK_TERM}"
    assert linked["meta"].endswith("matching documents") or linked["meta"].endswith(
        "matching document")
    typed = tour.searches["typed"]
    assert typed is not None, f"no result for {TYPED_TERM}"
    assert all(link.startswith(tour.base) for link in linked["links"] + typed["links"])
    # result links carry the query they answer, for highlighting on the page
    assert any(f"h={SEARCH_LINK_TERM.lower()}" in link for link in linked["links"])
    assert any(f"h={TYPED_TERM}" in link for link in typed["links"])


def result_pages(links: list[str]) -> list[str]:
    """The pages of a search's results, in the order shown (a page once, sections folded)."""
    pages: list[str] = []
    for link in links:
        path = urllib.parse.urlsplit(link).path
        if path not in pages:
            pages.append(path)
    return pages


def test_search_finds_each_chapter_by_its_title(tour: Tour) -> None:
    """Typing a chapter's title shows that chapter among the first three pages found.

    The theme's search (lunr) expands every query term as a prefix, and
    for some sets of indexed terms that expansion fails inside lunr (the
    worker logs "Invalid query" and a TypeError reading '_index'); the page
    then says "No matching documents" for every query with that prefix.
    Terms with digits in them make it likely, so code listings and diffs,
    which are full of numbers, are kept out of the index
    (``data-search-exclude``); this test notices when a page brings the
    failure back. A number in a title also matches every "1." of the
    other chapters, so the page must come near the top, not first.
    """
    assert len(tour.title_searches) >= 25
    not_found = [url for url, result in tour.title_searches.items() if result is None]
    assert not_found == []
    far = {url: result_pages(result["links"])[:3] for url, result in tour.title_searches.items()
           if result is not None and "/" + url not in result_pages(result["links"])[:3]}
    assert far == {}


def test_no_request_fails_and_none_leaves_our_server(tour: Tour) -> None:
    requests = [e["params"]["request"]["url"] for e in tour.events
                if e["method"] == "Network.requestWillBeSent"]
    assert len(requests) > len(tour.pages)
    elsewhere = [url for url in requests
                 if not url.startswith((tour.base, "data:", "blob:", "about:"))]
    assert elsewhere == []
    statuses = [(e["params"]["response"]["status"], e["params"]["response"]["url"])
                for e in tour.events if e["method"] == "Network.responseReceived"]
    assert [s for s in statuses if not (200 <= s[0] < 300 or s[0] == 304)] == []
    redirects = [e["params"]["redirectResponse"]["url"] for e in tour.events
                 if e["method"] == "Network.requestWillBeSent"
                 and "redirectResponse" in e["params"]]
    assert redirects == [], "links should point at the final URL, not at a redirect"
    failed = [e["params"] for e in tour.events
              if e["method"] == "Network.loadingFailed" and not e["params"].get("canceled")]
    assert failed == []
    assert any(url.endswith("/search/search_index.json") for _, url in statuses)


def test_no_script_fails(tour: Tour) -> None:
    assert [e["params"] for e in tour.events if e["method"] == "Runtime.exceptionThrown"] == []


def test_our_server_logged_no_failure(tour: Tour, served_site: Served) -> None:
    served_site.program.drain_output()
    log = served_site.program.output()
    assert "Traceback" not in log
    assert "layer3_http:" not in log  # the HTTP layer logs every refused or failed request


def test_screenshots_are_kept_as_artifacts(tour: Tour) -> None:
    assert {p.name for p in tour.screenshots} == {"home.png", "diagram-data-path.png"}
    for path in tour.screenshots:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
