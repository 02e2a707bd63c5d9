"""Configuration as data: the listener kinds, the pool options, the handlers, the dispatch filter.

Everything a pool needs to know is a frozen, slotted dataclass that checks
its values in `__post_init__`. A wrong value therefore fails where it is
written, with a `ValueError` that names the option, long before the master
forks its first worker. Nothing in this module touches a socket or a process.

The dispatch filter (`DispatchFilter`) says when a connection the master
holds is ready for a worker. A pool with a dispatch filter does not serve a
new connection whose request has not arrived. The worker that accepted it
reads its first bytes for a moment; if they are not a whole request by
`DispatchFilter.complete` (for HTTP, a complete request head), it hands
the connection to the master, which reads what else the client sends and
keeps the bytes until they are; only then does a worker get the
connection, with those bytes. A client that connects and says nothing,
or sends its request one byte a second, costs the master a descriptor and
a few hundred bytes, not a worker process. Parked connections (see
`layer2_prefork.park`) come back through the same filter.

This is the idea of FreeBSD's ``accf_http`` accept filter, done in the
workers and the master instead of the kernel. Layer 2 knows nothing of HTTP: the filter
is data that a higher layer gives to `listen()` (layer 3's handlers carry
one, which `listen()` picks up by itself).

Invariants:

* a constructed listener, `PoolOptions` or `DispatchFilter` is valid and
  never changes;
* `PoolOptions.min_fork` and `max_fork` are always filled in (the
  defaults `max(pre_fork, 2)` and `max(min_fork, 16)` are applied here)
  and `pre_fork <= min_fork <= max_fork`;
* `DispatchFilter.max_bytes` never exceeds what a control message can
  carry (`MAX_FILE_BYTES`).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import os
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._protocol import MAX_FILE_BYTES

# The longest path a Unix socket address can hold on Linux (sun_path minus the NUL).
MAX_SOCKET_PATH = 107


def _check_name(owner: str, name: object) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError(f"{owner}: name must be a non-empty str, not {name!r}")


def check_number(option: str, value: object, *, allow_infinity: bool = False) -> float:
    """Return `value` as a float if it is a number >= 0, else raise `ValueError`.

    Args:
        option: The option's name, used in the error message.
        value: The value to check (`bool` is refused even though it is an `int`).
        allow_infinity: Whether `math.inf` ("never") is a valid value.

    Returns:
        The value as a float.

    Raises:
        ValueError: If the value is not a non-negative number (NaN is refused).

    Examples:
        >>> check_number("fork_delay", 1)
        1.0
        >>> check_number("fork_delay", -1)
        Traceback (most recent call last):
        ...
        ValueError: fork_delay must be a number >= 0, not -1
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{option} must be a number >= 0, not {value!r}")
    number = float(value)
    if math.isnan(number) or number < 0 or (math.isinf(number) and not allow_infinity):
        raise ValueError(f"{option} must be a number >= 0, not {value!r}")
    return number


