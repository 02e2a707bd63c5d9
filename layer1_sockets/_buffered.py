"""The buffered socket: blocking and non-blocking calls on one connection.

Theory of operation. A `BufferedSocket` owns a connected stream socket whose
descriptor is always in non-blocking mode. Between the caller and the kernel
sit an input buffer and an output queue (`_buffers`), and a transport
(`_transport` for plain sockets, `_tls` once `starttls` ran). Every call is
built from three non-blocking steps, "take from the buffer", "receive more"
and "send some", and differs only in what it does when a step would block:

* the ``*_nb`` calls return at once (`None`, or the number of bytes still
  queued);
* the blocking calls wait until the descriptor is ready (with `selectors`,
  see `_poll`) and try again;
* the ``*_call`` forms call the caller's ``wait(sock, "r" | "w")`` instead,
  so a scheduler or a protocol layer can do something useful meanwhile.

Because the state lives in the buffers and not in the call, the styles mix
freely on one socket: a `read_nb` can follow a blocking `read`, a `flush`
can finish what a `flush_nb` began; no byte is lost or reordered.

The read loop lives in `_reader`, the sending rule (whole blocks, owed
flushes, ``TCP_NODELAY`` and ``TCP_CORK``) in `_writer`; this class is the
public face: argument checks, ending a connection, starting TLS.

Invariants:

* Errors are sticky per direction: after a failed receive every later read
  raises the same exception again, after a failed send every later write.
* A closed socket raises `SocketClosedError` (a `ValueError`) on any call but
  `close` and `reset`, which may be repeated.
* A result ending without the terminator and shorter than `maxlen` means
  EOF came (blocking reads) or nothing more was available (``read_nb``).
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self

from ._errors import SocketClosedError, SocketStateError
from ._info import SocketInfo
from ._poll import poll, wait_ready
from ._reader import Reader, terminator_byte
from ._tls import TLSTransport
from ._transport import PlainTransport
from ._writer import BLOCK, Writer

__all__ = ["BufferedSocket", "Wait"]

Wait = Callable[["BufferedSocket", str], object]
"""A waiting function: ``wait(sock, "r")`` or ``wait(sock, "w")``, returns when ready."""


class BufferedSocket(SocketInfo):
    """A connected stream socket with an input buffer and an output queue.

    Wraps a TCP (IPv4 or IPv6) or Unix stream socket and takes ownership of
    it: the descriptor is switched to non-blocking mode and closed by
    `close()` or `reset()`. Use it as a context manager to close it at the
    end of a block.

    Args:
        sock: A connected (or connecting) ``SOCK_STREAM`` socket.

    Raises:
        ValueError: `sock` is not a stream socket (it is closed then).

    Moonbridge: the socket object passed to a ``connect`` handler.

    Examples:
        >>> import socket
        >>> left, right = socket.socketpair()
        >>> with BufferedSocket(left) as a, BufferedSocket(right) as b:
        ...     _ = a.write(b"hello\\n", b"world").flush()
        ...     b.read(terminator=b"\\n"), b.read(maxlen=5)
        (b'hello\\n', b'world')
    """

    __slots__ = ("_closed", "_reader", "_writer")

    def __init__(self, sock: socket.socket) -> None:
        try:
            if sock.type != socket.SOCK_STREAM or isinstance(sock, ssl.SSLSocket):
                raise ValueError(f"BufferedSocket needs a plain stream socket, not {sock!r}"
                                 " (for TLS, use starttls)")
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().__init__(sock)
        except BaseException:
            sock.close()
            raise
        transport = PlainTransport(sock)
        self._reader = Reader(transport)
        self._writer = Writer(sock, transport)
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self._sock.fileno()}"
        kind = "tls" if self.tls else ("tcp" if self._writer.tcp else "unix")
        return f"<BufferedSocket {kind} {state}>"

    @property
    def closed(self) -> bool:
        """`True` once `close()` or `reset()` was called."""
        return self._closed

    @property
    def tls(self) -> bool:
        """`True` once `starttls()` succeeded."""
        return isinstance(self._reader.transport, TLSTransport)

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The `ssl.SSLObject` after `starttls()` (peer certificate, version), else `None`."""
        transport = self._reader.transport
        return transport.ssl_object if isinstance(transport, TLSTransport) else None

    @property
    def buffered(self) -> int:
        """Bytes of input received (or decrypted) but not yet returned by a read."""
        if self._closed:
            return 0
        return len(self._reader.buffer) + self._reader.transport.pending()

    @property
    def queued(self) -> int:
        """Bytes written but not yet taken by the kernel (0 after a completed flush)."""
        return 0 if self._closed else self._writer.queued()

    def fileno(self) -> int:
        """Return the descriptor number (for `poll` and `selectors`).

        Raises:
            SocketClosedError: The socket is closed.
        """
        self._check_open()
        return self._sock.fileno()

    def _check_open(self) -> None:
        if self._closed:
            raise SocketClosedError("I/O on a closed socket")

    # --8<-- [start:ready]
    def _ready_to_read(self) -> bool:
        """Would a read return without waiting for the kernel? (asked by `poll`)."""
        return not self._closed and self._reader.ready()
    # --8<-- [end:ready]

    def _waiter(self, wait: Wait, mode: str) -> Callable[[], None]:
        def wait_once() -> None:
            wait(self, mode)
            self._check_open()
        return wait_once

    # -- reading -------------------------------------------------------------

    # --8<-- [start:read]
    def read(self, maxlen: int | None = None, terminator: bytes | None = None) -> bytes:
        """Read until `maxlen` bytes, the terminator (included), or EOF, blocking as needed.

        Args:
            maxlen: The most bytes to return; `None` for no limit.
            terminator: A single byte (such as ``b"\\n"``) that ends the
                result; it is included.

        Returns:
            The bytes read. `b""` only at EOF with nothing read. A result
            without the terminator and shorter than `maxlen` means EOF came.

        Raises:
            ValueError: `maxlen` is not positive, or `terminator` is not one byte.
            SocketClosedError: The socket is closed.
            OSError: The kernel's error (such as `ConnectionResetError`); it
                is raised again by every later read.

        A flush that `flush_nb` left owed goes on while this waits, so
        ``flush_nb(request)`` followed by ``read()`` cannot deadlock.

        Moonbridge: ``socket:read(maxlen, terminator)``.
        """
        return self._read_with(self._wait_to_read, maxlen, terminator)
    # --8<-- [end:read]

    # --8<-- [start:read-nb]
    def read_nb(self, maxlen: int | None = None,
                terminator: bytes | None = None) -> bytes | None:
        """Read what is available now, up to the same limits as `read`; never block.

        If the terminator has not arrived yet, the bytes that did arrive are
        returned (the next call continues after them). An owed flush (see
        `flush_nb`) is continued on the way.

        Returns:
            The bytes read; `None` when nothing is available yet; `b""` at EOF.

        Moonbridge: ``socket:read_nb(maxlen, terminator)`` (which returns an
        empty string where this returns `None`).

        Examples:
            >>> import socket
            >>> left, right = socket.socketpair()
            >>> sock = BufferedSocket(left)
            >>> sock.read_nb() is None
            True
            >>> _ = right.send(b"partial line")
            >>> sock.read_nb(terminator=b"\\n")
            b'partial line'
            >>> right.close()
            >>> sock.read_nb()
            b''
            >>> sock.close()
        """
        term = terminator_byte(maxlen, terminator)
        self._check_open()
        self._writer.continue_flush()
        return self._reader.read_now(maxlen, term)
    # --8<-- [end:read-nb]

    def unread(self, data: bytes) -> None:
        """Push `data` back to the front of the input: the next read returns it first.

        For a parser that reads a whole chunk (fast: one read, not one per
        line) and finds that its message ended inside it.
        """
        self._check_open()
        self._reader.unread(data)

    def drain(self, maxlen: int | None = None, terminator: bytes | None = None) -> int:
        """Like `read`, but discard the bytes (memory stays flat); return how many (0 at EOF).

        Moonbridge: ``socket:drain(maxlen, terminator)``.
        """
        return self._drain_with(self._wait_to_read, maxlen, terminator)

    def drain_nb(self, maxlen: int | None = None, terminator: bytes | None = None) -> int | None:
        """Like `read_nb`, but discard the bytes; return how many.

        Returns:
            The number of bytes discarded; `None` when nothing is available
            yet; 0 at EOF.

        Moonbridge: ``socket:drain_nb(maxlen, terminator)``.
        """
        return self._input(None, maxlen, terminator, discard=True)

    def read_call(self, wait: Wait, maxlen: int | None = None,
                  terminator: bytes | None = None) -> bytes:
        """Like `read`, but call ``wait(self, "r")`` each time the read would block.

        `wait` returns when the socket may be readable, or after doing other
        work meanwhile (it may also raise, such as for a timeout); the read
        then tries again. Waiting on the socket with `poll` or `wait_ready`
        fits: a partial result in the buffer does not count as readable.

        Moonbridge: ``socket:read_call(waitfunc, maxlen, terminator)`` (1.x).
        """
        return self._read_with(self._waiter(wait, "r"), maxlen, terminator)

    def drain_call(self, wait: Wait, maxlen: int | None = None,
                   terminator: bytes | None = None) -> int:
        """Like `drain`, but call ``wait(self, "r")`` each time it would block.

        Moonbridge: ``socket:drain_call(waitfunc, maxlen, terminator)`` (1.x).
        """
        return self._drain_with(self._waiter(wait, "r"), maxlen, terminator)

    # --8<-- [start:input]
    def _read_with(self, wait: Callable[[], object], maxlen: int | None,
                   terminator: bytes | None) -> bytes:
        count = self._input(wait, maxlen, terminator, discard=False)
        assert count is not None
        return self._reader.take(count)

    def _drain_with(self, wait: Callable[[], object], maxlen: int | None,
                    terminator: bytes | None) -> int:
        count = self._input(wait, maxlen, terminator, discard=True)
        assert count is not None
        return count

    def _wait_to_read(self) -> None:
        """The blocking reads' wait, which also carries an owed flush on."""
        writer = self._writer
        if writer.flush_owed and writer.error is None:
            poll([self], [self])
            writer.continue_flush()
        else:
            wait_ready(self, "r")

    def _input(self, wait: Callable[[], object] | None, maxlen: int | None,
               terminator: bytes | None, discard: bool) -> int | None:
        term = terminator_byte(maxlen, terminator)
        self._check_open()
        if wait is None:
            self._writer.continue_flush()
        return self._reader.collect(wait, maxlen, term, discard)
    # --8<-- [end:input]

    # -- writing -------------------------------------------------------------

    # --8<-- [start:write]
    def write(self, *data: bytes | bytearray | memoryview) -> Self:
        """Queue data and send whole blocks, blocking as needed; return the socket.

        Less than one block (64 KiB) may stay queued: call `flush` (or
        `finish`, `close`) to send it.

        Raises:
            TypeError: An argument is a `str` or not bytes-like (nothing is queued).
            SocketFinishedError: `finish()` was called.
            SocketClosedError: The socket is closed.
            OSError: The kernel's error (such as `BrokenPipeError`); it is
                raised again by every later write.

        Moonbridge: ``socket:write(...)``.
        """
        return self.write_call(wait_ready, *data)

    def write_nb(self, *data: bytes | bytearray | memoryview) -> int:
        """Queue data and send what the kernel takes now; never block.

        Returns:
            0 if everything but a small tail (less than one block) went out,
            otherwise the number of bytes still queued. Unsent data stays
            queued and leaves with later calls.

        Moonbridge: ``socket:write_nb(...)``.
        """
        self._check_open()
        queued = self._writer.output(None, data, flush=False)
        return queued if self._writer.flush_owed or queued >= BLOCK else 0

    def flush(self, *data: bytes | bytearray | memoryview) -> Self:
        """`write` the data, then send everything queued; return the socket.

        Moonbridge: ``socket:flush(...)``.
        """
        return self.flush_call(wait_ready, *data)

    def flush_nb(self, *data: bytes | bytearray | memoryview) -> int:
        """Queue data and flush without blocking.

        Returns:
            The number of bytes still queued; 0 means the flush is done.
            Otherwise the flush stays owed: later ``*_nb`` calls (and any
            blocking write) continue it; `poll` with the socket among the
            writers tells when to call again.

        Moonbridge: ``socket:flush_nb(...)``.
        """
        self._check_open()
        return self._writer.output(None, data, flush=True)
    # --8<-- [end:write]

    def write_call(self, wait: Wait, *data: bytes | bytearray | memoryview) -> Self:
        """Like `write`, but call ``wait(self, "w")`` each time sending would block.

        Moonbridge: ``socket:write_call(waitfunc, ...)`` (1.x).
        """
        self._check_open()
        self._writer.output(self._waiter(wait, "w"), data, flush=False)
        return self

    def flush_call(self, wait: Wait, *data: bytes | bytearray | memoryview) -> Self:
        """Like `flush`, but call ``wait(self, "w")`` each time sending would block.

        Moonbridge: ``socket:flush_call(waitfunc, ...)`` (1.x).
        """
        self._check_open()
        self._writer.output(self._waiter(wait, "w"), data, flush=True)
        return self

    # -- ending --------------------------------------------------------------

    def finish(self) -> None:
        """Flush, then shut down the write direction: the peer sees EOF.

        Reading stays possible, so a clean ending is `finish()`, read (or
        drain) until EOF, then `close()`. With TLS the close_notify alert
        goes out first (see `starttls`). Writing afterwards raises
        `SocketFinishedError`; calling `finish` again does nothing.

        Moonbridge: ``socket:finish()``. On Unix sockets the original closed
        the socket and faked EOF for later reads; ``shutdown(SHUT_WR)``
        works on both kinds, so here reading really goes on.
        """
        self._check_open()
        if self._writer.finished:
            return
        self.flush()
        self._send_close_notify()
        self._writer.finished = True
        self._writer.cork(False)
        self._sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Flush, then close (TCP FIN; with TLS, close_notify first). Repeating it does nothing.

        Warning: if unread input is still in the kernel's receive buffer, the
        kernel answers with a reset (TCP RST) instead of a FIN, and the peer
        may lose data it has not read yet. Read or drain the input first;
        `finish()` tells the peer you are done while you still read. The
        flush blocks until the kernel has taken the queued output (`reset()`
        drops it instead); after a failed write nothing more is sent.

        Moonbridge: ``socket:close()``.
        """
        if self._closed:
            return
        try:
            if not self._writer.finished and self._writer.error is None:
                self.flush()
                with contextlib.suppress(OSError):  # a peer that left needs no alert
                    self._send_close_notify()
        finally:
            self._release()

    def take_output(self) -> bytes:
        """Remove and return the output still queued: what the kernel has not taken yet.

        For handing the rest of a response to someone else (layer 2's
        write completion): the caller sends these bytes, in order, before
        anything new. A flush owed is forgotten with them.

        Raises:
            ValueError: If the socket is closed, or is a TLS socket (its queued
                bytes are encrypted records only this session can continue).

        Moonbridge: none.
        """
        self._check_open()
        if self.tls:
            raise ValueError("the output of a TLS socket cannot be taken over")
        data = self._writer.queue.peek_all()
        self._writer.drop()
        return data

    def reset(self) -> None:
        """Close at once with ``SO_LINGER`` 0: the peer sees a reset; queued output is dropped.

        On Unix sockets there is no reset packet: the peer sees EOF, or
        `ConnectionResetError` if unread input was thrown away here.
        Repeating it does nothing.

        Moonbridge: ``socket:reset()``.
        """
        if self._closed:
            return
        with contextlib.suppress(OSError):
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._release()

    def _send_close_notify(self) -> None:
        transport = self._reader.transport
        if isinstance(transport, TLSTransport):
            self._reader.absorb(transport.close_notify(), transport.eof)
            self._writer.flush_owed = True
            self._writer.send(self._waiter(wait_ready, "w"))

    def _release(self) -> None:
        self._closed = True
        self._writer.drop()
        self._reader = Reader(self._reader.transport)
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # -- TLS -----------------------------------------------------------------

    def starttls(self, context: ssl.SSLContext, *, server_side: bool = False,
                 server_hostname: str | None = None, timeout: float | None = None) -> Self:
        """Turn this connection into a TLS endpoint; block until the handshake is done.

        Queued output is flushed first (it goes out in plain text); input
        already received is handed to TLS (a client may send its hello
        right behind a plain-text ``STARTTLS`` line). Afterwards every call
        works unchanged on the decrypted data and `poll` sees data buffered
        inside TLS. `finish` and `close` send the close_notify alert without
        waiting for the peer's; a peer that closes without one (a "ragged
        EOF") reads as EOF, as with `ssl.SSLSocket`'s default.

        Args:
            context: A client or server `ssl.SSLContext`.
            server_side: `True` on the accepting side.
            server_hostname: The name to check the server certificate
                against (client side; required when the context checks
                host names).
            timeout: The most seconds the handshake may take (`None`: no
                limit); a server sets one against clients that say nothing.

        Returns:
            The socket.

        Raises:
            TimeoutError: The handshake did not end within `timeout`; the
                socket is unusable then, as after a failed handshake.
            SocketStateError: TLS was already started, or the socket is finished.
            ssl.SSLError: The handshake failed; the socket is unusable then
                (reads and writes raise the same error again).
        """
        self._check_open()
        if self.tls or self._writer.finished:
            raise SocketStateError("starttls() needs an open plain socket")
        self.flush()
        received = self._reader.take(len(self._reader.buffer))
        transport = TLSTransport(self._sock, context, server_side, server_hostname, received)
        deadline = None if timeout is None else time.monotonic() + timeout

        def wait(mode: str) -> None:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if not wait_ready(self._sock, mode, left):
                raise TimeoutError(f"the TLS handshake took longer than {timeout} s")

        try:
            transport.handshake(wait)
        except OSError as error:
            self._reader.error = self._writer.error = error
            raise
        self._reader.transport = self._writer.transport = transport
        self._reader.absorb(transport.decrypt() or b"", transport.eof)  # sent with the handshake
        return self
