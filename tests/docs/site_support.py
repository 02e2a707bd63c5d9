"""Helpers for the site tests: build the site strictly, serve it with our own server.

The site is built exactly as ``make docs`` builds it (``mkdocs build
--strict``), but into a folder of the test's own, so the tests never
depend on a ``site/`` left over from an earlier build. The server is the
one ``make serve`` runs, ``python -m layer3_http --static DIR``, here on
port 0 so that tests never collide with a server a reader has running.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from support import ROOT, Program, running

BUILD_TIMEOUT = 120.0


@dataclass(frozen=True)
class Served:
    """A running server for a built site."""

    program: Program
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


def build_site(target: Path) -> subprocess.CompletedProcess[str]:
    """Build the site strictly into target; return the finished mkdocs run."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(target)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
        check=False)


@contextmanager
def serving(site: Path) -> Iterator[Served]:
    """Our static-file server on site, on a port the kernel chose; killed afterwards."""
    argv = [sys.executable, "-m", "layer3_http", "--static", str(site),
            "--listen", "127.0.0.1:0"]
    with running(argv) as program:
        yield Served(program, program.wait_for_port())


def chapter_titles(docs: Path = ROOT / "docs") -> dict[str, str]:
    """The URL path and the title (the first heading) of every chapter and section page."""
    titles = {}
    for source in sorted(docs.glob("part[0-9]/*.md")) + sorted(docs.glob("inside/*.md")):
        first = source.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# "), source
        url = source.relative_to(docs).with_suffix("").as_posix()
        url = url.removesuffix("index") if url.endswith("/index") else url + "/"
        titles[url] = re.sub(r"`([^`]*)`", r"\1", first[2:]).strip()
    return titles
