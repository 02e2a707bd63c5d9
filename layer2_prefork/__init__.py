"""The pre-forking listener (Moonbridge's `listen{...}`, `timeout(...)` and master).

Declare pools with `listen()`, serve them with `run()` (or run the
script with `python -m layer2_prefork script.py`; sockets passed by
systemd come from `socket_activation()`), and guard handlers with
`timeout()`; inside a handler, `stopping()` and `stop_fd()` tell that a
graceful stop began, `park()` hands an idle connection back to the
master (which holds it, and new connections, until a `DispatchFilter`
says their request arrived), and `linger()` and `send_rest()` hand the
master the waits at a connection's end (the lingering close, and the rest
of a response a client takes slowly). A command line of your own gets the same server options and
start-up steps from `add_server_options`, `ServerOptions` and
`serve_command`.
"""

from ._activation import socket_activation
from ._config import (
    MAX_BYTES,
    TCP,
    DispatchFilter,
    Event,
    Inherited,
    Interval,
    ListenerSpec,
    Local,
    Main,
    PoolOptions,
)
from ._errors import ExitCode, StartupError
from ._logging import reopen as reopen_logs
from ._server import Pool, listen, run
from ._service import ServerOptions, add_server_options, serve_command
from .worker._handover import linger, send_rest
from .worker._loop import stop_fd, stopping
from .worker._park import park, work_waiting
from .worker._timeout import timeout, timeout_each

__all__ = [
    "MAX_BYTES",
    "TCP",
    "DispatchFilter",
    "Event",
    "ExitCode",
    "Inherited",
    "Interval",
    "ListenerSpec",
    "Local",
    "Main",
    "Pool",
    "PoolOptions",
    "ServerOptions",
    "StartupError",
    "add_server_options",
    "linger",
    "listen",
    "park",
    "reopen_logs",
    "run",
    "send_rest",
    "serve_command",
    "socket_activation",
    "stop_fd",
    "stopping",
    "timeout",
    "timeout_each",
    "work_waiting",
]
