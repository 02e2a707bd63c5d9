"""The command line: `python -m layer2_prefork [options] script.py [args]`.

Start-up, in this order, so that each failure has its own exit code:

1. parse the options (a mistake: exit 1);
2. set up logging (a log file that cannot be opened: exit 3);
3. lock the pidfile with `fcntl.flock` (held by another instance: exit 2);
   steps 2, 3 and 6 are `serve_command`'s, shared with `python -m layer3_http`;
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
import os
import runpy
import sys
from collections.abc import Sequence
from typing import NoReturn

from . import _server
from ._errors import ExitCode
from ._logging import logger
from ._service import ServerOptions, add_server_options, serve_command

PROGRAM = "python -m layer2_prefork"


class CommandLineError(Exception):
    """A command line the parser does not accept (the layer 3 command line's too)."""


class CommandLineParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` that raises `CommandLineError` instead of exiting.

    The caller prints the message with the usage and picks the exit status.
    """

    def error(self, message: str) -> NoReturn:
        """Raise `CommandLineError` with argparse's message."""
        raise CommandLineError(message)


def parser() -> argparse.ArgumentParser:
    """The option parser (its help is the command's documentation)."""
    cli = CommandLineParser(prog=PROGRAM,
                  usage="%(prog)s [options] script.py [args ...]",
                  description="Run a script that declares pools with listen(), then serve them.")
    add_server_options(cli)
    cli.add_argument("script", nargs="?", help="the Python script that calls listen()")
    cli.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    return cli


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
        print(f"{PROGRAM}: error: {error}", file=sys.stderr)
        return ExitCode.COMMAND_LINE
    if not os.path.isfile(options.script):
        print(f"{PROGRAM}: error: no such script: {options.script}", file=sys.stderr)
        return ExitCode.COMMAND_LINE
    return serve_command(ServerOptions.from_arguments(options), lambda: _serve(options),
                         program=PROGRAM)


def _serve(options: argparse.Namespace) -> int:
    """Run the script, then the master loop if the script did not run it."""
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
