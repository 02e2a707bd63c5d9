"""The access log: one line per request, in Common or Combined Log Format.

`AccessLog` turns an `AccessEntry` (what happened to one request) into a
line and logs it on the logger ``layer3_http.access`` at level `INFO`,
so where the lines go is the `logging` module's business: the command
line's ``--access-log FILE|-`` installs a handler that reopens its file
after rotation; a script installs its own.

Formats use the directives of Apache's ``mod_log_config`` that make sense
here:

| directive | value |
| --- | --- |
| ``%h`` | client address (after trusted proxies; ``unix`` for a Unix peer) |
| ``%a`` | the socket peer's address (the proxy, behind one) |
| ``%l`` | always ``-`` (identd) |
| ``%u`` | user name of a Basic ``Authorization``, else ``-`` |
| ``%t`` | time the request arrived, ``[10/Oct/2000:13:55:36 +0200]`` |
| ``%r`` | request line, ``GET /a?b HTTP/1.1`` |
| ``%s``, ``%>s`` | status code |
| ``%b`` / ``%B`` | body bytes sent, ``-`` / ``0`` for none |
| ``%D`` / ``%T`` | time taken, microseconds / whole seconds |
| ``%m``, ``%U``, ``%q``, ``%H`` | method, path, query (with ``?``), protocol |
| ``%{Name}i`` | a request header (``-`` when absent) |
| ``%P`` | the worker's PID |
| ``%%`` | a percent sign |

``common`` and ``combined`` name the two classic formats. Values that come
from the client are escaped (``"`` and ``\\`` get a backslash, other
bytes outside printable ASCII become ``\\xHH``), so a line is always one
line and a quoted field cannot be broken out of.

Invariants: a format is compiled once, when the options are built (an
unknown directive is a `ValueError` before any fork); formatting never
raises.
"""

from __future__ import annotations

import base64
import binascii
import logging
import logging.handlers
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["COMBINED", "COMMON", "AccessEntry", "AccessLog", "configure_access_log", "escape"]

COMMON = '%h %l %u %t "%r" %>s %b'
"""The Common Log Format."""
COMBINED = COMMON + ' "%{Referer}i" "%{User-Agent}i"'
"""The Combined Log Format: Common plus referrer and user agent."""
NAMED = {"common": COMMON, "combined": COMBINED}

logger = logging.getLogger("layer3_http.access")
"""Where the lines go (level `INFO`)."""

_DIRECTIVE = re.compile(r"%(?:\{([^}]*)\}([a-zA-Z])|(>?[a-zA-Z%]))")
_UNSAFE = re.compile(r'[^\x20-\x7e]|["\\]')
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True, slots=True)
class AccessEntry:
    """What the access log knows about one request.

    Attributes:
        client: The client address (after trusted proxies), `None` for Unix.
        peer: The socket peer's address, `None` for Unix.
        method: The method, ``"-"`` for a request whose head was unreadable.
        target: The request target as sent, ``"-"`` when unknown.
        version: ``"HTTP/1.1"`` or ``"HTTP/1.0"``; ``""`` when unknown.
        status: The status code sent, 0 when none was.
        body_bytes: Response body bytes sent.
        started: When the request arrived (`time.time()`).
        duration: Seconds from its arrival to the end of the response.
        fields: The request header fields.
    """

    client: str | None
    peer: str | None
    method: str
    target: str
    version: str
    status: int
    body_bytes: int
    started: float
    duration: float
    fields: Sequence[tuple[str, str]] = ()

    def field(self, name: str) -> str | None:
        """The first value of the request header `name`, or `None`."""
        lower = name.lower()
        return next((value for key, value in self.fields if key.lower() == lower), None)


def escape(text: str) -> str:
    r"""Make client text safe inside a log line.

    Examples:
        >>> escape('say "hi"\x1b')
        'say \\"hi\\"\\x1b'
    """
    return _UNSAFE.sub(_escaped, text)


def _escaped(match: re.Match[str]) -> str:
    char = match[0]
    if char in '"\\':
        return "\\" + char
    return "".join(f"\\x{byte:02x}" for byte in char.encode("utf-8"))


def _timestamp(seconds: float) -> str:
    local = time.localtime(seconds)
    offset = local.tm_gmtoff or 0
    sign = "+" if offset >= 0 else "-"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return (f"[{local.tm_mday:02d}/{_MONTHS[local.tm_mon - 1]}/{local.tm_year}:"
            f"{local.tm_hour:02d}:{local.tm_min:02d}:{local.tm_sec:02d} "
            f"{sign}{hours:02d}{minutes:02d}]")


