"""Upgrading the server without a gap: a new master takes over the listening sockets.

`SIGURG` to the master starts an upgrade, as `USR2` does for gunicorn
and nginx (here `SIGUSR2` reloads the application and `SIGHUP` is the
original's fast stop):

1. The old master forks a child that puts every listening socket at
   descriptors 3, 4, ... and executes the command line the server was
   started with (`sys.orig_argv`), so the new master runs the code now on
   disk, from the start. The sockets travel as systemd passes them
   (``LISTEN_FDS``, see `_activation`): systemd's own under their names,
   the ones the old master bound under their listener's address, which
   `bind()` adopts instead of binding anew. The pidfile's descriptor
   (its lock) goes along, and the write end of a pipe to the old master.
2. The new master starts like any other. Once every pool has an idle
   worker, it writes its PID into the pipe (`Predecessor`).
3. The old master reads it (`Successor`), tells systemd the new main PID
   (``MAINPID=``, when ``NOTIFY_SOCKET`` is set), and stops gracefully
   without shutting the sockets down: its busy workers finish, its idle
   ones leave, the new workers go on accepting on the same sockets.

Nothing is refused at any time: the sockets never close, and both
masters' workers accept on them while the old ones finish. If the new
master ends before it said it serves (the new code does not start), the
old master logs an error and goes on serving.

Invariants: only a running master upgrades, one upgrade at a time; the
new master never inherits anything else of the old one (the child
executes at once, every other descriptor is close-on-exec); workers close
the pipe, so its end of file means the new master is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import sys
from collections.abc import Sequence

from .._activation import LISTEN_FDS_START, UPGRADE_PREFIX, listen_environment, listener_key
from .._config import TCP, Inherited, Local
from ._pool_runtime import PoolRuntime

__all__ = ["PIDFILE_VARIABLE", "READY_VARIABLE", "UPGRADE_SIGNAL", "Predecessor", "Successor",
           "notify", "reclaim_pidfile"]

UPGRADE_SIGNAL = signal.SIGURG
"""The signal that upgrades the server: ignored by default, so an older server that does
not know it ignores it too, and no terminal or kernel event sends it to a server."""
READY_VARIABLE = "MOONBRIDGE_UPGRADE_FD"
"""The environment variable naming the new master's end of the pipe to the old one."""
PIDFILE_VARIABLE = "MOONBRIDGE_PIDFILE_FD"
"""The environment variable naming the pidfile's descriptor, locked, for the new master."""


class Successor:
    """The new master, as the old master sees it while the upgrade is under way.

    Args:
        pid: The child that executes the new master.
        ready: The read end of the pipe the new master writes its PID to.
    """

    def __init__(self, pid: int, ready: int) -> None:
        self.pid = pid
        self.ready = ready
        self.children = [pid]
        """Children to reap: the new master, or (with ``-b``) the parent it detached from."""
        self._text = b""

    @classmethod
    def start(cls, pools: Sequence[PoolRuntime], pidfile: int | None) -> Successor:
        """Fork and execute the new master with the pools' listening sockets.

        Args:
            pools: The master's pools (every listening socket is passed on).
            pidfile: The pidfile's descriptor, if any.

        Raises:
            OSError: If the pipe or the fork fails.
        """
        names, fds = [], []
        for pool in pools:
            for listener, bound in zip(pool.spec.listeners, pool.bound, strict=True):
                if bound is None:
                    continue
                if isinstance(listener, Inherited):
                    names.append(listener.name)
                elif isinstance(listener, TCP | Local):
                    names.append(UPGRADE_PREFIX + listener_key(listener))
                else:  # pragma: no cover - timers have no socket
                    continue
                fds.append(bound.sock.fileno())
        read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            pid = os.fork()
        except OSError:
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:  # pragma: no cover - the child executes or exits at once
            _execute(names, fds, write_end, pidfile)
        os.close(write_end)
        return cls(pid, read_end)

    def read(self) -> int | None:
        """Read what the new master wrote; its PID once whole, 0 if it ended without one.

        Returns:
            `None` while the new master starts; 0 if it ended (or wrote
            garbage) before it served; else its PID.
        """
        try:
            data = os.read(self.ready, 64)
        except BlockingIOError:
            return None
        self._text += data
        if data and not self._text.endswith(b"\n"):
            return None
        text = self._text.strip()
        return int(text) if text.isdigit() and int(text) > 0 else 0

    def reap(self) -> None:
        """Collect the children that have ended (the new master's start, or its detaching)."""
        for pid in list(self.children):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == 0:
                    continue
            self.children.remove(pid)

    def close(self) -> None:
        """Close the pipe (done with, or in a new worker)."""
        with contextlib.suppress(OSError):
            os.close(self.ready)

    @staticmethod
    def keep_listening(pools: Sequence[PoolRuntime]) -> None:
        """From now on, closing a listener only closes this master's copy.

        The new master listens on the same sockets: no `shutdown` (which
        would stop its workers too), and a Unix socket file stays in place.
        """
        for pool in pools:
            for bound in pool.bound:
                if bound is not None:
                    bound.inherited = True
                    bound.identity = None


