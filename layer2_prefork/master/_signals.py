"""Signals for a poll loop: the handler records, the loop acts.

Doing real work inside a signal handler is a trap: the handler interrupts
the loop at an arbitrary bytecode, half-way through updating the very state
it would touch. `SignalQueue` installs handlers that only append the
signal number to a queue. `signal.set_wakeup_fd` makes the interpreter
also write a byte to a socket pair whenever a signal arrives; the read end
is registered with the loop's selector, so a blocked poll returns at once
and the loop pops the queue at the top of its next round.
"""

from __future__ import annotations

import contextlib
import selectors
import signal
import socket
from collections import deque
from collections.abc import Iterable
from types import FrameType
from typing import Any


class SignalQueue:
    """Signals caught since the loop last looked, and the socket that wakes the poll.

    Args:
        numbers: The signals to catch.
    """

    def __init__(self, numbers: Iterable[int]) -> None:
        self.numbers = tuple(numbers)
        self.queue: deque[int] = deque()
        self.read_end, self.write_end = socket.socketpair()
        for sock in (self.read_end, self.write_end):
            sock.setblocking(False)
        self._previous: dict[int, Any] = {}
        self._previous_wakeup = -1

    def install(self, selector: selectors.BaseSelector) -> None:
        """Catch the signals and register the wake-up socket with `selector`."""
        selector.register(self.read_end, selectors.EVENT_READ, self._drain)
        self._previous_wakeup = signal.set_wakeup_fd(self.write_end.fileno(),
                                                     warn_on_full_buffer=False)
        for number in self.numbers:
            self._previous[number] = signal.signal(number, self._record)

    def _record(self, number: int, frame: FrameType | None) -> None:
        self.queue.append(number)

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self.read_end.recv(4096):
                pass

    def pop(self) -> int | None:
        """Return the oldest signal not yet handled, or `None`."""
        return self.queue.popleft() if self.queue else None

    def uninstall(self, ignore: Iterable[int] = ()) -> None:
        """Restore the previous handlers and wake-up descriptor; close the socket pair.

        Args:
            ignore: Signals to ignore from now on instead of restoring their old
                handler. The master passes its stop signals: once it has stopped,
                a late SIGTERM from an impatient supervisor must not turn a clean
                exit (status 0) into death by that signal.
        """
        ignored = set(ignore)
        signal.set_wakeup_fd(self._previous_wakeup)
        for number, handler in self._previous.items():
            if number in ignored:
                signal.signal(number, signal.SIG_IGN)
            else:
                signal.signal(number, signal.SIG_DFL if handler is None else handler)
        self._previous.clear()
        self.close()

    def close(self) -> None:
        """Close the socket pair (a new worker calls this after `set_wakeup_fd(-1)`)."""
        self.read_end.close()
        self.write_end.close()
