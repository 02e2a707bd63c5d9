"""Strict CRLF lines and field lines: the piece every parser here shares.

`InputBuffer` collects the bytes a parser is fed and cuts them into lines
that end in CRLF, or hands out raw bytes (chunk data, multipart content).
The head parser, the chunked decoder's size lines and trailers, and the
multipart parser's part headers all read lines through it, so the strict
rules live in one place:

* a line ends in CRLF; a bare LF or a CR not followed by LF is a 400;
* a line may be limited in length (request line: 414) and the lines of a
  section in total (head: 431), and a limit is checked before anything
  else about the bytes that break it.

Invariant (what makes every split of the input give the same answer): an
error is reported at the byte where it becomes certain, and the checks are
made in byte order. Feeding a request whole, line by line or byte by byte
therefore raises the same `ClientError`, or none. The scan position is
kept between feeds, so bytes fed one at a time cost O(1) each, not a rescan
of the line.

The field-line rule (`parse_field_line`) is here too; the grammar it applies
(tokens, field values) is `_abnf`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

from ._abnf import FIELD_CONTROL_BYTES, TOKEN_BYTES
from ._errors import ClientError

__all__ = ["InputBuffer", "Limit", "ReadHint", "parse_field_line"]

_CR = 0x0D
_CR_OR_LF = re.compile(rb"[\r\n]")
_OWS = b" \t"


class ReadHint(NamedTuple):
    """The largest read that cannot overrun the current element.

    Passing it to `BufferedSocket.read_nb(maxlen, terminator)` or
    `read_call(wait, maxlen, terminator)` means the parser never receives
    bytes past its end, so nothing has to be given back.
    """

    maxlen: int
    terminator: bytes | None


@dataclass(frozen=True, slots=True)
class Limit:
    """A size limit and the client error that breaking it gives.

    Args:
        size: The largest allowed number of bytes.
        status: The status of the error raised past the limit.
        what: What is limited, for the message ("request line", "head").
    """

    size: int
    status: int
    what: str

    def error(self) -> ClientError:
        """Return the error to raise when the limit is broken."""
        return ClientError(self.status, f"{self.what} larger than {self.size} bytes")


class InputBuffer:
    """Bytes received and not yet consumed, cut into strict CRLF lines.

    Examples:
        >>> buffer = InputBuffer()
        >>> buffer.append(b"one\\r\\ntw")
        >>> buffer.take_line()
        b'one'
        >>> buffer.take_line() is None
        True
        >>> buffer.append(b"o\\r\\nrest")
        >>> buffer.take_line(), buffer.take_all()
        (b'two', b'rest')
    """

    __slots__ = ("_data", "_scan")

    def __init__(self) -> None:
        self._data = bytearray()
        self._scan = 0  # bytes of the current line already known to hold no CR/LF

    def __len__(self) -> int:
        return len(self._data)

    def append(self, data: bytes) -> None:
        """Add received bytes at the end."""
        self._data += data

    def take(self, size: int) -> bytes:
        """Remove and return up to `size` bytes from the front."""
        piece = bytes(self._data[:size])
        del self._data[:size]  # cheap: bytearray deletes at the front in O(1)
        self._scan = 0
        return piece

    def take_all(self) -> bytes:
        """Remove and return everything buffered."""
        return self.take(len(self._data))

    def find(self, sub: bytes, start: int = 0) -> int:
        """Return the index of `sub` in the buffer, or -1."""
        return self._data.find(sub, start)

    def peek(self, size: int) -> bytes:
        """Return up to `size` bytes from the front without removing them."""
        return bytes(self._data[:size])

    def tail(self, size: int) -> bytes:
        """Return up to `size` bytes from the end without removing them."""
        return bytes(self._data[max(0, len(self._data) - size) :])

    # --8<-- [start:take-line]
    def take_line(
        self, length: Limit | None = None, total: Limit | None = None, used: int = 0
    ) -> bytes | None:
        """Remove and return the next line without its CRLF, if complete.

        Args:
            length: Limit on the line's bytes before the CRLF.
            total: Limit on the bytes of the whole section the line is in,
                CRLFs included.
            used: Bytes of that section taken before this line.

        Returns:
            The line, or `None` when its end has not arrived yet (the bytes
            stay buffered).

        Raises:
            ClientError: 400 for a bare LF or CR, or the limit's error.
        """
        data = self._data
        match = _CR_OR_LF.search(data, self._scan)
        if match is None:
            self._scan = len(data)
            self._check(len(data), len(data), length, total, used)
            return None
        end = match.start()
        if data[end] != _CR:
            self._check(end, end + 1, length, total, used)
            raise ClientError(400, "line ends in a bare LF (CRLF required)")
        if end + 1 == len(data):  # a CR last: wait for the next byte
            self._scan = end
            self._check(end, end + 1, length, total, used)
            return None
        if data[end + 1] != 0x0A:
            self._check(end + 1, end + 2, length, total, used)
            raise ClientError(400, "bare CR in a line")
        self._check(end, end + 2, length, total, used)
        line = bytes(data[:end])
        del data[: end + 2]
        self._scan = 0
        return line

    def _check(
        self, content: int, seen: int, length: Limit | None, total: Limit | None, used: int
    ) -> None:
        """Raise the first limit that `content` line bytes or `seen` bytes break.

        Each break is placed at the byte that makes it certain, so a limit
        found in a long buffer is the one a byte-by-byte feed finds first.
        """
        breaks: list[tuple[int, int, Limit]] = []
        if length is not None and content > length.size:
            # A CR at the limit is only known to be content once the next
            # byte shows it is not the start of the CRLF.
            at = length.size + (1 if self._data[length.size] == _CR else 0)
            breaks.append((at, 0, length))
        if total is not None and used + seen > total.size:
            breaks.append((total.size - used, 1, total))
        if breaks:
            raise min(breaks)[2].error()
    # --8<-- [end:take-line]


# --8<-- [start:field-line]
def parse_field_line(line: bytes) -> tuple[str, str]:
    """Split a field line into its name and value (RFC 9112 section 5).

    Args:
        line: The line without its CRLF.

    Returns:
        The name as sent and the value without surrounding whitespace, both
        decoded as ISO-8859-1.

    Raises:
        ClientError: 400 for obs-fold (a line starting with whitespace), a
            missing colon, a name that is not a token (whitespace before
            the colon included), or a control character or NUL in the value.

    Examples:
        >>> parse_field_line(b"Host:  example.com ")
        ('Host', 'example.com')
    """
    if line[:1] in (b" ", b"\t"):
        raise ClientError(400, "obsolete line folding or whitespace before a field line")
    colon = line.find(b":")
    if colon < 0:
        raise ClientError(400, "field line without a colon")
    name = line[:colon]
    if TOKEN_BYTES.fullmatch(name) is None:
        if name[-1:] in (b" ", b"\t"):
            raise ClientError(400, "whitespace between field name and colon")
        raise ClientError(400, "field name is not a token")
    value = line[colon + 1 :]
    if FIELD_CONTROL_BYTES.search(value) is not None:
        raise ClientError(400, "control character in a field value")
    return name.decode("ascii"), value.strip(_OWS).decode("iso-8859-1")
# --8<-- [end:field-line]