def check_count(option: str, value: object, minimum: int) -> int:
    """Check that the option's value is an int (not a bool) of at least `minimum`.

    Returns:
        The value, unchanged.

    Raises:
        ValueError: Naming the option, the minimum and the value.

    Examples:
        >>> check_count("workers", 4, 1)
        4
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{option} must be an int >= {minimum}, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class TCP:
    """A TCP listener on `host` and `port`.

    Pass host and port by keyword or positionally as `(host, port)`. The
    default host `"::"` listens on every IPv6 and IPv4 address; port 0 asks
    the kernel for any free port (read the one it chose from
    `Pool.addresses` or `Pool.port`).

    Args:
        host: A numeric address or a host name; `"::"` or `"0.0.0.0"` for all.
        port: The port number, 0 to 65535; it has no default so that a server
            never ends up on a random port by accident.

    Raises:
        ValueError: If the host is not a non-empty str or the port is missing or out of range.

    Examples:
        >>> TCP("127.0.0.1", 8080)
        TCP(host='127.0.0.1', port=8080)
        >>> TCP(port=0).host
        '::'

    Moonbridge: `{ proto = "tcp", host = "::", port = 8080 }`.
    """

    host: str = "::"
    port: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"TCP: host must be a non-empty str, not {self.host!r}")
        if self.port is None:
            raise ValueError("TCP: port is required (0 = any free port)")
        check_count("TCP: port", self.port, 0)
        if self.port > 65535:
            raise ValueError(f"TCP: port must be an int from 0 to 65535, not {self.port!r}")


@dataclass(frozen=True, slots=True)
class Local:
    """A listener on a Unix domain socket at `path`.

    The socket file is created when `listen()` binds it and removed when
    the server stops. A stale socket file left by a server that was killed is
    replaced; any other existing file is an error.

    Args:
        path: The socket's path (at most 107 bytes once encoded).

    Raises:
        ValueError: If the path is empty, too long or not a path.

    Examples:
        >>> Local("/tmp/app.sock")
        Local(path='/tmp/app.sock')

    Moonbridge: `{ proto = "local", path = "..." }`.
    """

    path: str | os.PathLike[str]

    def __post_init__(self) -> None:
        try:
            path = os.fspath(self.path)
        except TypeError:
            raise ValueError(f"Local: path must be a str or path, not {self.path!r}") from None
        if not isinstance(path, str) or not path:
            raise ValueError(f"Local: path must be a non-empty str, not {self.path!r}")
        if len(os.fsencode(path)) > MAX_SOCKET_PATH:
            raise ValueError(f"Local: path is longer than {MAX_SOCKET_PATH} bytes: {path!r}")
        object.__setattr__(self, "path", path)


@dataclass(frozen=True, slots=True)
class Interval:
    """A timer: every `delay` seconds one idle worker runs `connect(event)`.

    The event's `Event.interval` holds `name`. The first run is due
    `delay` seconds after the server starts. The next run is due `delay`
    seconds after the previous one *completed*; with `strict=True` it is
    due `delay` seconds after the previous one was *due*, and runs missed
    while the handler was slow collapse into a single run.

    Args:
        name: Passed to the handler as `event.interval`.
        delay: Seconds between runs, greater than 0.
        strict: Keep a fixed schedule instead of pausing `delay` after each run.

    Raises:
        ValueError: If the name is empty or the delay is not a positive number.

    Examples:
        >>> Interval("cleanup", 60).strict
        False

    Moonbridge: `{ proto = "interval", name = "...", delay = 60, strict = false }`.
    """

    name: str
    delay: float
    strict: bool = False

    def __post_init__(self) -> None:
        _check_name("Interval", self.name)
        delay = check_number("Interval: delay", self.delay)
        if delay <= 0:
            raise ValueError(f"Interval: delay must be > 0, not {self.delay!r}")
        if not isinstance(self.strict, bool):
            raise ValueError(f"Interval: strict must be a bool, not {self.strict!r}")


@dataclass(frozen=True, slots=True)
class Main:
    """Run `connect(event)` once in one worker, then stop the server.

    The event's `Event.main` holds `name`. When the worker that ran
    the handler becomes idle again (or ends), the server stops gracefully;
    with several `Main` listeners it stops once all of them have run.

    Args:
        name: Passed to the handler as `event.main`.

    Raises:
        ValueError: If the name is empty.

    Examples:
        >>> Main("batch").name
        'batch'

    Moonbridge: `{ proto = "main", name = "..." }`.
    """

    name: str

    def __post_init__(self) -> None:
        _check_name("Main", self.name)


@dataclass(frozen=True, slots=True)
class Inherited:
    """A listening socket this process was given already open (systemd socket activation).

    Usually made by `socket_activation()` from systemd's ``LISTEN_FDS``.
    The socket must be a listening stream socket (TCP or Unix); `listen()`
    adopts it instead of binding. Its Unix socket file, if any, belongs to
    whoever made it and is not removed at exit.

    Args:
        fd: The descriptor number (systemd passes 3, 4, ...).
        name: The name systemd gave it (``FileDescriptorName=``), or ``""``.

    Raises:
        ValueError: If `fd` is not an int >= 0.

    Examples:
        >>> Inherited(3)
        Inherited(fd=3, name='')
    """

    fd: int
    name: str = ""

    def __post_init__(self) -> None:
        check_count("Inherited: fd", self.fd, 0)
        if not isinstance(self.name, str):
            raise ValueError(f"Inherited: name must be a str, not {self.name!r}")


ListenerSpec = TCP | Local | Inherited | Interval | Main
"""Any of the five listener kinds: what to listen on, as `listen()` takes it (layer 1's
`Listener` is a listening socket, which `listen()` binds from a `TCP` or `Local`)."""


@dataclass(frozen=True, slots=True)
class Event:
    """What `connect` receives for an `Interval` or `Main` listener.

    Exactly one of the two attributes is set; the other is `None`. A
    buffered socket (the argument for TCP and Unix listeners) has an
    `interval` attribute that is `None` too, so `if conn.interval:`
    tells a timer event from a connection.

    Examples:
        >>> Event(interval="cleanup")
        Event(interval='cleanup', main=None)
    """

    interval: str | None = None
    """The name of the `Interval` listener that fired, or `None`."""
    main: str | None = None
    """The name of the `Main` listener that runs, or `None`."""


@dataclass(frozen=True, slots=True)
class Handlers:
    """The three application functions a pool calls in its workers."""

    connect: Callable[[Any], object]
    prepare: Callable[[], object] | None = None
    finish: Callable[[], object] | None = None

    def __post_init__(self) -> None:
        if not callable(self.connect):
            raise ValueError(f"connect must be callable, not {self.connect!r}")
        for option in ("prepare", "finish"):
            value = getattr(self, option)
            if value is not None and not callable(value):
                raise ValueError(f"{option} must be callable or None, not {value!r}")


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """The sizing and timing options of one pool, as `listen()` takes them.

    `min_fork=None` becomes `max(pre_fork, 2)` and `max_fork=None`
    becomes `max(min_fork, 16)`. Delays are in seconds; `exit_delay` and
    `idle_timeout` may be `math.inf` (never). `idle_timeout=0` also
    means never. `memory_limit` is in bytes. `max_requests` (`None` =
    never) retires a worker after that many calls of `connect` plus a
    random 0 to `max_requests_jitter` of its own.

    Raises:
        ValueError: Naming the first option whose value is wrong.

    Examples:
        >>> options = PoolOptions(pre_fork=4)
        >>> options.min_fork, options.max_fork
        (4, 16)
    """

    pre_fork: int = 1
    min_fork: int | None = None
    max_fork: int | None = None
    fork_delay: float = 0.25
    fork_error_delay: float = 2.0
    exit_delay: float = 60.0
    idle_timeout: float = 0.0
    memory_limit: int | None = None
    max_requests: int | None = None
    max_requests_jitter: int = 0

    def __post_init__(self) -> None:
        pre_fork = check_count("pre_fork", self.pre_fork, 0)
        min_fork = max(pre_fork, 2) if self.min_fork is None else self.min_fork
        check_count("min_fork", min_fork, 1)
        if min_fork < pre_fork:
            raise ValueError(f"min_fork ({min_fork}) must be at least pre_fork ({pre_fork})")
        max_fork = max(min_fork, 16) if self.max_fork is None else self.max_fork
        check_count("max_fork", max_fork, 1)
        if max_fork < min_fork:
            raise ValueError(f"max_fork ({max_fork}) must be at least min_fork ({min_fork})")
        object.__setattr__(self, "min_fork", min_fork)
        object.__setattr__(self, "max_fork", max_fork)
        for option in ("fork_delay", "fork_error_delay"):
            object.__setattr__(self, option, check_number(option, getattr(self, option)))
        for option in ("exit_delay", "idle_timeout"):
            value = check_number(option, getattr(self, option), allow_infinity=True)
            object.__setattr__(self, option, value)
        if self.memory_limit is not None:
            check_count("memory_limit", self.memory_limit, 1)
        if self.max_requests is not None:
            check_count("max_requests", self.max_requests, 1)
        check_count("max_requests_jitter", self.max_requests_jitter, 0)

    @property
    def minimum(self) -> int:
        """`min_fork` as an int (always set once constructed)."""
        assert self.min_fork is not None
        return self.min_fork

    @property
    def maximum(self) -> int:
        """`max_fork` as an int (always set once constructed)."""
        assert self.max_fork is not None
        return self.max_fork


@dataclass(frozen=True, slots=True)
class DispatchFilter:
    """When the master hands a held connection to a worker, and how long it holds one.

    Args:
        complete: Called with every byte received so far (never empty),
            and, if it takes a second argument, the offset where the bytes
            new since its last call begin (so it can look at those only,
            and a slow client's bytes are not scanned again and again);
            `True` once they hold a complete request: the connection goes
            to the next idle worker, with the bytes.
        idle_timeout: Seconds a held connection may stay silent (no byte
            since it was accepted or parked) before the master closes it;
            `None`: no limit.
        request_timeout: Seconds from a connection's first byte to
            `complete`; past them the master sends `timeout_response` and
            closes the connection. `None`: no limit.
        timeout_response: Bytes written (if the socket takes them at once)
            before closing a connection past `request_timeout`.
        max_bytes: Hand the connection over once this many bytes are held,
            complete or not (the handler then reads the rest, or refuses
            it). At most `MAX_FILE_BYTES`.
        overload_response: Bytes written before closing a connection the
            master cannot hold because its memory for held bytes (in all,
            or for the client's address) is spent (see `_holding`).

    Raises:
        ValueError: If an option is wrong; the message names it.

    Examples:
        >>> http = DispatchFilter(lambda data: b"\\r\\n\\r\\n" in data, idle_timeout=65)
        >>> http.complete(b"GET / HTTP/1.1\\r\\n"), http.complete(b"GET / HTTP/1.0\\r\\n\\r\\n")
        (False, True)
    """

    complete: Callable[..., bool]
    idle_timeout: float | None = None
    request_timeout: float | None = None
    timeout_response: bytes = b""
    max_bytes: int = 16384
    overload_response: bytes = b""

    def __post_init__(self) -> None:
        if not callable(self.complete):
            raise ValueError(f"DispatchFilter: complete must be callable, not {self.complete!r}")
        for option in ("timeout_response", "overload_response"):
            if not isinstance(getattr(self, option), bytes):
                raise ValueError(f"DispatchFilter: {option} must be bytes, "
                                 f"not {getattr(self, option)!r}")
        for option in ("idle_timeout", "request_timeout"):
            value = getattr(self, option)
            if value is not None:
                seconds = check_number(f"DispatchFilter: {option}", value, allow_infinity=True)
                object.__setattr__(self, option, seconds)
        size = self.max_bytes
        if isinstance(size, bool) or not isinstance(size, int) \
                or not 1 <= size <= MAX_FILE_BYTES:
            raise ValueError("DispatchFilter: max_bytes must be an int from 1 to "
                             f"{MAX_FILE_BYTES},"
                             f" not {size!r}")


    def arrived(self, data: bytes, start: int) -> bool:
        """Call `complete` with what it takes: the bytes, and where the new ones begin."""
        if _takes_start(self.complete):
            return bool(self.complete(data, start))
        return bool(self.complete(data))


def _takes_start(function: Callable[..., bool]) -> bool:
    """Whether `function` accepts a second positional argument (cached per function)."""
    known = _ARITY.get(function)
    if known is None:
        try:
            parameters = list(inspect.signature(function).parameters.values())
        except (TypeError, ValueError):
            parameters = []
        positional = [p for p in parameters
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
        known = len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in positional)
        with contextlib.suppress(TypeError):
            _ARITY[function] = known
    return known


_ARITY: weakref.WeakKeyDictionary[Callable[..., bool], bool] = weakref.WeakKeyDictionary()

MAX_BYTES = MAX_FILE_BYTES
"""The largest `DispatchFilter.max_bytes`: the most bytes of a request the master holds."""

ANY_BYTE = DispatchFilter(complete=bool)
"""The filter of a pool that has none: a parked connection goes back at its first byte."""


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """Everything a worker inherits about its pool: listeners, handlers, options."""

    index: int
    """The pool's position among the `listen()` calls, from 0 (`pool 0` in the log)."""
    listeners: tuple[ListenerSpec, ...]
    handlers: Handlers
    options: PoolOptions
    dispatch_filter: DispatchFilter | None = None
    """When the master hands a new or parked connection to a worker (`None` = at once)."""
