"""The input buffer and the output queue: bytes in, bytes out, no sockets.

`InputBuffer` holds bytes that were received but not yet returned to the
caller. It answers one question, "is a complete result available for this
`maxlen` and `terminator`?", and hands out results. It remembers how far it
has already searched for a terminator, so a long line that arrives one byte
at a time is scanned once, not once per byte.

`OutputQueue` holds bytes that the caller wrote but the kernel has not yet
taken. Large immutable `bytes` objects are queued by reference (no copy);
everything else is copied, because the caller may change a `bytearray` after
handing it over.

Invariants:

* Bytes leave in the order they arrived; nothing is dropped or duplicated.
* Neither class keeps a `memoryview` of a `bytearray` between calls, so the
  bytearrays can always grow and shrink.
* Consumed space is given back: the input buffer compacts itself once most of
  it has been read, the output queue drops chunks as soon as they are sent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

__all__ = ["InputBuffer", "OutputQueue", "as_view"]

_COMPACT_AFTER = 64 * 1024  # compact the input buffer once this much is consumed
_KEEP_BY_REFERENCE = 64 * 1024  # bytes objects at least this big are not copied
_COALESCE_LIMIT = 256 * 1024  # small writes are gathered into chunks of this size


def as_view(data: object) -> memoryview:
    """Return a flat byte view of a bytes-like object.

    Raises:
        TypeError: `data` is a `str` (encoding is the caller's decision) or
            not a bytes-like object at all.
    """
    if isinstance(data, str):
        raise TypeError("write a bytes-like object, not str: encode the text first")
    view = memoryview(data)  # type: ignore[arg-type]  # raises TypeError if not bytes-like
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    return view


class InputBuffer:
    """Received bytes waiting to be returned, with a memo of the terminator search.

    Examples:
        >>> buffer = InputBuffer()
        >>> buffer.append(b"GET / HTTP/1.1\\r\\nHost")
        >>> buffer.complete(None, ord("\\n"))
        16
        >>> buffer.take(16)
        b'GET / HTTP/1.1\\r\\n'
        >>> buffer.complete(None, ord("\\n")) is None
        True
        >>> len(buffer)
        4
    """

    __slots__ = ("_data", "_scan_byte", "_scanned", "_start")

    def __init__(self) -> None:
        self._data = bytearray()
        self._start = 0  # index of the first unread byte in _data
        self._scanned = 0  # no terminator _scan_byte in _data[_start:_scanned]
        self._scan_byte = -1

    def __len__(self) -> int:
        return len(self._data) - self._start

    def append(self, data: bytes) -> None:
        """Add received bytes at the end."""
        self._data += data

    # --8<-- [start:complete]
    def complete(self, maxlen: int | None, terminator: int | None) -> int | None:
        """Length of the result that is complete now, or None if more input is needed.

        A result is complete when the terminator (included) lies within the
        first `maxlen` bytes, or when `maxlen` bytes are buffered.
        """
        size = len(self)
        end = len(self._data) if maxlen is None else self._start + min(size, maxlen)
        if terminator is not None:
            if terminator != self._scan_byte:
                self._scan_byte, self._scanned = terminator, self._start
            begin = max(self._scanned, self._start)
            found = self._data.find(terminator, begin, end)
            if found >= 0:
                return found + 1 - self._start
            self._scanned = max(begin, end)
        if maxlen is not None and size >= maxlen:
            return maxlen
        return None
    # --8<-- [end:complete]

    def unread(self, data: bytes) -> None:
        """Put `data` back in front of the unread bytes (a parser read too far).

        The consumed prefix is replaced in one slice assignment; the
        terminator memo starts again, since `data` has not been searched.

        Examples:
            >>> buffer = InputBuffer()
            >>> buffer.append(b"abcdef")
            >>> buffer.complete(None, ord("f")), buffer.take(2)
            (6, b'ab')
            >>> buffer.unread(b"xy")
            >>> buffer.complete(None, ord("y")), buffer.take(10)
            (2, b'xycdef')
        """
        self._data[:self._start] = data
        self._start = self._scanned = 0

    # --8<-- [start:take]
    def take(self, count: int) -> bytes:
        """Remove and return the first `count` bytes (at most what is buffered)."""
        start = self._start
        if start == 0 and count >= len(self._data):
            result = bytes(self._data)
        else:
            with memoryview(self._data) as view:
                result = bytes(view[start:start + count])
        self._advance(len(result))
        return result

    def drop(self, count: int) -> int:
        """Discard the first `count` bytes (at most what is buffered); return how many."""
        count = min(count, len(self))
        self._advance(count)
        return count

    def _advance(self, count: int) -> None:
        self._start += count
        if self._start >= len(self._data):
            self._data.clear()
            self._start = self._scanned = 0
        elif self._start >= _COMPACT_AFTER and self._start * 2 >= len(self._data):
            del self._data[:self._start]
            self._scanned = max(0, self._scanned - self._start)
            self._start = 0
    # --8<-- [end:take]


class OutputQueue:
    """Bytes written by the caller and not yet taken by the kernel.

    Examples:
        >>> queue = OutputQueue()
        >>> queue.append(memoryview(b"hello, "))
        >>> queue.append(memoryview(bytearray(b"world")))
        >>> len(queue)
        12
        >>> queue.send_head(lambda view: min(len(view), 5), limit=1024)
        5
        >>> bytes(queue.peek_all())
        b', world'
    """

    __slots__ = ("_chunks", "_head", "_size")

    def __init__(self) -> None:
        self._chunks: deque[memoryview | bytearray] = deque()
        self._head = 0  # bytes of _chunks[0] already sent
        self._size = 0

    def __len__(self) -> int:
        return self._size

    # --8<-- [start:queue]
    def append(self, view: memoryview) -> None:
        """Queue the bytes of a flat byte view (copied unless it views `bytes`)."""
        count = view.nbytes
        if not count:
            return
        if count >= _KEEP_BY_REFERENCE and isinstance(view.obj, bytes):
            self._chunks.append(view)
        else:
            last = self._chunks[-1] if self._chunks else None
            if isinstance(last, bytearray) and len(last) < _COALESCE_LIMIT:
                last += view
            else:
                self._chunks.append(bytearray(view))
        self._size += count

    def send_head(self, send: Callable[[memoryview], int], limit: int) -> int:
        """Offer up to `limit` bytes from the head to `send`; drop what it took.

        Args:
            send: Takes a view, returns how many bytes of it went out (0 when
                none could). The view is valid only during the call.
            limit: The most bytes to offer at once.

        Returns:
            The number of bytes sent.
        """
        if not self._chunks:
            return 0
        chunk, head = self._chunks[0], self._head
        with memoryview(chunk) as whole, whole[head:head + limit] as view:
            sent = send(view)
        self._head += sent
        self._size -= sent
        if self._head >= len(chunk):
            self._chunks.popleft()
            self._head = 0
        return sent
    # --8<-- [end:queue]

    def peek_all(self) -> bytes:
        """Return a copy of everything queued (for tests and small queues)."""
        parts = [bytes(chunk) for chunk in self._chunks]
        if parts:
            parts[0] = parts[0][self._head:]
        return b"".join(parts)

    def clear(self) -> None:
        """Drop everything queued."""
        self._chunks.clear()
        self._head = self._size = 0
