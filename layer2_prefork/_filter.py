"""The dispatch filter: when a connection the master holds is ready for a worker.

A pool with a dispatch filter does not serve a new connection whose
request has not arrived. The worker that accepted it reads its first
bytes for a moment; if they are not a whole request by
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

Invariants: a constructed filter is valid and never changes; `max_bytes`
never exceeds what a control message can carry (`MAX_FILE_BYTES`).
"""

from __future__ import annotations

import contextlib
import inspect
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from ._config import check_number
from ._protocol import MAX_FILE_BYTES


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
