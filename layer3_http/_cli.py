"""The command line: ``python -m layer3_http [options] TARGET`` (or ``--wsgi``, ``--static``).

It serves an HTTP callback with a pool of pre-forked workers, in this order
(each failure has the exit code of the layer 2 command line):

1. parse the options and build the `Options` (a mistake: exit 1);
2. set up logging and lock the pidfile with layer 2's `serve_command`, as
   ``python -m layer2_prefork`` does and with the same flags
   (`add_server_options`: ``-b -d -l -p -s -f -i -g``); a pidfile held
   by another instance: exit 2;
3. load the callback (see `_target`; a script that fails: exit 3), or
   the WSGI application of ``--wsgi TARGET`` (wrapped by `wsgi_callback`),
   or, with ``--static DIR``, make a `static_handler`;
4. load the TLS certificate (``--certfile``) and open the access log
   (``--access-log``), both in the master so that workers inherit them
   (a file that cannot be read: exit 3);
5. bind every ``--listen`` address and adopt the sockets systemd passed
   (`socket_activation`); with neither, ``127.0.0.1:8000`` (a bind error:
   exit 3); print one line per listener: ``listening on port N`` when the
   port was 0 (the kernel chose it), otherwise the URL;
6. run the master loop until the server is stopped (``SIGTERM``: exit 0).

Moonbridge: ``moonbridge`` started a Lua script that called
``listen{...}`` with ``http.generate_handler``; here the command line does
both.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from layer2_prefork import (
    TCP,
    ExitCode,
    ListenerSpec,
    Local,
    ServerOptions,
    add_server_options,
    listen,
    run,
    serve_command,
    socket_activation,
)

from ._accesslog import configure_access_log
from ._handler import generate_handler
from ._options import Options
from ._proxy import DEFAULT_TRUSTED, FORWARDED_HEADERS
from ._static import static_handler
from ._target import DEFAULT_CALLBACK, load_callback, parse_listen
from ._tls import CLIENT_CERTS, tls_context
from ._wsgi import wsgi_callback

__all__ = ["main", "parser"]

PROGRAM = "python -m layer3_http"
logger = logging.getLogger("layer3_http")
_SIZES = ("request_header_size_limit", "request_body_size_limit", "chunk_size",
          "maximum_input_chunk_size", "minimum_output_chunk_size", "drain_size_limit",
          "write_completion_limit", "held_body_limit")
_TIMEOUTS = ("idle_timeout", "request_header_timeout", "stall_timeout", "response_timeout",
             "drain_timeout", "park_linger")


class CommandLineError(Exception):
    """A command line the parser does not accept."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CommandLineError(message)


def _seconds_or_none(text: str) -> float | None:
    if text.lower() in ("none", "off"):
        return None
    return float(text)


def _bytes_or_none(text: str) -> int | None:
    if text.lower() in ("none", "off"):
        return None
    return int(text)


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
    cli.add_argument("--static-dotfiles", action="store_true",
                     help="with --static: also serve names that start with a dot (.env, .git/); "
                          "by default they are 404")
    cli.add_argument("--wsgi", metavar="TARGET",
                     help="serve the WSGI application TARGET (module:app or script.py:app)")
    cli.add_argument("--script-name", metavar="PATH", default="",
                     help="with --wsgi: where the application is mounted (SCRIPT_NAME)")
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
    http.add_argument("--minimum-rate", metavar="BYTES_PER_S", type=_bytes_or_none,
                      default=argparse.SUPPRESS,
                      help="slowest average rate of a body or response the worker moves "
                           "(default 1024; 'none': no minimum)")
    http.add_argument("--static-header", metavar="'NAME: VALUE'", action="append", default=[],
                      help="a header sent with every response (repeatable)")
    production = cli.add_argument_group("production")
    production.add_argument("--certfile", metavar="FILE",
                            help="serve HTTPS with this certificate chain (PEM)")
    production.add_argument("--keyfile", metavar="FILE",
                            help="the private key (PEM), if not in --certfile")
    production.add_argument("--ca-certs", metavar="FILE",
                            help="ask clients for certificates signed by these CAs (PEM)")
    production.add_argument("--client-certs", choices=tuple(CLIENT_CERTS), default="required",
                            help="with --ca-certs: whether a client certificate is required "
                                 "(default) or optional")
    production.add_argument("--access-log", metavar="FILE",
                            help="one line per request to FILE (reopened after rotation); "
                                 "'-' for stdout")
    production.add_argument("--access-log-format", metavar="FORMAT", default="common",
                            help="common (default), combined, or a format such as "
                                 "'%%h %%t \"%%r\" %%>s %%b %%D'")
    production.add_argument("--forwarded-allow-ips", metavar="LIST",
                            default=",".join(DEFAULT_TRUSTED),
                            help="peers whose Forwarded / X-Forwarded-* headers count: "
                                 "addresses, networks, 'unix', '*' (default %(default)s)")
    production.add_argument("--forwarded-header", choices=FORWARDED_HEADERS,
                            default=FORWARDED_HEADERS[0],
                            help="the one header those proxies set; the other kind is "
                                 "ignored (default %(default)s, as nginx sets it)")
    production.add_argument("--max-requests", metavar="N", type=int,
                            help="retire a worker after N requests (then a fresh one is forked)")
    production.add_argument("--max-requests-jitter", metavar="N", type=int, default=0,
                            help="add a random 0..N to --max-requests per worker")
    add_server_options(cli.add_argument_group("server (as python -m layer2_prefork)"))
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
    for name in (*_TIMEOUTS, "minimum_rate"):
        if hasattr(arguments, name):
            values[name] = getattr(arguments, name)
    if arguments.static_header:
        values["static_headers"] = arguments.static_header
    values["forwarded_allow_ips"] = arguments.forwarded_allow_ips
    values["forwarded_header"] = arguments.forwarded_header
    if arguments.access_log is not None:
        values["access_log"] = arguments.access_log_format
    values["max_requests"] = arguments.max_requests
    values["max_requests_jitter"] = arguments.max_requests_jitter
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
        given = [arguments.target, arguments.static, arguments.wsgi]
        if sum(value is not None for value in given) != 1:
            raise CommandLineError("give either a TARGET or --static DIR (or --wsgi TARGET)")
        if arguments.static_dotfiles and arguments.static is None:
            raise CommandLineError("--static-dotfiles needs --static")
        if arguments.certfile is None and (arguments.keyfile or arguments.ca_certs):
            raise CommandLineError("--keyfile and --ca-certs need --certfile")
        options = http_options(arguments)
        sizes = pool_sizes(arguments)
    except (CommandLineError, ValueError) as error:
        parser().print_usage(sys.stderr)
        return _fail(str(error), ExitCode.COMMAND_LINE)
    return serve_command(ServerOptions.from_arguments(arguments),
                         lambda: _serve(arguments, options, sizes), program=PROGRAM)


