"""The watchdog a handler arms against itself: `timeout(...)`.

A worker that hangs (an endless loop, a peer that never answers) must not
pin a process for ever. `timeout(seconds)` arms the process's real-time
interval timer (`setitimer(ITIMER_REAL)`); when it expires the kernel
sends `SIGALRM`, whose default action ends the process. Nothing in the
handler can catch that, which is the point: the master sees the worker die
and forks a replacement.

The module keeps a stack of absolute deadlines, one per nesting level of
`timeout(seconds, func, *args)`. The timer is always armed for the
*earliest* deadline on the stack, so a sub-limit can shorten the time left
but never extend it, and when `func` returns the outer deadline is
restored with the time `func` took already spent. The worker calls
`disarm()` whenever it becomes idle, so a limit never outlives the
request that set it.

`timeout_each(seconds, func, *args)` is the same as
`timeout(seconds, func, *args)` for work repeated in a loop, such as one
request after another on a keep-alive connection, where two `setitimer`
calls per request would be a tenth of a short request's cost. It sets the
kernel's timer lazily:

* a deadline only slightly later than the one the timer is already set
  for (by at most `TOLERANCE` of the limit: 36 s of an hour) leaves the
  timer as it is, so the limit may end up to 1 % early, never late;
* when it returns to no limit at all, a timer still at least
  `seconds / 2` away stays set ("stale"), for the next call to keep.

So after the loop, before a wait longer than `seconds / 2` without a
limit, the caller disarms it with `timeout(0)` (layer 3 does, between
requests). `timeout` itself is always exact.

Between connections the worker calls `rest()`, not `disarm()`: a stale
timer at least `REST_FAR` seconds away (and at least half its limit) stays
set, so a busy worker with a long limit (layer 3's `response_timeout`,
an hour by default) sets the kernel's timer once every 1 % of the limit
instead of twice a connection. The idle worker's poll ends before the
timer comes closer than that (`idle_wait`), and then disarms it; so the
next connection always starts with the timer at least that far away or
disarmed, and what it does before its own `timeout_each` (layer 3: the
wait for the first request) must disarm it first if it may wait longer.
An interval timer's handler, `prepare` and `finish` start with the timer
disarmed, as before. The timer's `SIGALRM` keeps its default action
throughout (no Python handler that decides): a handler stuck inside one
C call is killed as surely as one spinning in Python.
"""

from __future__ import annotations

import math
import signal
import time
from collections.abc import Callable
from typing import TypeVar, TypeVarTuple, overload

from .._config import check_number

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# Deadlines in time.monotonic() seconds; math.inf = no limit at that level.
_deadlines: list[float] = [math.inf]
_armed = math.inf
"""The deadline the kernel's timer is set for (`inf`: disarmed); may be stale, see above."""
_SMALLEST = 1e-6  # setitimer treats 0 as "disarm"; an expired deadline fires at once
TOLERANCE = 0.01
"""How much earlier than asked (a share of the limit) the timer may fire, to save a re-arm."""
REST_FAR = 600.0
"""Seconds a stale timer must be away at least to stay set between connections (`rest`)."""
_stale_half = 0.0
"""> 0: the timer is stale, left by `timeout_each` with a limit of twice this; 0: it is not."""


def _arm(seconds: float = 0.0, returning: bool = False) -> None:
    """Set the kernel's timer for the earliest deadline, unless it is close enough already.

    Args:
        seconds: The length of the limit being armed or left (0: be exact).
        returning: A `timeout(seconds, func)` returns: a timer left for no
            limit may stay set if it is at least `seconds / 2` away.
    """
    global _armed, _stale_half
    deadline = min(_deadlines)
    now = time.monotonic()
    if math.isinf(deadline):
        if returning and not math.isinf(_armed) and _armed - now >= seconds / 2 > 0:
            _stale_half = seconds / 2
            return  # stale, but far enough: the next request re-arms it
        _stale_half = 0.0
        if not math.isinf(_armed):
            signal.setitimer(signal.ITIMER_REAL, 0)
            _armed = math.inf
        return
    _stale_half = 0.0  # the timer serves a deadline now
    if not (_armed <= deadline and deadline - _armed <= seconds * TOLERANCE):
        signal.setitimer(signal.ITIMER_REAL, max(deadline - now, _SMALLEST))
        _armed = deadline


@overload
def timeout() -> float: ...
@overload
def timeout(seconds: float, /) -> float: ...
@overload
def timeout(seconds: float, func: Callable[[*Ts], T], /, *args: *Ts) -> T: ...