def _execute(names: Sequence[str], fds: Sequence[int], ready: int,
             pidfile: int | None) -> None:  # pragma: no cover - runs in the child
    """In the forked child: the sockets at 3, 4, ..., nothing else open, become the new master.

    Descriptors a master received from its workers (connections it holds)
    are not close-on-exec (``SCM_RIGHTS`` leaves them inheritable): all but
    the passed ones are closed, or the new master would keep a client's
    connection open that the old one closed.
    """
    try:
        passed = [*fds, ready] + ([pidfile] if pidfile is not None else [])
        floor = LISTEN_FDS_START + len(passed)  # above the places: nothing is overwritten
        moved = [fcntl.fcntl(fd, fcntl.F_DUPFD, floor) for fd in passed]  # not close-on-exec
        for index, fd in enumerate(moved):
            os.dup2(fd, LISTEN_FDS_START + index)
        os.closerange(floor, os.sysconf("SC_OPEN_MAX"))
        environment = dict(os.environ)
        environment[READY_VARIABLE] = str(LISTEN_FDS_START + len(fds))
        if pidfile is not None:
            environment[PIDFILE_VARIABLE] = str(LISTEN_FDS_START + len(fds) + 1)
        environment.update(listen_environment(names, os.getpid()))
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environment)
    finally:
        os._exit(127)


class Predecessor:
    """The old master, as a new master started by an upgrade sees it: a pipe to write to.

    Args:
        fd: The write end of the pipe.
    """

    def __init__(self, fd: int) -> None:
        self.fd = fd

    @classmethod
    def from_environment(cls) -> Predecessor | None:
        """The pipe the old master passed (`READY_VARIABLE`, removed), or `None`."""
        text = os.environ.pop(READY_VARIABLE, "")
        if not text.isdigit():
            return None
        try:
            os.set_inheritable(int(text), False)
        except OSError:
            return None
        return cls(int(text))

    def announce(self) -> None:
        """Say that this master serves: the old one stops (its end of the pipe gets the PID)."""
        with contextlib.suppress(OSError):
            os.write(self.fd, f"{os.getpid()}\n".encode())
        self.close()

    def close(self) -> None:
        """Close the pipe (announced, or in a new worker)."""
        with contextlib.suppress(OSError):
            os.close(self.fd)


def reclaim_pidfile(fd: int | None) -> None:
    """After a failed upgrade: this master's PID in the pidfile again (the new one wrote its)."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)


def notify(message: str) -> bool:
    """Send one notification to the service manager (``sd_notify(3)``); whether one was sent.

    Examples:
        >>> os.environ.get("NOTIFY_SOCKET") or notify("STATUS=testing")
        False
    """
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True
