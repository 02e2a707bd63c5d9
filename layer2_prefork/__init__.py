"""The pre-forking listener (Moonbridge's `listen{...}`, `timeout(...)` and master).

Declare pools with `listen()`, serve them with `run()` (or run the
script with `python -m layer2_prefork script.py`; sockets passed by
systemd come from `socket_activation()`), and guard handlers with
`timeout()`; inside a handler, `stopping()` and `stop_fd()` tell that a
graceful stop began, `park()` hands an idle connection back to the
master (which holds it, and new connections, until a `DispatchFilter`
says their request arrived; `park_due()` says when to ask even though
the next request is there), and `linger()` and `send_rest()` hand the
master the waits at a connection's end (the lingering close, and the rest
of a response a client takes slowly). A command line of your own gets the same server options and
start-up steps from `add_server_options`, `ServerOptions` and
`serve_command`; `start_watcher` watches files for a development reloader.
`Counters` are sums that outlive the workers that add
to them, and `snapshot()` reads them, with each pool's worker states,
exits by `ExitCause` and the connections the master holds, from any
process of the server.
"""

from ._activation import socket_activation
from ._cli import CommandLineError, CommandLineParser
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
    check_count,
)
from ._counters import Counters, PoolSnapshot, Snapshot, retiring, snapshot
from ._errors import ExitCode, StartupError
from ._logging import reopen as reopen_logs
from ._scoreboard import ExitCause, HeldReason
from ._server import Pool, listen, run
from ._service import ServerOptions, add_server_options, serve_command
from ._watch import start_watcher
from .worker._handover import linger, send_rest
from .worker._loop import count_requests, requests_left, stop_fd, stopping
from .worker._park import LOOK_EVERY, park, park_due, work_waiting
from .worker._timeout import timeout, timeout_each

__all__ = [
    "LOOK_EVERY",
    "MAX_BYTES",
    "TCP",
    "CommandLineError",
    "CommandLineParser",
    "Counters",
    "DispatchFilter",
    "Event",
    "ExitCause",
    "ExitCode",
    "HeldReason",
    "Inherited",
    "Interval",
    "ListenerSpec",
    "Local",
    "Main",
    "Pool",
    "PoolOptions",
    "PoolSnapshot",
    "ServerOptions",
    "Snapshot",
    "StartupError",
    "add_server_options",
    "check_count",
    "count_requests",
    "linger",
    "listen",
    "park",
    "park_due",
    "reopen_logs",
    "requests_left",
    "retiring",
    "run",
    "send_rest",
    "serve_command",
    "snapshot",
    "socket_activation",
    "start_watcher",
    "stop_fd",
    "stopping",
    "timeout",
    "timeout_each",
    "work_waiting",
]
