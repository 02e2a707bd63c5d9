"""Fixtures of the HTTP layer's tests that start outside programs."""

from __future__ import annotations

import pytest
from prod_apps.nginx_support import find_nginx


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    """The nginx binary (installed if it can be); the test is skipped without one."""
    found = find_nginx()
    if found is None:
        pytest.skip("nginx is not installed and cannot be installed here")
    return found