def _user(entry: AccessEntry) -> str:
    value = entry.field("Authorization")
    if value is None or value[:6].lower() != "basic ":
        return "-"
    try:
        decoded = base64.b64decode(value[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "-"
    user = decoded.partition(":")[0]
    return escape(user) if user else "-"


def _request_line(entry: AccessEntry) -> str:
    if not entry.version:
        return "-"
    return escape(f"{entry.method} {entry.target} {entry.version}")


def _path_and_query(entry: AccessEntry) -> tuple[str, str]:
    path, mark, query = entry.target.partition("?")
    return escape(path), escape(mark + query)


Part = Callable[[AccessEntry], str]

_SIMPLE: dict[str, Part] = {
    "h": lambda e: escape(e.client) if e.client else "unix",
    "a": lambda e: e.peer or "unix",
    "l": lambda e: "-",
    "u": _user,
    "t": lambda e: _timestamp(e.started),
    "r": _request_line,
    "s": lambda e: str(e.status) if e.status else "-",
    ">s": lambda e: str(e.status) if e.status else "-",
    "b": lambda e: str(e.body_bytes) if e.body_bytes else "-",
    "B": lambda e: str(e.body_bytes),
    "D": lambda e: str(int(e.duration * 1_000_000)),
    "T": lambda e: str(int(e.duration)),
    "m": lambda e: escape(e.method),
    "U": lambda e: _path_and_query(e)[0],
    "q": lambda e: _path_and_query(e)[1],
    "H": lambda e: e.version or "-",
    "P": lambda e: str(os.getpid()),
    "%": lambda e: "%",
}


def _header(name: str) -> Part:
    def part(entry: AccessEntry) -> str:
        value = entry.field(name)
        return "-" if value is None else escape(value)
    return part


def _literal(text: str) -> Part:
    return lambda entry: text


def compile_format(text: str) -> list[Part]:
    """Turn a format (or ``common``, ``combined``) into the parts of a line.

    Raises:
        ValueError: An unknown directive, or a ``%`` that starts none.

    Examples:
        >>> len(compile_format("common"))
        13
        >>> compile_format("%Z")
        Traceback (most recent call last):
        ...
        ValueError: access log format: unknown directive '%Z'
    """
    text = NAMED.get(text, text)
    parts: list[Part] = []
    position = 0
    for match in _DIRECTIVE.finditer(text):
        literal = text[position:match.start()]
        if "%" in literal:
            raise ValueError(f"access log format: a lone '%' in {text!r}")
        if literal:
            parts.append(_literal(literal))
        name, kind, simple = match.groups()
        if simple is not None and simple in _SIMPLE:
            parts.append(_SIMPLE[simple])
        elif kind == "i" and name:
            parts.append(_header(name))
        else:
            raise ValueError(f"access log format: unknown directive {match[0]!r}")
        position = match.end()
    if "%" in text[position:]:
        raise ValueError(f"access log format: a lone '%' in {text!r}")
    if text[position:]:
        parts.append(_literal(text[position:]))
    return parts


class AccessLog:
    """Formats and logs one line per request.

    Args:
        format: A format string (see the module's table), ``"common"`` or
            ``"combined"``.

    Raises:
        ValueError: The format is not valid.

    Examples:
        >>> entry = AccessEntry("192.0.2.1", "127.0.0.1", "GET", "/a?b=1", "HTTP/1.1",
        ...                     200, 5, 0.0, 0.001, [("User-Agent", "curl/8")])
        >>> AccessLog("%h \\"%r\\" %>s %b \\"%{User-Agent}i\\" %D").line(entry)
        '192.0.2.1 "GET /a?b=1 HTTP/1.1" 200 5 "curl/8" 1000'
    """

    def __init__(self, format: str = "common") -> None:
        self.format = NAMED.get(format, format)
        self._parts = compile_format(self.format)

    def __repr__(self) -> str:
        return f"AccessLog({self.format!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AccessLog) and other.format == self.format

    def __hash__(self) -> int:
        return hash(self.format)

    def line(self, entry: AccessEntry) -> str:
        """The log line for `entry` (without a newline)."""
        return "".join(part(entry) for part in self._parts)

    def emit(self, entry: AccessEntry) -> None:
        """Log the line for `entry` on ``layer3_http.access``, if that logger takes `INFO`."""
        if logger.isEnabledFor(logging.INFO):
            logger.info("%s", self.line(entry))


def configure_access_log(target: str) -> logging.Handler:
    """Send the access log lines to a file or to stdout (what ``--access-log`` does).

    The lines go there only: the logger ``layer3_http.access`` stops
    passing them on to the root logger (the error log).

    Args:
        target: A file to append to (reopened when logrotate moved it:
            `logging.handlers.WatchedFileHandler`), or ``"-"`` for stdout.

    Returns:
        The handler installed.

    Raises:
        OSError: The file cannot be opened.
    """
    handler: logging.Handler
    if target == "-":
        handler = logging.StreamHandler(sys.stdout)
    else:
        handler = logging.handlers.WatchedFileHandler(target)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return handler
