"""Fixtures shared by every layer's tests."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest


@pytest.fixture
def open_fds() -> Callable[[], int]:
    """Return a function that counts this process's open file descriptors."""

    def count() -> int:
        return len(os.listdir("/proc/self/fd"))

    return count
