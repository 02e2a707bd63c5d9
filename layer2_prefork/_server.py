"""Declaring a server: `listen(...)` makes a pool, `run()` serves them all.

A script declares its pools at the top level, then calls `run()`::

    pool = listen(TCP("127.0.0.1", 0), connect=handle, pre_fork=2)
    print(f"listening on port {pool.port}")
    run()

`listen()` validates everything and binds the sockets at once, in the
master, so that every mistake shows before the first fork. `run()`
enters the master loop for every pool declared so far and returns the exit
code when the server has stopped. The command line
(`python -m layer2_prefork script.py`) runs the same script and calls
`run()` itself if the script did not; it supplies its options through
`configure_run()`.

Invariants: pools are kept in declaration order (pool 0, pool 1, ...);
`run()` consumes them, so a second `run()` needs new `listen()`
calls; neither function works inside a worker.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Literal

from . import _logging
from ._config import (
    TCP,
    DispatchFilter,
    Handlers,
    Inherited,
    Interval,
    ListenerSpec,
    Local,
    Main,
    PoolOptions,
    PoolSpec,
    check_number,
)
from ._errors import ExitCode, StartupError
from ._sockets import Address, Bound, bind
from .master._loop import Master, Settings
from .worker import _loop as _worker


class Pool:
    """The handle `listen()` returns: one pool's listeners and bound addresses.

    Use it to learn the port the kernel chose for `TCP(port=0)` before
    calling `run()`.

    Examples:
        >>> pool = listen(TCP("127.0.0.1", 0), connect=lambda conn: None)
        >>> pool.port == pool.addresses[0][1] > 0
        True
        >>> pool.close()
    """

    def __init__(self, spec: PoolSpec, bound: list[Bound | None]) -> None:
        self._spec = spec
        self._bound = bound

    @property
    def index(self) -> int:
        """The pool's number (0 for the first `listen()` call, 1 for the next, ...)."""
        return self._spec.index

    @property
    def listeners(self) -> tuple[ListenerSpec, ...]:
        """The listeners as declared."""
        return self._spec.listeners

    @property
    def options(self) -> PoolOptions:
        """The pool's options, with `min_fork` and `max_fork` filled in."""
        return self._spec.options

    @property
    def addresses(self) -> tuple[Address, ...]:
        """The bound address of each TCP or Unix listener, in declaration order.

        A TCP address is a `(host, port)` tuple with the real port; a Unix
        address is the socket's absolute path.
        """
        return tuple(bound.address for bound in self._bound if bound is not None)

    @property
    def port(self) -> int:
        """The port of the pool's first TCP listener.

        Raises:
            ValueError: If the pool has no TCP listener.
        """
        for address in self.addresses:
            if isinstance(address, tuple):
                return address[1]
        raise ValueError(f"pool {self.index} has no TCP listener")

    def close(self) -> None:
        """Close the sockets and forget the pool without running it (for tests and tools)."""
        for bound in self._bound:
            if bound is not None:
                bound.close()
        if self in _pools:
            _pools.remove(self)

    def __repr__(self) -> str:
        return f"<Pool {self.index} {self.addresses!r}>"


_pools: list[Pool] = []
_settings = Settings()
_before_start: Callable[[], None] | None = None
_last_exit: ExitCode | None = None


def listen(*listeners: ListenerSpec, prepare: Callable[[], object] | None = None,
           connect: Callable[[Any], object], finish: Callable[[], object] | None = None,
           pre_fork: int = 1, min_fork: int | None = None, max_fork: int | None = None,
           fork_delay: float = 0.25, fork_error_delay: float = 2.0, exit_delay: float = 60.0,
           idle_timeout: float = 0.0, memory_limit: int | None = None,
           max_requests: int | None = None, max_requests_jitter: int = 0,
           dispatch_filter: DispatchFilter | Literal[False] | None = None) -> Pool:
    """Declare a pool of workers serving `listeners`, and bind its sockets now.

    Each call makes one pool with its own workers. Every worker runs
    `prepare()` once after it is forked, then `connect(conn)` for each
    connection or timer event it is given, and `finish()` before it exits
    normally. `conn` is a `layer1_sockets.BufferedSocket` for TCP
    and Unix listeners and an `Event` for `Interval` and
    `Main` listeners. The worker stays for more work unless
    `connect` returns `False`. If `connect` raises, the traceback goes
    to the log, the connection is reset and the worker is replaced. A socket
    the handler did not close is closed after `connect` returns.

    Args:
        *listeners: One or more of `TCP`, `Local`, `Inherited`
            (see `socket_activation`), `Interval`, `Main`.
        prepare: Called once in each new worker (if it raises, the worker
            exits and the pool forks at most one worker per `fork_error_delay`).
        connect: Called with each connection or event.
        finish: Called in a worker before it exits normally.
        pre_fork: Idle workers to keep ready.
        min_fork: Fewest workers (default `max(pre_fork, 2)`).
        max_fork: Most workers (default `max(min_fork, 16)`).
        fork_delay: Seconds between two forks.
        fork_error_delay: Seconds between two forks after a failure.
        exit_delay: Seconds between retiring two surplus idle workers.
        idle_timeout: Retire a worker idle this long (0 = never).
        memory_limit: Bytes. A worker may allocate at most this much beyond
            its size when forked (`RLIMIT_AS`; beyond it allocations raise
            `MemoryError`), and retires after a connection once its resident
            size exceeds it.
        max_requests: Retire a worker after it served this many connections
            and events (`None` = never); the pool forks a fresh one at once.
            Recycling workers bounds what slow leaks in an application cost.
        max_requests_jitter: Each worker adds a random 0 to this many to
            `max_requests`, so that workers do not all retire together.
        dispatch_filter: Hold each new connection in the master until the
            filter says its request has arrived, and parked connections
            (`park`) until their next one (see `DispatchFilter`). `None`:
            the filter `connect` carries as its `dispatch_filter`
            attribute, if any (layer 3's handlers do); `False`: no filter,
            connections go to a worker as soon as they are accepted.

    Returns:
        The pool's handle, with the bound addresses.

    Raises:
        ValueError: If a listener or option is wrong; the message names it.
        StartupError: If called inside a worker (from a handler).
        OSError: If a socket cannot be bound.

    Moonbridge: `listen{...}`.
    """
    if _worker.inside:
        raise StartupError("listen() cannot be called in a worker (from a handler)")
    if not listeners:
        raise ValueError("listen: at least one listener is required")
    for listener in listeners:
        if not isinstance(listener, TCP | Local | Inherited | Interval | Main):
            raise ValueError(f"listen: not a listener: {listener!r}")
    handlers = Handlers(connect, prepare, finish)
    options = PoolOptions(pre_fork, min_fork, max_fork, fork_delay, fork_error_delay,
                          exit_delay, idle_timeout, memory_limit, max_requests,
                          max_requests_jitter)
    spec = PoolSpec(len(_pools), tuple(listeners), handlers, options,
                    _choose_filter(dispatch_filter, connect))
    bound: list[Bound | None] = []
    try:
        for listener in listeners:
            bound.append(bind(listener) if isinstance(listener, TCP | Local | Inherited)
                         else None)
    except BaseException:
        for done in bound:
            if done is not None:
                done.close()
        raise
    pool = Pool(spec, bound)
    _pools.append(pool)
    return pool


