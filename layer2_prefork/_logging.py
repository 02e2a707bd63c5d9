"""Where the server's log goes, and how a worker's stderr becomes log lines.

The master logs through the standard `logging` module, on the logger
named `layer2_prefork`. The command line (or `run()`, when nothing
configured logging) installs the handlers: a file (`-l`), syslog
(`-f`/`-i`, or `-b` without `-l`) or stderr.

Log files survive rotation (logrotate): they are opened with
`logging.handlers.WatchedFileHandler`, which reopens the file when its
name comes to point at a new file (checked before each line), and
`reopen()` (the master calls it on `SIGUSR1`) does the same for every
log file of the process at once.

A worker's file descriptor 2 is one end of a socket pair; the master reads
the other end and logs each line with the pool and the worker's PID in
front (`LineSplitter` does the splitting, without I/O), so a
traceback printed by a dying worker lands in the same log as the master's
own lines, in order, before the line that reports the worker's exit.
"""

from __future__ import annotations

import io
import logging
import logging.handlers
import socket
import sys
from typing import cast

logger = logging.getLogger("layer2_prefork")
"""The master's logger."""

FORMAT = "%(asctime)s %(levelname)s %(message)s"
SYSLOG_ADDRESS = "/dev/log"
FACILITIES = tuple(sorted(logging.handlers.SysLogHandler.facility_names))
"""The names `-f/--logfacility` accepts."""
LEVELS = ("debug", "info", "warning", "error", "critical")
"""The names `--log-level` accepts."""


def configure(*, debug: bool = False, logfile: str | None = None,
              facility: str | None = None, ident: str | None = None,
              background: bool = False, target: logging.Logger | None = None,
              syslog_address: str = SYSLOG_ADDRESS,
              level: str | None = None) -> list[logging.Handler]:
    """Install the log handlers the command line asked for.

    A log file if `logfile` is given (`"-"` means stderr); syslog if
    `facility` or `ident` is given, or when running in the background
    without a log file; stderr otherwise. When syslog is wanted but
    `syslog_address` cannot be reached, the log goes to stderr and a
    warning says so.

    Args:
        debug: Log at `DEBUG` (every control message) instead of `INFO`.
        logfile: Append to this file (reopened after rotation); `"-"` for stderr.
        facility: A syslog facility name (see `FACILITIES`); default `daemon`.
        ident: The syslog identifier; default `layer2_prefork`.
        background: Whether the server will detach from the terminal.
        target: The logger to configure; default the root logger.
        syslog_address: The syslog socket.
        level: One of `LEVELS`; overrides `debug`.

    Returns:
        The handlers installed.

    Raises:
        ValueError: If the facility or level name is unknown.
        OSError: If the log file cannot be opened.
    """
    if facility is not None and facility not in FACILITIES:
        raise ValueError(f"unknown syslog facility {facility!r}")
    if level is not None and level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    target = target if target is not None else logging.getLogger()
    handlers: list[logging.Handler] = []
    if logfile == "-":
        handlers.append(logging.StreamHandler(sys.stderr))
        handlers[-1].setFormatter(logging.Formatter(FORMAT))
    elif logfile is not None:
        handlers.append(logging.handlers.WatchedFileHandler(logfile))
        handlers[-1].setFormatter(logging.Formatter(FORMAT))
    fallback = None
    if facility is not None or ident is not None or (background and logfile is None):
        try:
            handlers.append(_syslog(facility or "daemon", ident or "layer2_prefork",
                                    syslog_address))
        except OSError as error:
            fallback = f"syslog at {syslog_address} unavailable ({error}); logging to stderr"
    if not handlers:
        handlers.append(logging.StreamHandler(sys.stderr))
        handlers[-1].setFormatter(logging.Formatter(FORMAT))
    for handler in handlers:
        target.addHandler(handler)
    if level is not None:
        target.setLevel(level.upper())
    else:
        target.setLevel(logging.DEBUG if debug else logging.INFO)
    if fallback:
        logger.warning(fallback)
    return handlers


