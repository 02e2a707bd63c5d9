"""The command line: ``python -m layer3_http [options] TARGET`` or ``--static DIR``.

It serves an HTTP callback with a pool of pre-forked workers, in this order
(each failure has the exit code of the layer 2 command line):

1. parse the options and build the `Options` (a mistake: exit 1);
2. set up logging and lock the pidfile, as ``python -m layer2_prefork``
   does and with the same flags (``-b -d -l -p -s -f -i -g``);
   a pidfile held by another instance: exit 2;
3. load the callback (see `_target`; a script that fails: exit 3) or, with
   ``--static DIR``, make a `static_handler`;
4. bind every ``--listen`` address (default ``127.0.0.1:8000``; a bind
   error: exit 3) and print one line per listener: ``listening on port N``
   when the port was 0 (the kernel chose it), otherwise the URL;
5. run the master loop until the server is stopped (``SIGTERM``: exit 0).

Moonbridge: ``moonbridge`` started a Lua script that called
``listen{...}`` with ``http.generate_handler``; here the command line does
both.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from layer2_prefork import TCP, ExitCode, Local, listen, run
from layer2_prefork._cli import AlreadyRunning, Pidfile, detach
from layer2_prefork._logging import FACILITIES, configure, logger
from layer2_prefork._master import Settings
from layer2_prefork._server import configure_run

from ._handler import generate_handler
from ._options import Options
from ._static import static_handler
from ._target import DEFAULT_CALLBACK, load_callback, parse_listen

__all__ = ["main", "parser"]

PROGRAM = "python -m layer3_http"
_SIZES = ("request_header_size_limit", "request_body_size_limit", "chunk_size",
          "maximum_input_chunk_size", "minimum_output_chunk_size", "drain_size_limit")
_TIMEOUTS = ("idle_timeout", "request_header_timeout", "stall_timeout", "response_timeout",
             "drain_timeout")


class CommandLineError(Exception):
    """A command line the parser does not accept."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CommandLineError(message)


def _seconds_or_none(text: str) -> float | None:
    if text.lower() in ("none", "off"):
        return None
    return float(text)


