"""Fixtures for the site tests: the site built once per session, and served."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from site_support import Served, build_site, serving


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built with ``mkdocs build --strict`` into a fresh folder."""
    target = tmp_path_factory.mktemp("built") / "site"
    result = build_site(target)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (target / "index.html").is_file()
    return target


@pytest.fixture(scope="session")
def served_site(built_site: Path) -> Iterator[Served]:
    """Our static-file server on the built site."""
    with serving(built_site) as served:
        yield served
