"""A callback that serves the files of one folder (``python -m layer3_http --static DIR``).

`static_handler(root)` returns an HTTP callback for GET and HEAD:

* the request path is split at ``/`` and each segment percent-decoded;
  a segment that decodes to ``.``, ``..``, or holds ``/``, ``\\`` or NUL
  is refused, and the real path (symbolic links resolved) must lie inside
  the real `root`, so no request reaches a file outside the folder;
* a segment that starts with a dot (``.env``, ``.git``, ``.htpasswd``) is
  refused too, unless `dotfiles` allows it: such files hold secrets far
  more often than pages;
* a folder is answered with its ``index.html``; asked for without its
  trailing slash, it is first redirected (301) to the URL with one, so
  relative links in the page work; the ``Location`` starts with exactly
  one ``/`` (``//name/`` would name another host);
* `Content-Type` comes from the file name (`mimetypes`); `Last-Modified`
  and a strong `ETag` (from size and modification time) let clients
  revalidate: ``If-None-Match`` (preferred) or ``If-Modified-Since`` give
  304 Not Modified;
* ``Range: bytes=...`` with a single range gives 206 Partial Content with
  `Content-Range` (416 when it lies past the end); several ranges, or a
  stale ``If-Range``, give the whole file (200), which RFC 9110 allows;
  a position of more than 18 digits (leading zeros aside) is past the end
  of any file: as a first position it is 416, as a last position the end
  of the file, as a suffix length the whole file (RFC 9110 section 14.1.2),
  so no number is ever converted whole;
* the bytes go out with ``os.sendfile`` when the connection allows it
  (see `Request.send_file`).

Choices: refused paths and missing files are 404 alike (nothing tells
which files exist outside the folder); a malformed percent escape or NUL is
400; other methods get 405 with `Allow: GET, HEAD`; folders without an
index are 404 (no listings).

Moonbridge: none; the original shipped no file server.
"""

from __future__ import annotations

import mimetypes
import os
import re
import stat
from collections.abc import Callable
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import unquote_to_bytes

from ._request import Request

__all__ = ["static_handler"]

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")
_BAD_SEGMENT = re.compile(r"[/\\\x00]")
_DIGITS = 18  # a byte position past 18 digits (10**18 bytes) lies past the end of any file
_PAST_ANY_END = 10**_DIGITS


class _Refused(Exception):
    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


def static_handler(root: str | os.PathLike[str], *, index: str = "index.html",
                   dotfiles: bool = False) -> Callable[[Request], None]:
    """Return a callback serving the files below `root`.

    Args:
        root: The folder to serve (it must exist).
        index: The file that answers for a folder.
        dotfiles: Serve files and folders whose name starts with a dot
            (``.env``, ``.git/``, ``.well-known/``); by default a path with
            such a segment is 404, like a missing file
            (``--static-dotfiles`` on the command line).

    Raises:
        ValueError: `root` is not a folder.

    Examples:
        >>> handler = static_handler(".")
        >>> callable(handler)
        True
    """
    base = os.path.realpath(os.fspath(root))
    if not os.path.isdir(base):
        raise ValueError(f"static root is not a folder: {os.fspath(root)!r}")

    def serve_static(request: Request) -> None:
        if request.method not in ("GET", "HEAD"):
            _plain(request, "405 Method Not Allowed", ("Allow", "GET, HEAD"))
            return
        try:
            path = _locate(base, request.path or "", index, dotfiles)
        except _Refused as refused:
            _plain(request, refused.status)
            return
        if isinstance(path, tuple):
            # One leading slash: "//name/" would be a network-path reference (another host).
            location = "/" + path[0].lstrip("/") + (request.query or "")
            _plain(request, "301 Moved Permanently", ("Location", location))
            return
        _serve_file(request, path)

    serve_static.__qualname__ = f"static_handler({os.fspath(root)!r})"
    return serve_static