def reopen() -> int:
    """Reopen the log files of this process whose names now point at new files.

    After logrotate renamed a log file and created a new one, every
    `logging.FileHandler` of every logger writes to the file now at its
    path: a `logging.handlers.WatchedFileHandler` reopens when the file
    changed, any other file handler reopens in any case. A file that
    cannot be opened is left as it was and a warning names it.

    Returns:
        The number of file handlers looked at.
    """
    handlers: set[logging.Handler] = set(logging.getLogger().handlers)
    for candidate in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(candidate, logging.Logger):
            handlers.update(candidate.handlers)
    count = 0
    for handler in handlers:
        if not isinstance(handler, logging.FileHandler):
            continue
        try:
            if isinstance(handler, logging.handlers.WatchedFileHandler):
                handler.reopenIfNeeded()
            else:
                stream = open(handler.baseFilename, handler.mode,  # noqa: SIM115
                              encoding=handler.encoding, errors=handler.errors)
                old = handler.setStream(cast(io.TextIOWrapper, stream))
                if old is not None:
                    old.close()
        except OSError as error:
            logger.warning("cannot reopen the log file %s: %s", handler.baseFilename, error)
            continue
        count += 1
    return count


def _syslog(facility: str, ident: str, address: str) -> logging.Handler:
    _probe(address)  # SysLogHandler itself ignores an unreachable socket
    code = logging.handlers.SysLogHandler.facility_names[facility]
    handler = logging.handlers.SysLogHandler(address=address, facility=code)
    handler.setFormatter(logging.Formatter(f"{ident}[%(process)d]: %(levelname)s %(message)s"))
    return handler


def _probe(address: str) -> None:
    """Raise `OSError` unless a syslog daemon listens at `address`."""
    error: OSError = FileNotFoundError(address)
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_UNIX, kind) as probe:
            try:
                probe.connect(address)
                return
            except OSError as failure:
                error = failure
    raise error


def ensure_handler() -> None:
    """Log to stderr at `INFO` if nothing configured logging (a script run directly)."""
    if not logging.getLogger().handlers and not logger.handlers:
        logging.basicConfig(level=logging.INFO, format=FORMAT)


class LineSplitter:
    """Split a byte stream into text lines, as a worker's stderr arrives.

    Lines longer than `limit` bytes are cut into pieces of `limit`
    bytes, so a worker that never writes a newline cannot make the master
    buffer without bound. Bytes that are not UTF-8 are replaced.

    Args:
        limit: The longest line kept whole, in bytes.

    Examples:
        >>> lines = LineSplitter()
        >>> lines.feed(b"Traceback (most\\n recent")
        ['Traceback (most']
        >>> lines.feed(b" call last):\\n")
        [' recent call last):']
        >>> lines.flush()
        []
    """

    def __init__(self, limit: int = 8192) -> None:
        self._limit = limit
        self._pending = b""

    def feed(self, data: bytes) -> list[str]:
        """Add bytes; return the lines completed by them (without the newline)."""
        *complete, self._pending = (self._pending + data).split(b"\n")
        while len(self._pending) > self._limit:
            complete.append(self._pending[:self._limit])
            self._pending = self._pending[self._limit:]
        lines: list[str] = []
        for line in complete:
            while len(line) > self._limit:
                lines.append(_text(line[:self._limit]))
                line = line[self._limit:]
            lines.append(_text(line))
        return lines

    def flush(self) -> list[str]:
        """Return the last, unterminated line, if there is one (at end of stream)."""
        pending, self._pending = self._pending, b""
        return [_text(pending)] if pending else []


def _text(line: bytes) -> str:
    return line.rstrip(b"\r").decode("utf-8", errors="replace")


def pid_prefix(pool: int, pid: int) -> str:
    """The prefix of a worker's log lines, e.g. `pool 0 worker 1234`."""
    return f"pool {pool} worker {pid}"

