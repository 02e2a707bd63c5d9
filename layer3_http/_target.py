"""What the command line serves and where: the callback and the listen addresses.

Two small parsers for `_cli`, without sockets, and where the loading runs:

* `load_callback` finds the HTTP callback a TARGET names. A TARGET is
  either ``package.module:name`` (imported like any module) or a script
  path, ``path/app.py`` or ``path/app.py:name``. The name defaults to
  ``app``; it may be dotted (``module:App.handle``). A script runs under
  the module name ``__layer3_app__``, so its ``if __name__ ==
  "__main__":`` block does not run and the script can also start a server
  of its own when run directly.
* `parse_listen` turns ``HOST:PORT``, ``[IPv6]:PORT`` or ``unix:PATH``
  into a layer 2 listener.
* `run_in_child` runs a function in a forked process and returns its
  result as that process's exit status.

Where the application is loaded: in each worker, after the fork (the
pool's `prepare`), never in the master. The master checks it once at
start, in a process forked for the purpose (`run_in_child`), so that a
broken application still stops the start with its traceback; then
nothing of the application is in the master's `sys.modules`, and every
worker forked later, after a reload (``SIGUSR2``) for instance, imports
the files as they are then.

Invariant: both parsers raise `ValueError` with a message fit for the
user for anything malformed; only a script or module that fails while
loading raises its own exception.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import runpy
import sys
import traceback
from collections.abc import Callable
from typing import Any

from layer2_prefork import TCP, Local

__all__ = ["DEFAULT_CALLBACK", "load_callback", "parse_listen", "run_in_child"]

DEFAULT_CALLBACK = "app"
"""The callback name used when the TARGET does not give one."""


def _split_target(target: str) -> tuple[str, str]:
    where, colon, name = target.rpartition(":")
    if not colon or "/" in name or name.endswith(".py"):
        return target, DEFAULT_CALLBACK
    return where, name


def load_callback(target: str) -> Callable[[Any], object]:
    """Return the callback `target` names, importing or running what it needs.

    Args:
        target: ``module:name``, ``script.py`` or ``script.py:name``.

    Raises:
        ValueError: The module or script does not exist, or it has no
            callable of that name.
        Exception: Whatever the module or script raises while it loads.

    Examples:
        >>> load_callback("os.path:join") is os.path.join
        True
    """
    where, name = _split_target(target)
    importlib.invalidate_caches()  # files written since the last look are found
    if where.endswith(".py") or os.sep in where or os.path.isfile(where):
        if not os.path.isfile(where):
            raise ValueError(f"no such script: {where}")
        path = os.path.abspath(where)
        sys.path.insert(0, os.path.dirname(path))
        namespace: dict[str, Any] = runpy.run_path(path, run_name="__layer3_app__")
        found: object = namespace.get(name.split(".")[0])
        rest = name.split(".")[1:]
    else:
        try:
            found = importlib.import_module(where)
        except ModuleNotFoundError as error:
            if error.name is not None and where.startswith(error.name):
                raise ValueError(f"no such module: {where}") from None
            raise
        rest = name.split(".")
    for part in rest:
        found = getattr(found, part, None)
    if found is None or not callable(found):
        raise ValueError(f"{where} has no callable {name!r} (a function taking the request)")
    return found


def run_in_child(function: Callable[[], int]) -> int:
    """Run `function` in a forked process; return what it returned (its exit status).

    Whatever the function imports stays in the child: the caller's
    `sys.modules` is as before. An exception it lets out is printed, and
    counts as status 1.

    Examples:
        >>> run_in_child(lambda: 3), "json.tool" in sys.modules
        (3, False)
        >>> run_in_child(lambda: int(bool(__import__("json.tool"))) + 4), "json.tool" in sys.modules
        (5, False)
    """
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = function()
        except BaseException:
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def parse_listen(text: str) -> TCP | Local:
    """Turn a ``--listen`` value into a listener.

    Raises:
        ValueError: The value is not ``HOST:PORT``, ``[IPv6]:PORT`` or ``unix:PATH``.

    Examples:
        >>> parse_listen("127.0.0.1:8000")
        TCP(host='127.0.0.1', port=8000)
        >>> parse_listen("[::1]:0")
        TCP(host='::1', port=0)
        >>> parse_listen("unix:/tmp/app.sock")
        Local(path='/tmp/app.sock')
    """
    if text.startswith("unix:"):
        return Local(text[len("unix:"):])
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit():
        raise ValueError(f"--listen wants HOST:PORT, [IPv6]:PORT or unix:PATH, not {text!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return TCP(host or "::", int(port))