def timeout(seconds: float | None = None, func: Callable[..., object] | None = None,
            /, *args: object) -> object:
    """Query, arm or disarm the watchdog, or run a function under a sub-limit.

    * `timeout()` returns the seconds left before the process is killed,
      or 0.0 when no limit is armed.
    * `timeout(seconds)` kills the process `seconds` from now unless it is
      disarmed or re-armed first; it returns `seconds`.
    * `timeout(0)` disarms the limit set at this level and returns 0.0.
    * `timeout(seconds, func, *args)` returns `func(*args)`, killing the
      process if it takes longer than `seconds` or than the outer limit,
      whichever ends first. The outer limit is restored afterwards, also when
      `func` raises.

    The watchdog is disarmed automatically when `prepare` or `connect`
    returns. It works in any process, so do not arm it in the master (a
    script's top level): there it would kill the server.

    Args:
        seconds: Seconds from now, >= 0.
        func: A function to run under the limit.
        *args: Positional arguments for `func`.

    Returns:
        The seconds left, or what `func` returned.

    Raises:
        ValueError: If `seconds` is negative or not a number.

    Examples:
        >>> timeout(30)
        30
        >>> 29 < timeout() <= 30
        True
        >>> timeout(5, lambda x: x * 2, 21)
        42
        >>> 29 < timeout() <= 30
        True
        >>> timeout(0)
        0.0

    Moonbridge: `timeout(...)`.
    """
    if seconds is None:
        if func is not None:
            raise ValueError("timeout: seconds is required with a function")
        left = min(_deadlines) - time.monotonic()
        return 0.0 if math.isinf(left) else max(left, 0.0)
    check_number("timeout: seconds", seconds)
    if func is None:
        _deadlines[-1] = time.monotonic() + seconds if seconds > 0 else math.inf
        _arm()  # exact: a plain arm or disarm is never lazy
        return seconds if seconds > 0 else 0.0
    _deadlines.append(time.monotonic() + seconds)
    _arm()
    try:
        return func(*args)
    finally:
        _deadlines.pop()
        _arm()


def timeout_each(seconds: float, func: Callable[[*Ts], T], /, *args: *Ts) -> T:
    """`timeout(seconds, func, *args)` for a loop of calls: the timer is set once, not twice a call.

    See the module's docstring: the limit may end up to 1 % early, and
    after the loop a timer may stay set for a deadline at least
    `seconds / 2` away until `timeout(0)` disarms it, also into the
    worker's next connection when it is at least `REST_FAR` away (the
    idle worker disarms it before it comes nearer).

    Examples:
        >>> [timeout_each(1000, lambda n: n * 2, n) for n in range(3)]
        [0, 2, 4]
        >>> timeout(0)
        0.0

    Moonbridge: none (the original sets the timer per call).
    """
    check_number("timeout_each: seconds", seconds)
    _deadlines.append(time.monotonic() + seconds)
    _arm(seconds)
    try:
        return func(*args)
    finally:
        _deadlines.pop()
        _arm(seconds, returning=True)


def disarm() -> None:
    """Disarm every level of the watchdog (before and after `prepare` and `finish`, say)."""
    global _armed, _stale_half
    del _deadlines[1:]
    _deadlines[0] = math.inf
    _stale_half = 0.0
    if not math.isinf(_armed):
        signal.setitimer(signal.ITIMER_REAL, 0)
        _armed = math.inf


def _far_enough(now: float) -> bool:
    """Is the timer stale and at least `REST_FAR` and half its limit away?"""
    return _stale_half > 0 and _armed - now >= max(REST_FAR, _stale_half)


def rest() -> None:
    """Drop every level's limit, as `disarm()`, but leave a stale timer that is far enough set.

    The worker calls this after a connection; see the module's docstring.
    """
    del _deadlines[1:]
    _deadlines[0] = math.inf
    if not _far_enough(time.monotonic()):
        disarm()


def idle_wait(milliseconds: int | None) -> int | None:
    """Bound an idle wait of `milliseconds` (`None`: no limit) so a stale timer never gets near.

    Returns the milliseconds the worker's idle poll may wait; when a stale
    timer has come as close as `rest` allows, it is disarmed here and the
    wait is left as it was.
    """
    if _stale_half <= 0 or not math.isinf(min(_deadlines)):
        return milliseconds
    now = time.monotonic()
    if not _far_enough(now):
        disarm()
        return milliseconds
    bound = math.ceil((_armed - max(REST_FAR, _stale_half) - now) * 1000)
    return bound if milliseconds is None else min(milliseconds, bound)
