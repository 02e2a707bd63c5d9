"""The Examples sections of layer2_prefork's docstrings run and hold.

They run in a child process: the `timeout()` examples arm the process's
real-time timer, which must not touch the test runner's own.
"""

from __future__ import annotations

import subprocess
import sys

from support import ROOT

RUN = """
import doctest, importlib, pkgutil, sys
import layer2_prefork
failed = tested = 0
for module in pkgutil.walk_packages(layer2_prefork.__path__, "layer2_prefork."):
    if module.name.endswith(".__main__"):
        continue
    result = doctest.testmod(importlib.import_module(module.name))
    failed, tested = failed + result.failed, tested + result.attempted
print(f"tested {tested} failed {failed}")
sys.exit(1 if failed or tested < 20 else 0)
"""


def test_docstring_examples() -> None:
    done = subprocess.run([sys.executable, "-c", RUN], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
