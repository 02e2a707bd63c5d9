"""When the timer listeners of a pool are due, without I/O.

A pool's `Interval` and `Main` listeners are not sockets: the
master itself decides when they "have a connection". `Schedule`
keeps one due time per timer listener; the master asks it which are due,
hands each to an idle worker, and reports back when the run completed.

Rules:

* an `Interval` is first due `delay` seconds after the start; a run
  never overlaps the previous one of the same listener;
* after a run completes at time *c*, the next is due at *c + delay*; with
  `strict` it is due at *previous due + delay*, and if that is already in
  the past the missed runs collapse into one run now (the schedule stays on
  its grid: the next due time is the latest grid point not after *c*);
* a `Main` listener is due at the start and runs once; `Schedule.main_done()`
  turns true when every `Main` run of the pool has completed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .._config import Interval, ListenerSpec, Main


@dataclass(slots=True)
class _Timer:
    listener: Interval | Main
    due: float
    running: bool = False
    done: bool = False


def next_strict_due(previous_due: float, delay: float, now: float) -> float:
    """Return a strict interval's next due time after the run due at `previous_due`.

    Args:
        previous_due: When the run that just completed was due.
        delay: The interval's delay.
        now: The completion time.

    Returns:
        `previous_due + delay` if that is still ahead; otherwise the latest
        point of the grid `previous_due + k * delay` not after `now`, so
        that all missed runs collapse into a single run now.

    Examples:
        >>> next_strict_due(10.0, 1.0, 10.5)
        11.0
        >>> next_strict_due(10.0, 1.0, 13.5)
        13.0
    """
    following = previous_due + delay
    if following > now:
        return following
    return previous_due + delay * math.floor((now - previous_due) / delay)


class Schedule:
    """The due times of one pool's `Interval` and `Main` listeners.

    Args:
        listeners: The pool's listeners (sockets are ignored); their positions
            are the listener indexes used in `CONNECT` messages.
        now: The start time.
    """

    def __init__(self, listeners: Sequence[ListenerSpec], now: float) -> None:
        self._timers: dict[int, _Timer] = {}
        for index, listener in enumerate(listeners):
            if isinstance(listener, Interval):
                self._timers[index] = _Timer(listener, now + listener.delay)
            elif isinstance(listener, Main):
                self._timers[index] = _Timer(listener, now)

    def __contains__(self, index: int) -> bool:
        return index in self._timers

    def due(self, now: float) -> list[int]:
        """Return the indexes of the timers due now that are not running."""
        return [index for index, timer in self._timers.items()
                if not timer.running and not timer.done and timer.due <= now]

    def started(self, index: int) -> None:
        """Record that the timer's run was handed to a worker."""
        self._timers[index].running = True

    def running_runs(self) -> list[int]:
        """The timers whose run was handed out and has not ended."""
        return [index for index, timer in self._timers.items() if timer.running]

    def running(self, index: int) -> bool:
        """Whether the timer's run was handed out and has not ended yet."""
        timer = self._timers.get(index)
        return timer is not None and timer.running

    def completed(self, index: int, now: float) -> None:
        """Record that the timer's run ended (the worker is idle again, or died)."""
        timer = self._timers[index]
        timer.running = False
        listener = timer.listener
        if isinstance(listener, Main):
            timer.done = True
        elif listener.strict:
            timer.due = next_strict_due(timer.due, listener.delay, now)
        else:
            timer.due = now + listener.delay

    def next_deadline(self) -> float:
        """The earliest due time of a timer that is waiting (`inf` = none)."""
        return min((timer.due for timer in self._timers.values()
                    if not timer.running and not timer.done), default=math.inf)

    def has_main(self) -> bool:
        """Whether the pool has a `Main` listener."""
        return any(isinstance(timer.listener, Main) for timer in self._timers.values())

    def main_done(self) -> bool:
        """Whether every `Main` listener of the pool has run to its end."""
        return all(timer.done for timer in self._timers.values()
                   if isinstance(timer.listener, Main))
