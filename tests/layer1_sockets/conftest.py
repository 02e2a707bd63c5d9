"""Fixtures for the layer 1 tests: every connection kind, both I/O styles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sockets_support import KINDS, Blocking, NonBlocking, connected

from layer1_sockets import BufferedSocket


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    """The connection kind: tcp4, tcp6, unix or tls."""
    return str(request.param)


@pytest.fixture(params=[Blocking(), NonBlocking()], ids=["blocking", "nonblocking"])
def style(request: pytest.FixtureRequest) -> Blocking | NonBlocking:
    """Blocking calls, or *_nb calls with poll."""
    param = request.param
    assert isinstance(param, Blocking | NonBlocking)
    return param


@pytest.fixture
def pair(kind: str, tmp_path: Path) -> Iterator[tuple[BufferedSocket, BufferedSocket]]:
    """A connected (client, server) pair of the given kind; reset afterwards."""
    with connected(kind, tmp_path) as sockets:
        yield sockets
