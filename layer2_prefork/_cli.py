"""The command line: `python -m layer2_prefork [options] script.py [args]`.

Start-up, in this order, so that each failure has its own exit code:

1. parse the options (a mistake: exit 1);
2. set up logging (a log file that cannot be opened: exit 3);
3. lock the pidfile with `fcntl.flock` (held by another instance: exit 2);
4. run the script with `sys.argv = [script, *args]` (it calls
   `listen()`, which binds; any error: exit 3);
5. run the master loop, unless the script did; with `-b`, detach first
   (the parent exits 0 once the detached master has written its pidfile);
6. exit 0 after a stop, 4 if the master loop failed. The pidfile and
   Unix socket files are removed on the way out.

A script may call `run()` itself (so that it also works
as `python script.py`); under the command line that call uses the
command line's options.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import logging
import os
import runpy
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import _server
from ._errors import ExitCode
from ._logging import FACILITIES, configure, logger
from ._master import Settings


class CommandLineError(Exception):
    """A command line the parser does not accept."""


class AlreadyRunning(Exception):
    """The pidfile is locked by another instance."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CommandLineError(message)


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise ValueError(text)
    return value


def parser() -> argparse.ArgumentParser:
    """The option parser (its help is the command's documentation)."""
    cli = _Parser(prog="python -m layer2_prefork",
                  usage="%(prog)s [options] script.py [args ...]",
                  description="Run a script that declares pools with listen(), then serve them.")
    cli.add_argument("-b", "--background", action="store_true",
                     help="detach from the terminal once the script has run")
    cli.add_argument("-d", "--debug", action="store_true", help="log every control message")
    cli.add_argument("-l", "--logfile", metavar="FILE", help="append the log to FILE")
    cli.add_argument("-p", "--pidfile", metavar="FILE",
                     help="write the master's PID to FILE, locked; a second instance exits 2")
    cli.add_argument("-s", "--stats", action="store_true",
                     help="log each pool's worker counts whenever they change")
    cli.add_argument("-f", "--logfacility", metavar="NAME", choices=FACILITIES,
                     help="log to syslog with this facility (e.g. daemon, local0)")
    cli.add_argument("-i", "--logident", metavar="NAME", help="log to syslog with this ident")
    cli.add_argument("-g", "--graceful-timeout", metavar="SECONDS", type=_seconds, default=30.0,
                     help="after SIGTERM, kill workers still busy after SECONDS (default 30)")
    cli.add_argument("script", nargs="?", help="the Python script that calls listen()")
    cli.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    return cli


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
        """Remove the file (while still holding the lock) and close it."""
        with contextlib.suppress(OSError):
            if os.path.samestat(os.stat(self.path), os.fstat(self.fd)):
                os.unlink(self.path)
        os.close(self.fd)


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Args:
        argv: The arguments after the program name (default `sys.argv[1:]`).

    Returns:
        An `ExitCode` value.
    """
    try:
        options = parser().parse_args(argv)
        if options.script is None:
            raise CommandLineError("a script is required")
    except CommandLineError as error:
        parser().print_usage(sys.stderr)
        print(f"python -m layer2_prefork: error: {error}", file=sys.stderr)
        return ExitCode.COMMAND_LINE
    if not os.path.isfile(options.script):
        print(f"python -m layer2_prefork: error: no such script: {options.script}",
              file=sys.stderr)
        return ExitCode.COMMAND_LINE
    try:
        configure(debug=options.debug, logfile=options.logfile, facility=options.logfacility,
                  ident=options.logident, background=options.background)
    except OSError as error:
        print(f"python -m layer2_prefork: cannot open the log: {error}", file=sys.stderr)
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
        return _serve(options, pidfile)
    finally:
        if pidfile is not None and pidfile.owner in (0, os.getpid()):
            pidfile.remove()
        logging.shutdown()


def _serve(options: argparse.Namespace, pidfile: Pidfile | None) -> int:
    """Run the script, then the master loop if the script did not run it."""

    def before_start() -> None:
        if options.background:
            detach(pidfile)
        elif pidfile is not None:
            pidfile.write()

    keep_closed = (pidfile.fd,) if pidfile is not None else ()
    _server.configure_run(Settings(options.graceful_timeout, options.stats, keep_closed),
                          before_start)
    sys.argv = [options.script, *options.args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(options.script)))
    try:
        runpy.run_path(options.script, run_name="__main__")
    except SystemExit as request:
        code = request.code
        if _server.last_exit() is not None:
            return code if isinstance(code, int) else int(code is not None)
        return ExitCode.STOP if code in (None, 0) else ExitCode.STARTUP_ERROR
    except BaseException:
        logger.exception("the script %s failed", options.script)
        return ExitCode.STARTUP_ERROR
    last = _server.last_exit()
    if last is not None:
        return last
    try:
        return _server.run()
    except Exception as error:
        logger.error("cannot start: %s", error)
        return ExitCode.STARTUP_ERROR