def _serve(arguments: argparse.Namespace, options: Options, sizes: dict[str, int]) -> int:
    """Load the callback, set up TLS and the access log, bind, announce, run the master."""
    callback: Callable[[Any], object]
    try:
        if arguments.static is not None:
            callback = static_handler(arguments.static, dotfiles=arguments.static_dotfiles)
        elif arguments.wsgi is not None:
            callback = wsgi_callback(load_callback(arguments.wsgi),
                                     script_name=arguments.script_name)
        else:
            callback = load_callback(arguments.target)
    except ValueError as error:
        return _fail(str(error), ExitCode.COMMAND_LINE)
    except BaseException:
        logger.exception("cannot load %s", arguments.wsgi or arguments.target)
        return ExitCode.STARTUP_ERROR
    try:
        options = _production(arguments, options)
    except OSError as error:
        logger.error("%s", error)
        return ExitCode.STARTUP_ERROR
    activated = socket_activation()
    listeners: list[ListenerSpec] = [*activated, *(arguments.listen or [])]
    if not listeners:
        listeners = [TCP("127.0.0.1", 8000)]
    try:
        pool = listen(*listeners, connect=generate_handler(callback, options),
                      pre_fork=sizes.get("pre_fork", 1), min_fork=sizes.get("min_fork"),
                      max_fork=sizes.get("max_fork"))
    except ValueError as error:
        return _fail(str(error), ExitCode.COMMAND_LINE)
    except OSError as error:
        logger.error("cannot listen: %s", error)
        return ExitCode.STARTUP_ERROR
    _announce(listeners, pool.addresses, "https" if options.tls is not None else "http")
    try:
        return run()
    except Exception as error:
        logger.error("cannot start: %s", error)
        return ExitCode.STARTUP_ERROR


def _production(arguments: argparse.Namespace, options: Options) -> Options:
    """Load the TLS certificate and open the access log (in the master, before any fork).

    Raises:
        OSError: A file cannot be read or opened (the message says which).
    """
    if arguments.certfile is not None:
        try:
            context = tls_context(arguments.certfile, arguments.keyfile,
                                  ca_certs=arguments.ca_certs, client_certs=arguments.client_certs)
        except OSError as error:
            raise OSError(f"cannot load the TLS certificate: {error}") from None
        options = options.replace(tls=context)
    if arguments.access_log is not None:
        try:
            configure_access_log(arguments.access_log)
        except OSError as error:
            raise OSError(f"cannot open the access log: {error}") from None
    return options


def _announce(listeners: Sequence[ListenerSpec], addresses: Sequence[object], scheme: str) -> None:
    """Print one line per listener: the port when the kernel chose it, else the URL."""
    for listener, address in zip(listeners, addresses, strict=True):
        if isinstance(address, str):
            print(f"listening on unix:{address}", flush=True)
        elif isinstance(address, tuple) and isinstance(listener, TCP) and listener.port == 0:
            print(f"listening on port {address[1]}", flush=True)
        elif isinstance(address, tuple):
            host = f"[{address[0]}]" if ":" in address[0] else address[0]
            print(f"listening on {scheme}://{host}:{address[1]}/", flush=True)
