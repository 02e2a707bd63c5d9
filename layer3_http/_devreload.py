"""The development reloader of ``--reload``: watch the application's files, reload on a change.

`start_dev_reloader` starts layer 2's file watcher (`start_watcher`, a
process of its own that polls `stat`) on the application's source
files: the modules it loads from files under its own folder, found by
importing it once in a forked probe (`application_files`), so the
standard library and installed packages are not watched. When files
change, the watcher says which, compiles them, and:

* if one has a syntax error, prints it (file, line, caret) and does not
  reload: the old workers keep serving the old code until the file is
  fixed;
* otherwise sends ``SIGUSR2`` to the master, the graceful reload: new
  workers import the new code, then the old ones leave.

Every line goes to stderr, prefixed with ``reload:``. After each change
the probe runs again, so a module the new code imports is watched too.

Moonbridge: none (werkzeug's stat reloader and gunicorn's ``--reload``
do the same for their servers).
"""

from __future__ import annotations

import os
import signal
import sys
import sysconfig
import traceback
from collections.abc import Callable, Iterable, Sequence

from layer2_prefork import start_watcher

__all__ = ["application_files", "compile_errors", "start_dev_reloader"]

PREFIX = "reload:"


def application_files(load: Callable[[], object], folder: str,
                      also: Iterable[str] = ()) -> list[str]:
    """The source files of the modules `load()` imports from under `folder` (in a probe).

    The probe is a forked child, so what it imports stays there. If the
    application fails to load, only `also` is returned (the watcher keeps
    watching what it had).

    Args:
        load: Imports the application (the command line's loader).
        folder: The application's folder.
        also: Files watched in any case (a script run by path is no module).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the probe
        os.close(read_end)
        try:
            load()
            found = _module_files(folder)
            os.write(write_end, "\n".join(found).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    text = b"".join(chunks).decode()
    return sorted({*also, *(line for line in text.split("\n") if line)})


def _module_files(folder: str) -> list[str]:
    """The files of the loaded modules that lie under `folder`, not in Python's own paths."""
    root = os.path.join(os.path.realpath(folder), "")
    excluded = {os.path.join(os.path.realpath(path), "") for path in (
        sys.prefix, sys.base_prefix, sysconfig.get_paths()["purelib"],
        sysconfig.get_paths()["stdlib"])}
    found = []
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or not path.endswith(".py"):
            continue
        real = os.path.realpath(path)
        if real.startswith(root) and not any(real.startswith(place) for place in excluded):
            found.append(real)
    return found


def compile_errors(paths: Iterable[str]) -> dict[str, str]:
    """Compile each file; the syntax errors, formatted as Python shows them, by file.

    Examples:
        >>> compile_errors([])
        {}
    """
    errors = {}
    for path in paths:
        try:
            with open(path, "rb") as source:
                compile(source.read(), path, "exec", dont_inherit=True)
        except FileNotFoundError:
            continue  # gone: the reload tells whether the application still loads
        except (SyntaxError, ValueError) as error:
            errors[path] = "".join(traceback.format_exception_only(error))
    return errors


def start_dev_reloader(master: int, files: Callable[[], Sequence[str]]) -> int:
    """Watch `files()` and reload the server of `master` on each change that compiles.

    Args:
        master: The master's PID (where ``SIGUSR2`` goes).
        files: Returns the files to watch (see `application_files`).

    Returns:
        The watcher's PID.
    """
    broken: set[str] = set()

    def changed(paths: list[str]) -> None:
        say(f"{', '.join(_short(path) for path in paths)} changed")
        errors = compile_errors(sorted(broken | set(paths)))
        broken.clear()
        broken.update(errors)
        for text in errors.values():
            sys.stderr.write(text)
        if errors:
            say("not reloading until the error is fixed; the old code goes on serving")
            return
        os.kill(master, signal.SIGUSR2)
        say("reloading (SIGUSR2)")

    def started(paths: Sequence[str]) -> None:
        say(f"watching {len(paths)} file(s) of the application for changes")

    return start_watcher(files, changed, on_start=started)


def say(text: str) -> None:
    """One line of the reloader, on stderr."""
    sys.stderr.write(f"{PREFIX} {text}\n")
    sys.stderr.flush()


def _short(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
