"""Running a server as a command: the options and start-up steps every front end shares.

`python -m layer2_prefork` and `python -m layer3_http` take the same server
options and start the same way; a program of your own that serves pools
can do the same with three public names::

    cli = argparse.ArgumentParser()
    add_server_options(cli)                    # -b -d -l -p -s -f -i -g ...
    arguments = cli.parse_args()

    def start() -> int:
        listen(TCP("127.0.0.1", 8080), connect=handle)
        return run()

    sys.exit(serve_command(ServerOptions.from_arguments(arguments), start))

`serve_command` goes through the start-up in a fixed order, so that each
failure has its own exit code (`ExitCode`):

1. set up logging (a log file that cannot be opened: exit 3);
2. lock the pidfile with `fcntl.flock` (held by another instance: exit 2);
3. call `start()`, which declares the pools and calls `run()`; right
   before the first fork, `run()` detaches (`-b`; the foreground parent
   exits 0 once the detached master has written its pidfile) or writes
   the pidfile;
4. on the way out, remove the pidfile and flush the logs.

Invariants: the pidfile is removed only by the process that wrote it
(never by the detached parent, never by a worker); workers do not keep the
pidfile's descriptor open.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from . import _server
from ._errors import ExitCode
from ._logging import FACILITIES, LEVELS, configure, logger
from .master._loop import Settings
from .master._upgrade import PIDFILE_VARIABLE

__all__ = ["AlreadyRunning", "Pidfile", "ServerOptions", "add_server_options", "detach",
           "serve_command"]


class AlreadyRunning(Exception):
    """The pidfile is locked by another instance."""


def seconds(text: str) -> float:
    """Parse a number of seconds >= 0 (an `argparse` type).

    Raises:
        ValueError: Not a number, or negative.
    """
    value = float(text)
    if not value >= 0:
        raise ValueError(text)
    return value


def add_server_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add the server options of `python -m layer2_prefork` to a parser or argument group.

    They are `-b/--background`, `-d/--debug`, `-l/--logfile` (also
    spelled `--error-log`; `-` is stderr), `--log-level`,
    `-p/--pidfile`, `-s/--stats`, `-f/--logfacility`,
    `-i/--logident` and `-g/--graceful-timeout`. Read them back with
    `ServerOptions.from_arguments`.

    Args:
        parser: Where to add them.
    """
    parser.add_argument("-b", "--background", action="store_true",
                        help="detach from the terminal once the server is ready to start")
    parser.add_argument("-d", "--debug", action="store_true", help="log every control message")
    parser.add_argument("-l", "--logfile", "--error-log", metavar="FILE", dest="logfile",
                        help="append the (error) log to FILE, reopened after rotation; "
                             "'-' for stderr")
    parser.add_argument("--log-level", metavar="LEVEL", choices=LEVELS,
                        help="log from this level on: " + ", ".join(LEVELS) + " (info)")
    parser.add_argument("-p", "--pidfile", metavar="FILE",
                        help="write the master's PID to FILE, locked; a second instance exits 2")
    parser.add_argument("-s", "--stats", action="store_true",
                        help="log each pool's worker counts whenever they change")
    parser.add_argument("-f", "--logfacility", metavar="NAME", choices=FACILITIES,
                        help="log to syslog with this facility (e.g. daemon, local0)")
    parser.add_argument("-i", "--logident", metavar="NAME", help="log to syslog with this ident")
    parser.add_argument("-g", "--graceful-timeout", metavar="SECONDS", type=seconds,
                        default=30.0,
                        help="after SIGTERM, kill workers still busy after SECONDS (30)")


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """The server options of a command line (see `add_server_options`).

    Examples:
        >>> ServerOptions(pidfile="/run/app.pid").graceful_timeout
        30.0
    """

    background: bool = False
    """Detach from the terminal before the first fork."""
    debug: bool = False
    """Log every control message (level `DEBUG`)."""
    logfile: str | None = None
    """Append the log to this file; `"-"` for stderr."""
    pidfile: str | None = None
    """Write the master's PID to this file and hold a lock on it."""
    stats: bool = False
    """Log each pool's worker counts whenever they change."""
    logfacility: str | None = None
    """Log to syslog with this facility."""
    logident: str | None = None
    """Log to syslog with this identifier."""
    graceful_timeout: float = 30.0
    """Seconds a graceful stop waits for busy workers."""
    log_level: str | None = None
    """The lowest level logged (default `info`, or `debug` with `debug`)."""

    @classmethod
    def from_arguments(cls, arguments: argparse.Namespace) -> ServerOptions:
        """Take the options `add_server_options` added from parsed arguments."""
        return cls(arguments.background, arguments.debug, arguments.logfile,
                   arguments.pidfile, arguments.stats, arguments.logfacility,
                   arguments.logident, arguments.graceful_timeout, arguments.log_level)


