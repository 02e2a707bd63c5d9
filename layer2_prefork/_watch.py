"""Watching files for changes, the way werkzeug's stat reloader does: poll `stat`.

`Snapshot` records each file's modification time and size (or that it is
missing); `Snapshot.changed` compares two. `start_watcher` forks a small
process that takes a snapshot every `interval` seconds and calls back
with the files that changed. It runs apart from the master, whose loop
stays single-threaded and never waits on a file, and it ends by itself
once the process that started it is gone (or on ``SIGINT``, which a
terminal's Ctrl-C sends it with the server).

Invariants: the watcher keeps no descriptor of the server open but its
standard streams (a listening socket it kept would outlive the server);
a file that vanishes counts as changed, and so does one that comes back.

Moonbridge: none (a development aid, as werkzeug's and gunicorn's
``--reload``).
"""

from __future__ import annotations

import os
import signal
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["Snapshot", "start_watcher"]

INTERVAL = 0.5
"""Seconds between two looks at the files (werkzeug's stat reloader: 1 s)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What `stat` said of each watched file: (mtime in ns, size), or `None` if missing.

    Examples:
        >>> missing = Snapshot.take(["/no/such/file"])
        >>> missing.seen, missing.changed(Snapshot({"/no/such/file": (1, 0)}))
        ({'/no/such/file': None}, ['/no/such/file'])
    """

    seen: dict[str, tuple[int, int] | None] = field(default_factory=dict)

    @classmethod
    def take(cls, paths: Iterable[str]) -> Snapshot:
        """Look at every file now."""
        seen: dict[str, tuple[int, int] | None] = {}
        for path in paths:
            try:
                info = os.stat(path)
            except OSError:
                seen[path] = None
            else:
                seen[path] = (info.st_mtime_ns, info.st_size)
        return cls(seen)

    def changed(self, later: Snapshot) -> list[str]:
        """The files whose state differs between this snapshot and `later`, sorted."""
        return sorted(path for path in self.seen.keys() | later.seen.keys()
                      if self.seen.get(path) != later.seen.get(path))


def start_watcher(files: Callable[[], Sequence[str]],
                  on_change: Callable[[list[str]], object],
                  interval: float = INTERVAL,
                  on_start: Callable[[Sequence[str]], object] | None = None) -> int:
    """Fork a process that calls `on_change(paths)` whenever watched files change.

    Args:
        files: Returns the files to watch; called at the start and again
            after each `on_change`, so the list can grow (a new module).
        on_change: Called in the watcher with the changed files.
        interval: Seconds between two looks.
        on_start: Called in the watcher with the files once it watches them
            (a change from then on is seen).

    Returns:
        The watcher's PID (the caller's child).
    """
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    try:  # pragma: no cover - runs in the forked watcher
        signal.signal(signal.SIGINT, lambda number, frame: os._exit(0))
        signal.signal(signal.SIGTERM, lambda number, frame: os._exit(0))
        for number in (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        signal.set_wakeup_fd(-1)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        _watch(parent, files, on_change, interval, on_start)
    finally:
        os._exit(0)


def _watch(parent: int, files: Callable[[], Sequence[str]],
           on_change: Callable[[list[str]], object], interval: float,
           on_start: Callable[[Sequence[str]], object] | None,
           ) -> None:  # pragma: no cover - runs in the forked watcher
    """Look every `interval` seconds until the parent is gone."""
    watched = list(files())
    before = Snapshot.take(watched)
    if on_start is not None:
        on_start(watched)
    while os.getppid() == parent:
        time.sleep(interval)  # the watcher's own pace; nothing waits on it
        now = Snapshot.take(watched)
        changed = before.changed(now)
        if changed:
            try:
                on_change(changed)
            except Exception:
                traceback.print_exc()  # the watcher goes on watching
            added = sorted(set(files()) - set(watched))
            watched += added  # what changed since `now` was taken shows next round
            now = Snapshot({**now.seen, **Snapshot.take(added).seen})
        before = now