def _listener(text: str) -> TCP | Local:
    try:
        return parse_listen(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parser() -> argparse.ArgumentParser:
    """The option parser (its help is the command's documentation)."""
    cli = _Parser(prog=PROGRAM, description="Serve an HTTP callback (module:name or "
                  f"script.py[:name], default name {DEFAULT_CALLBACK!r}) or a folder.")
    cli.add_argument("target", nargs="?", help="module:callback, script.py or script.py:callback")
    cli.add_argument("--static", metavar="DIR", help="serve the files of DIR instead of a TARGET")
    cli.add_argument("--listen", metavar="ADDRESS", action="append", type=_listener,
                     help="HOST:PORT, [IPv6]:PORT or unix:PATH (repeatable; "
                          "default 127.0.0.1:8000; port 0 = any free port)")
    pool = cli.add_argument_group("workers")
    pool.add_argument("--workers", metavar="N", type=int,
                      help="a fixed pool of N workers (sets the three options below)")
    pool.add_argument("--pre-fork", metavar="N", type=int, help="idle workers kept ready (1)")
    pool.add_argument("--min-fork", metavar="N", type=int, help="fewest workers (2)")
    pool.add_argument("--max-fork", metavar="N", type=int, help="most workers (16)")
    http = cli.add_argument_group("HTTP limits (bytes) and timeouts (seconds, or 'none')")
    for name in _SIZES:
        http.add_argument("--" + name.replace("_", "-"), metavar="BYTES", type=int)
    for name in _TIMEOUTS:
        http.add_argument("--" + name.replace("_", "-"), metavar="SECONDS",
                          type=_seconds_or_none, default=argparse.SUPPRESS)
    http.add_argument("--static-header", metavar="'NAME: VALUE'", action="append", default=[],
                      help="a header sent with every response (repeatable)")
    server = cli.add_argument_group("server (as python -m layer2_prefork)")
    server.add_argument("-b", "--background", action="store_true",
                        help="detach from the terminal once listening")
    server.add_argument("-d", "--debug", action="store_true", help="log every control message")
    server.add_argument("-l", "--logfile", metavar="FILE", help="append the log to FILE")
    server.add_argument("-p", "--pidfile", metavar="FILE",
                        help="write the master's PID to FILE, locked; a second instance exits 2")
    server.add_argument("-s", "--stats", action="store_true",
                        help="log each pool's worker counts whenever they change")
    server.add_argument("-f", "--logfacility", metavar="NAME", choices=FACILITIES,
                        help="log to syslog with this facility")
    server.add_argument("-i", "--logident", metavar="NAME", help="log to syslog with this ident")
    server.add_argument("-g", "--graceful-timeout", metavar="SECONDS", type=float, default=30.0,
                        help="after SIGTERM, kill workers still busy after SECONDS (30)")
    return cli


def http_options(arguments: argparse.Namespace) -> Options:
    """Build the `Options` from the parsed command line.

    Raises:
        ValueError: A value is wrong (the message names the option).
    """
    values: dict[str, object] = {}
    for name in _SIZES:
        if getattr(arguments, name) is not None:
            values[name] = getattr(arguments, name)
    for name in _TIMEOUTS:
        if hasattr(arguments, name):
            values[name] = getattr(arguments, name)
    if arguments.static_header:
        values["static_headers"] = arguments.static_header
    return Options().replace(**values)


def pool_sizes(arguments: argparse.Namespace) -> dict[str, int]:
    """The ``listen`` sizing options the command line sets."""
    if arguments.workers is not None:
        return dict.fromkeys(("pre_fork", "min_fork", "max_fork"), arguments.workers)
    sizes = {"pre_fork": arguments.pre_fork, "min_fork": arguments.min_fork,
             "max_fork": arguments.max_fork}
    return {name: value for name, value in sizes.items() if value is not None}


def _fail(message: str, code: ExitCode) -> int:
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    Args:
        argv: The arguments after the program name (default ``sys.argv[1:]``).
    """
    try:
        arguments = parser().parse_args(argv)
        if (arguments.target is None) == (arguments.static is None):
            raise CommandLineError("give either a TARGET or --static DIR")
        options = http_options(arguments)
        sizes = pool_sizes(arguments)
    except (CommandLineError, ValueError) as error:
        parser().print_usage(sys.stderr)
        return _fail(str(error), ExitCode.COMMAND_LINE)
    try:
        configure(debug=arguments.debug, logfile=arguments.logfile,
                  facility=arguments.logfacility, ident=arguments.logident,
                  background=arguments.background)
    except OSError as error:
        return _fail(f"cannot open the log: {error}", ExitCode.STARTUP_ERROR)
    try:
        pidfile = Pidfile(arguments.pidfile) if arguments.pidfile else None
    except AlreadyRunning as error:
        logger.error("%s", error)
        return ExitCode.ALREADY_RUNNING
    except OSError as error:
        logger.error("cannot open the pidfile: %s", error)
        return ExitCode.STARTUP_ERROR
    try:
        return _serve(arguments, options, sizes, pidfile)
    finally:
        if pidfile is not None and pidfile.owner in (0, os.getpid()):
            pidfile.remove()
        logging.shutdown()


def _serve(arguments: argparse.Namespace, options: Options, sizes: dict[str, int],
           pidfile: Pidfile | None) -> int:
    """Load the callback, bind, announce, and run the master loop."""
    callback: Callable[[Any], object]
    try:
        if arguments.static is not None:
            callback = static_handler(arguments.static)
        else:
            callback = load_callback(arguments.target)
    except ValueError as error:
        return _fail(str(error), ExitCode.COMMAND_LINE)
    except BaseException:
        logger.exception("cannot load %s", arguments.target)
        return ExitCode.STARTUP_ERROR
    listeners = arguments.listen or [TCP("127.0.0.1", 8000)]
    try:
        pool = listen(*listeners, connect=generate_handler(callback, options),
                      pre_fork=sizes.get("pre_fork", 1), min_fork=sizes.get("min_fork"),
                      max_fork=sizes.get("max_fork"))
    except ValueError as error:
        return _fail(str(error), ExitCode.COMMAND_LINE)
    except OSError as error:
        logger.error("cannot listen: %s", error)
        return ExitCode.STARTUP_ERROR
    for listener, address in zip(listeners, pool.addresses, strict=True):
        if isinstance(address, str):
            print(f"listening on unix:{address}", flush=True)
        elif isinstance(listener, TCP) and listener.port == 0:
            print(f"listening on port {address[1]}", flush=True)
        else:
            host = f"[{address[0]}]" if ":" in address[0] else address[0]
            print(f"listening on http://{host}:{address[1]}/", flush=True)

    def before_start() -> None:
        if arguments.background:
            detach(pidfile)
        elif pidfile is not None:
            pidfile.write()

    keep_closed = (pidfile.fd,) if pidfile is not None else ()
    configure_run(Settings(arguments.graceful_timeout, arguments.stats, keep_closed),
                  before_start)
    try:
        return run()
    except Exception as error:
        logger.error("cannot start: %s", error)
        return ExitCode.STARTUP_ERROR