def _locate(base: str, raw_path: str, index: str, dotfiles: bool) -> str | tuple[str]:
    """Return the file to serve, or `(path + "/",)` when a folder needs its slash.

    Raises:
        _Refused: 400 or 404.
    """
    segments = []
    for raw in raw_path.split("/"):
        try:
            segment = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise _Refused("400 Bad Request") from None
        if "\x00" in segment:
            raise _Refused("400 Bad Request")
        if segment in (".", "..") or _BAD_SEGMENT.search(segment):
            raise _Refused("404 Not Found")
        if segment.startswith(".") and not dotfiles:
            raise _Refused("404 Not Found")  # .env, .git/config: secrets, as a rule
        segments.append(segment)
    wanted = os.path.realpath(os.path.join(base, *segments))
    if os.path.commonpath([base, wanted]) != base:
        raise _Refused("404 Not Found")  # a symbolic link leads out of the folder
    try:
        info = os.stat(wanted)
    except OSError:
        raise _Refused("404 Not Found") from None
    if stat.S_ISDIR(info.st_mode):
        if raw_path and not raw_path.endswith("/"):
            return (raw_path + "/",)
        return _locate(base, raw_path + index, index, dotfiles)
    if not stat.S_ISREG(info.st_mode):
        raise _Refused("404 Not Found")
    return wanted


def _plain(request: Request, status: str, *headers: tuple[str, str]) -> None:
    request.send_status(status)
    request.send_header("Content-Type", "text/plain; charset=utf-8")
    for name, value in headers:
        request.send_header(name, value)
    request.send_data(status, "\n")


def _content_type(path: str) -> str:
    kind, encoding = mimetypes.guess_type(path)
    if kind is None or encoding is not None:
        return "application/octet-stream"
    return kind + "; charset=utf-8" if kind.startswith("text/") else kind


def _serve_file(request: Request, path: str) -> None:
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed below, after sendfile
    except OSError:
        _plain(request, "404 Not Found")
        return
    with file:
        info = os.fstat(file.fileno())
        etag = f'"{info.st_mtime_ns:x}-{info.st_size:x}"'
        modified = formatdate(int(info.st_mtime), usegmt=True)
        validators = (("ETag", etag), ("Last-Modified", modified))
        if _not_modified(request, etag, int(info.st_mtime)):
            request.send_status("304 Not Modified")
            for name, value in validators:
                request.send_header(name, value)
            return
        size = info.st_size
        span = _byte_range(request, etag, modified, size)
        if isinstance(span, str):
            _plain(request, "416 Range Not Satisfiable", ("Content-Range", f"bytes */{size}"))
            return
        start, end = span if span is not None else (0, size)
        request.send_status("206 Partial Content" if span is not None else "200 OK")
        request.send_header("Content-Type", _content_type(path))
        request.send_header("Content-Length", end - start)
        request.send_header("Accept-Ranges", "bytes")
        for name, value in validators:
            request.send_header(name, value)
        if span is not None:
            request.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        request.send_file(file, start, end - start)


def _not_modified(request: Request, etag: str, mtime: int) -> bool:
    """Evaluate If-None-Match, else If-Modified-Since (RFC 9110 section 13.2.2)."""
    tags = request.headers_csv_table["If-None-Match"]
    if tags:
        return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)
    since = request.headers_value["If-Modified-Since"]
    if not isinstance(since, str):
        return False
    try:
        return mtime <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError, IndexError):
        return False


def _byte_range(request: Request, etag: str, modified: str,
                size: int) -> tuple[int, int] | str | None:
    """Return the single range asked for as `(start, end)`, "unsatisfiable", or `None`."""
    value = request.headers_value["Range"]
    if request.method != "GET" or not isinstance(value, str):
        return None
    if_range = request.headers_value["If-Range"]
    if if_range is not None and if_range not in (etag, modified):
        return None  # the client's copy is stale: send it all
    match = _RANGE.fullmatch(value.replace(" ", ""))
    if match is None or (not match[1] and not match[2]):
        return None  # several ranges, or not a byte range: the whole file
    if not match[1]:
        length = _position(match[2])
        if length == 0 or size == 0:
            return "unsatisfiable"
        return max(size - length, 0), size
    start = _position(match[1])
    end = _position(match[2]) + 1 if match[2] else size
    if end <= start and match[2]:
        return None  # last < first: invalid, ignored
    if start >= size:
        return "unsatisfiable"
    return start, min(end, size)


def _position(digits: str) -> int:
    """A byte position or length, at most `_PAST_ANY_END` (never a conversion of 4300 digits).

    Examples:
        >>> _position("0042"), _position("9" * 5000) == _PAST_ANY_END
        (42, True)
    """
    digits = digits.lstrip("0")
    return int(digits or "0") if len(digits) <= _DIGITS else _PAST_ANY_END