class Pidfile:
    """A pidfile held with an exclusive `flock` for as long as the server runs.

    The lock belongs to the open file, so it survives the fork that detaches
    the server, and the kernel drops it when the holder dies, however it dies.

    Args:
        path: The file; created if missing.

    Raises:
        AlreadyRunning: If another process holds the lock.
        OSError: If the file cannot be opened.
    """

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.fd = _passed_pidfile(self.path)
        self.passed = self.fd >= 0
        """Passed on by the old master of an upgrade, which still names itself in it."""
        if self.fd < 0:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self.owner = 0
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self.fd, 32, 0).decode(errors="replace").strip()
            os.close(self.fd)
            raise AlreadyRunning(f"already running (pidfile {path} held by PID {holder})") from None

    def write(self) -> None:
        """Write this process's PID into the file; this process now owns it."""
        self.owner = os.getpid()
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{self.owner}\n".encode(), 0)

    def remove(self) -> None:
        """Remove the file (while still holding the lock) and close it.

        Not if it names another process by now: the new master of an
        upgrade, which holds the same lock, wrote its PID there.
        """
        with contextlib.suppress(OSError):
            written = os.pread(self.fd, 32, 0).decode(errors="replace").strip()
            taken_over = self.owner != 0 and written not in ("", str(self.owner))
            not_ours = self.passed and self.owner == 0  # a new master that never started
            if not (taken_over or not_ours) and os.path.samestat(os.stat(self.path),
                                                                 os.fstat(self.fd)):
                os.unlink(self.path)
        os.close(self.fd)


def _passed_pidfile(path: str) -> int:
    """The pidfile's descriptor an old master passed in an upgrade (locked), or -1."""
    text = os.environ.pop(PIDFILE_VARIABLE, "")
    if not text.isdigit():
        return -1
    fd = int(text)
    try:
        if not os.path.samestat(os.fstat(fd), os.stat(path)):
            os.close(fd)
            return -1
        os.set_inheritable(fd, False)
    except OSError:
        return -1
    return fd


def detach(pidfile: Pidfile | None) -> None:
    """Become a background process; the foreground parent exits once we are ready.

    The parent waits on a pipe: it exits 0 when the detached child has made
    itself a session leader, written the pidfile and redirected its standard
    streams to `/dev/null`, and 3 if the child died before that.
    """
    ready_read, ready_write = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    if os.fork() > 0:
        os.close(ready_write)
        word = os.read(ready_read, 1)
        os._exit(ExitCode.STOP if word == b"1" else ExitCode.STARTUP_ERROR)
    os.close(ready_read)
    os.setsid()
    if pidfile is not None:
        pidfile.write()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.write(ready_write, b"1")
    os.close(ready_write)


def serve_command(options: ServerOptions, start: Callable[[], int], *,
                  program: str = "python -m layer2_prefork") -> int:
    """Set up logging and the pidfile, call `start()`, clean up; return the exit code.

    `start()` declares the pools with `listen()` and calls `run()`; its
    return value is the exit code. Within it, `run()` uses the options'
    `graceful_timeout` and `stats` as its defaults, and detaches or writes
    the pidfile right before the first fork.

    Args:
        options: The server options.
        start: Declares the pools and runs them; returns an `ExitCode`.
        program: The command's name, for error messages on stderr.

    Returns:
        `ExitCode.STARTUP_ERROR` if the log cannot be opened,
        `ExitCode.ALREADY_RUNNING` if the pidfile is locked, else what
        `start()` returned.
    """
    try:
        configure(debug=options.debug, logfile=options.logfile, facility=options.logfacility,
                  ident=options.logident, background=options.background,
                  level=options.log_level)
    except (OSError, ValueError) as error:
        print(f"{program}: error: cannot open the log: {error}", file=sys.stderr)
        return ExitCode.STARTUP_ERROR
    try:
        pidfile = Pidfile(options.pidfile) if options.pidfile else None
    except AlreadyRunning as error:
        logger.error("%s", error)
        return ExitCode.ALREADY_RUNNING
    except OSError as error:
        logger.error("cannot open the pidfile: %s", error)
        return ExitCode.STARTUP_ERROR
    try:
        def before_start() -> None:
            if options.background:
                detach(pidfile)
            elif pidfile is not None:
                pidfile.write()

        keep_closed = (pidfile.fd,) if pidfile is not None else ()
        _server.configure_run(Settings(options.graceful_timeout, options.stats, keep_closed,
                                       pidfile.fd if pidfile is not None else None),
                              before_start)
        return start()
    finally:
        if pidfile is not None and pidfile.owner in (0, os.getpid()):
            pidfile.remove()
        logging.shutdown()
