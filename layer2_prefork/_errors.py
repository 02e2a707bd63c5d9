"""Errors and exit codes of the pre-forking server.

Three kinds of failure, kept apart on purpose:

* a bad option or listener is a `ValueError` raised by `listen()` (or by
  the listener's constructor) before anything forks, and names the option;
* a server that cannot start for another reason (no listener declared,
  `listen()` called inside a worker) raises `StartupError`;
* a worker that writes something the control protocol does not allow makes
  the master raise `ProtocolError` internally, and the master kills
  that worker (the error never leaves the master loop).

Kernel errors (a port already in use, a missing directory) pass through as
the `OSError` the kernel named.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit status of `python -m layer2_prefork` (and the value `run()` returns).

    Moonbridge: the exit codes of the `moonbridge` command.
    """

    STOP = 0
    """The server stopped on request (a signal, or the end of a `Main` listener)."""
    COMMAND_LINE = 1
    """The command line was wrong (unknown option, missing script, bad value)."""
    ALREADY_RUNNING = 2
    """Another instance holds the lock on the pidfile."""
    STARTUP_ERROR = 3
    """The server could not start (the script failed, no listener, a bind error)."""
    RUNTIME_ERROR = 4
    """The master loop itself failed; workers were killed and the server stopped."""


class StartupError(RuntimeError):
    """The server cannot start: no listener, or `listen()` called in a worker.

    Raised by `listen()` and `run()`; the command line turns it into
    exit code `ExitCode.STARTUP_ERROR`.
    """


class ProtocolError(Exception):
    """Bytes on a control socket that the control protocol does not allow.

    The master raises it while decoding a worker's messages and answers by
    killing that worker; a worker raises it on a malformed message from the
    master and exits.
    """
