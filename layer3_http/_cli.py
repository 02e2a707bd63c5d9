"""The command line: ``python -m layer3_http [options] TARGET`` (or ``--wsgi``, ``--static``).

It serves an HTTP callback with a pool of pre-forked workers, in this order
(each failure has the exit code of the layer 2 command line):

1. parse the options and build the `Options` (a mistake: exit 1);
2. set up logging and lock the pidfile with layer 2's `serve_command`, as
   ``python -m layer2_prefork`` does and with the same flags
   (`add_server_options`: ``-b -d -l -p -s -f -i -g``); a pidfile held
   by another instance: exit 2;
3. check that the callback loads (see `_target`; a script that fails:
   exit 3), or the WSGI application of ``--wsgi TARGET`` (wrapped by
   `wsgi_callback`), in a process forked for the check: the master never
   imports the application; each worker loads it after its fork (the
   pool's `prepare`), so a reload (``SIGUSR2``) serves the files as they
   are then; with ``--static DIR``, make a `static_handler`;
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
import functools
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from layer2_prefork import (
    TCP,
    CommandLineError,
    CommandLineParser,
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
from ._devreload import application_files, start_dev_reloader
from ._handler import Handler, generate_handler
from ._metrics import parse_metrics_address, serve_metrics
from ._options import CLIENT_CERTS, Options, tls_context
from ._proxy import DEFAULT_TRUSTED, FORWARDED_HEADERS
from ._static import static_handler
from ._target import DEFAULT_CALLBACK, load_callback, parse_listen, run_in_child
from ._wsgi import wsgi_callback

__all__ = ["main", "parser"]

PROGRAM = "python -m layer3_http"
logger = logging.getLogger("layer3_http")
_SIZES = ("request_header_size_limit", "request_body_size_limit", "chunk_size",
          "maximum_input_chunk_size", "minimum_output_chunk_size", "drain_size_limit",
          "write_completion_limit", "held_body_limit")
_TIMEOUTS = ("idle_timeout", "request_header_timeout", "stall_timeout", "response_timeout",
             "drain_timeout", "park_linger")


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


def _metrics_listener(text: str) -> ListenerSpec:
    try:
        return parse_metrics_address(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parser() -> argparse.ArgumentParser:
    """The option parser (its help is the command's documentation)."""
    cli = CommandLineParser(prog=PROGRAM, description="Serve an HTTP callback (module:name or "
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
    production.add_argument("--metrics", metavar="ADDRESS", type=_metrics_listener,
                            help="serve GET /metrics (Prometheus text format) on this "
                                 "HOST:PORT or unix:PATH, by a worker of its own; off by "
                                 "default, and never on the --listen addresses")
    development = cli.add_argument_group("development")
    development.add_argument("--reload", action="store_true",
                             help="watch the application's source files and reload (SIGUSR2) "
                                  "when one changes and compiles; a syntax error is shown and "
                                  "the old code goes on serving")
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
        if arguments.reload and arguments.static is not None:
            raise CommandLineError("--reload needs a TARGET or --wsgi (--static serves the "
                                   "files as they are anyway)")
        if arguments.reload and arguments.background:
            raise CommandLineError("--reload is for a server in a terminal, not with -b")
        options = http_options(arguments)
        sizes = pool_sizes(arguments)
    except (CommandLineError, ValueError) as error:
        parser().print_usage(sys.stderr)
        return _fail(str(error), ExitCode.COMMAND_LINE)
    return serve_command(ServerOptions.from_arguments(arguments),
                         lambda: _serve(arguments, options, sizes), program=PROGRAM)


# --8<-- [start:load]
def _load_application(arguments: argparse.Namespace) -> Callable[[Any], object]:
    """Import the TARGET (or ``--wsgi`` TARGET) and return its callback (in a worker).

    Raises:
        ValueError: No such module, script or callable.
        Exception: Whatever the application raises while it loads.
    """
    if arguments.wsgi is not None:
        return wsgi_callback(load_callback(arguments.wsgi), script_name=arguments.script_name)
    return load_callback(arguments.target)


def _check_application(arguments: argparse.Namespace) -> int:
    """Load the application once to see that it loads (in a child); return the exit code."""
    try:
        _load_application(arguments)
    except ValueError as error:
        return _fail(str(error), ExitCode.COMMAND_LINE)
    except BaseException:
        logger.exception("cannot load %s", arguments.wsgi or arguments.target)
        return ExitCode.STARTUP_ERROR
    return 0


def _prepare_worker(handler: Handler, arguments: argparse.Namespace) -> None:
    """The pool's `prepare`: each new worker imports the application afresh."""
    handler.callback = _load_application(arguments)
# --8<-- [end:load]


def _not_loaded(request: object) -> None:
    raise RuntimeError("the application is loaded in each worker's prepare")


def _serve(arguments: argparse.Namespace, options: Options, sizes: dict[str, int]) -> int:
    """Check the application, set up TLS and the access log, bind, announce, run the master."""
    callback: Callable[[Any], object] = _not_loaded
    if arguments.static is not None:
        callback = static_handler(arguments.static, dotfiles=arguments.static_dotfiles)
    elif (code := run_in_child(functools.partial(_check_application, arguments))) != 0:
        return code
    try:
        options = _production(arguments, options)
    except OSError as error:
        logger.error("%s", error)
        return ExitCode.STARTUP_ERROR
    activated = socket_activation()
    listeners: list[ListenerSpec] = [*activated, *(arguments.listen or [])]
    if not listeners:
        listeners = [TCP("127.0.0.1", 8000)]
    handler = generate_handler(callback, options)
    prepare = None if arguments.static is not None else functools.partial(
        _prepare_worker, handler, arguments)
    try:
        pool = listen(*listeners, connect=handler, prepare=prepare,
                      pre_fork=sizes.get("pre_fork", 1), min_fork=sizes.get("min_fork"),
                      max_fork=sizes.get("max_fork"))
    except ValueError as error:
        return _fail(str(error), ExitCode.COMMAND_LINE)
    except OSError as error:
        logger.error("cannot listen: %s", error)
        return ExitCode.STARTUP_ERROR
    _announce(listeners, pool.addresses, "https" if options.tls is not None else "http")
    if arguments.metrics is not None:
        try:
            metrics = serve_metrics(arguments.metrics)
        except OSError as error:
            logger.error("cannot listen for metrics: %s", error)
            return ExitCode.STARTUP_ERROR
        _announce([arguments.metrics], metrics.addresses[:1], "http", "metrics on", "/metrics")
    if arguments.reload:
        _start_reloader(arguments)
    try:
        return run()
    except Exception as error:
        logger.error("cannot start: %s", error)
        return ExitCode.STARTUP_ERROR


def _start_reloader(arguments: argparse.Namespace) -> None:
    """``--reload``: watch the application's files (see `_devreload`)."""
    target = arguments.wsgi or arguments.target
    where = target.rpartition(":")[0] if target.count(":") and not target.endswith(".py") \
        else target
    script = os.path.abspath(where) if where.endswith(".py") else None
    folder = os.path.dirname(script) if script is not None else os.getcwd()
    load = functools.partial(_load_application, arguments)
    start_dev_reloader(os.getpid(), lambda: application_files(
        load, folder, also=[script] if script is not None else []))


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


def _announce(listeners: Sequence[ListenerSpec], addresses: Sequence[object], scheme: str,
              what: str = "listening on", path: str = "/") -> None:
    """Print one line per listener: the port when the kernel chose it, else the URL."""
    for listener, address in zip(listeners, addresses, strict=True):
        if isinstance(address, str):
            print(f"{what} unix:{address}", flush=True)
        elif isinstance(address, tuple) and isinstance(listener, TCP) and listener.port == 0:
            print(f"{what} port {address[1]}", flush=True)
        elif isinstance(address, tuple):
            host = f"[{address[0]}]" if ":" in address[0] else address[0]
            print(f"{what} {scheme}://{host}:{address[1]}{path}", flush=True)