def _choose_filter(given: object, connect: object) -> DispatchFilter | None:
    """The pool's dispatch filter: the one given, else the handler's own (see `listen`)."""
    if given is False:
        return None
    if given is None:
        given = getattr(connect, "dispatch_filter", None)
        if given is None:
            return None
    if not isinstance(given, DispatchFilter):
        raise ValueError(f"listen: dispatch_filter must be a DispatchFilter, not {given!r}")
    return given


def configure_run(settings: Settings, before_start: Callable[[], None] | None = None) -> None:
    """Set what `run()` uses when its arguments are left out (the command line's options).

    Args:
        settings: The defaults for `graceful_timeout` and `stats`, and
            descriptors workers must close.
        before_start: Called by `run()` after its checks, right before
            the first fork (the command line detaches and writes the pidfile here).
    """
    global _settings, _before_start
    _settings = settings
    _before_start = before_start


def run(*, graceful_timeout: float | None = None, stats: bool | None = None) -> ExitCode:
    """Serve every pool declared with `listen()` until the server stops.

    The master forks the workers, hands them connections and events, and
    keeps each pool at its size. `SIGTERM` stops gracefully (listeners
    close, busy workers finish, then exit code 0; workers still busy after
    `graceful_timeout` are killed); `SIGINT` and `SIGHUP` stop at once
    (workers are killed). A `Main` listener stops the server when it has
    run. `SIGUSR1` reopens the log files (after logrotate moved them, see
    `reopen_logs`) and logs each pool's worker counts. `SIGUSR2` reloads:
    every worker is replaced, pool by pool, by a new one that runs
    `prepare` again, each old one only once a new one is ready (a new
    worker whose `prepare` fails abandons the reload; the old ones serve on). If nothing configured
    logging, the log goes to stderr.

    Args:
        graceful_timeout: Seconds a graceful stop waits for busy workers
            (default: the command line's `--graceful-timeout`, else 30).
        stats: Log each pool's worker counts whenever they change
            (default: the command line's `--stats`, else off).

    Returns:
        `ExitCode.STOP` after a stop, or `ExitCode.RUNTIME_ERROR`
        if the master loop failed (its traceback is logged).

    Raises:
        StartupError: If no pool was declared, or if called inside a worker
            or outside the main thread.
        ValueError: If `graceful_timeout` is not a number >= 0.

    Moonbridge: the master loop that `moonbridge` enters after the script.
    """
    global _last_exit
    if _worker.inside:
        raise StartupError("run() cannot be called in a worker (from a handler)")
    if not _pools:
        raise StartupError("no listener: call listen() before run()")
    if threading.current_thread() is not threading.main_thread():
        raise StartupError("run() must be called in the main thread (it handles signals)")
    settings = _settings
    if graceful_timeout is not None:
        check_number("graceful_timeout", graceful_timeout, allow_infinity=True)
        settings = replace(settings, graceful_timeout=float(graceful_timeout))
    if stats is not None:
        settings = replace(settings, stats=bool(stats))
    _logging.ensure_handler()
    if _before_start is not None:
        _before_start()
    pools = [(pool._spec, pool._bound) for pool in _pools]
    _pools.clear()
    _last_exit = ExitCode.RUNTIME_ERROR
    _last_exit = Master(pools, settings).run()
    return _last_exit


def last_exit() -> ExitCode | None:
    """What the last `run()` in this process returned; `None` if it never ran."""
    return _last_exit
