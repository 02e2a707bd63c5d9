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

Writing keeps a small tail: `write` sends whole blocks (64 KiB) and keeps
less than one block queued, so many small writes leave as few large sends.
`flush` sends the rest. On TCP, ``TCP_NODELAY`` is on (a flushed small
response leaves at once instead of waiting for an acknowledgement), and
while more than one block goes out the socket is corked (``TCP_CORK``): the
kernel then sends only full segments, and the last partial one when the
flush completes and uncorks. A response of several sends thus leaves in as
few segments as possible.

Invariants:

* Errors are sticky per direction: after a failed receive every later read
  raises the same exception again, after a failed send every later write.
* A closed socket raises `SocketClosedError` (a `ValueError`) on any call but
  `close` and `reset`, which may be repeated.
* A result ending without the terminator and shorter than `maxlen` means
  EOF came (blocking reads) or nothing more was available (``read_nb``).
"""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Callable
from types import TracebackType
from typing import Self

from ._buffers import InputBuffer, OutputQueue, as_view
from ._errors import SocketClosedError, SocketFinishedError, SocketStateError
from ._info import SocketInfo
from ._poll import wait_ready
from ._tls import TLSTransport
from ._transport import PlainTransport

__all__ = ["BufferedSocket", "Wait"]

_BLOCK = 64 * 1024  # write() keeps less than this queued
_RECV_SIZE = 64 * 1024  # bytes asked of the kernel at once
_SEND_LIMIT = 1 << 20  # bytes offered to one send()
_GATHER_LIMIT = 1 << 20  # a non-blocking read returns after gathering this much
_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)

Wait = Callable[["BufferedSocket", str], object]
"""A waiting function: ``wait(sock, "r")`` or ``wait(sock, "w")``, returns when ready."""


def _block(sock: BufferedSocket, mode: str) -> None:
    wait_ready(sock, mode)


def _terminator_byte(maxlen: int | None, terminator: bytes | None) -> int | None:
    if maxlen is not None and (not isinstance(maxlen, int) or maxlen < 1):
        raise ValueError(f"maxlen must be a positive int or None, not {maxlen!r}")
    if terminator is None:
        return None
    if not isinstance(terminator, bytes | bytearray) or len(terminator) != 1:
        raise ValueError(f"terminator must be a single byte such as b'\\n', not {terminator!r}")
    return terminator[0]


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

    __slots__ = ("_closed", "_corked", "_eof", "_finished", "_flush_owed", "_in", "_out",
                 "_read_error", "_starved", "_tcp", "_transport", "_write_error")

    def __init__(self, sock: socket.socket) -> None:
        try:
            if sock.type != socket.SOCK_STREAM:
                raise ValueError(f"BufferedSocket needs a stream socket, not {sock!r}")
            sock.setblocking(False)
            self._tcp = sock.family in (socket.AF_INET, socket.AF_INET6)
            if self._tcp:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            super().__init__(sock)
        except BaseException:
            sock.close()
            raise
        self._transport: PlainTransport | TLSTransport = PlainTransport(sock)
        self._in = InputBuffer()
        self._out = OutputQueue()
        self._eof = self._starved = self._finished = self._closed = False
        self._flush_owed = self._corked = False
        self._read_error: OSError | None = None
        self._write_error: OSError | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"fd={self._sock.fileno()}"
        kind = "tls" if self.tls else ("tcp" if self._tcp else "unix")
        return f"<BufferedSocket {kind} {state}>"

    # -- state ---------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """`True` once `close()` or `reset()` was called."""
        return self._closed

    @property
    def tls(self) -> bool:
        """`True` once `starttls()` succeeded."""
        return isinstance(self._transport, TLSTransport)

    @property
    def ssl_object(self) -> ssl.SSLObject | None:
        """The `ssl.SSLObject` after `starttls()` (peer certificate, version), else `None`."""
        transport = self._transport
        return transport.ssl_object if isinstance(transport, TLSTransport) else None

    @property
    def buffered(self) -> int:
        """Bytes of input received (or decrypted) but not yet returned by a read."""
        return len(self._in) + (0 if self._closed else self._transport.pending())

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

    def _ready_to_read(self) -> bool:
        """Would a read return without waiting for the kernel? (used by `poll`)."""
        if self._closed:
            return False
        fresh_input = len(self._in) > 0 and not self._starved
        return (fresh_input or self._eof or self._read_error is not None
                or self._transport.pending() > 0)

    # -- reading -------------------------------------------------------------

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

        Moonbridge: ``socket:read(maxlen, terminator)``.
        """
        return self.read_call(_block, maxlen, terminator)

    def read_nb(self, maxlen: int | None = None,
                terminator: bytes | None = None) -> bytes | None:
        """Read what is available now, up to the same limits as `read`; never block.

        If the terminator has not arrived yet, the bytes that did arrive are
        returned (the next call continues after them).

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
        self._continue_flush()
        count = self._collect(None, maxlen, terminator, discard=False)
        return None if count is None else self._in.take(count)

    def drain(self, maxlen: int | None = None, terminator: bytes | None = None) -> int:
        """Like `read`, but discard the bytes; return how many (0 at EOF).

        Memory stays flat however much is drained.

        Moonbridge: ``socket:drain(maxlen, terminator)``.
        """
        return self.drain_call(_block, maxlen, terminator)

    def drain_nb(self, maxlen: int | None = None, terminator: bytes | None = None) -> int | None:
        """Like `read_nb`, but discard the bytes; return how many.

        Returns:
            The number of bytes discarded; `None` when nothing is available
            yet; 0 at EOF.

        Moonbridge: ``socket:drain_nb(maxlen, terminator)``.
        """
        self._continue_flush()
        return self._collect(None, maxlen, terminator, discard=True)

    def read_call(self, wait: Wait, maxlen: int | None = None,
                  terminator: bytes | None = None) -> bytes:
        """Like `read`, but call ``wait(self, "r")`` each time the read would block.

        `wait` returns when it thinks the socket may be readable (or has
        done other work meanwhile); the read then tries again. `poll` and
        `wait_ready`-style functions fit, and so does a scheduler's hook.
        """
        count = self._collect(wait, maxlen, terminator, discard=False)
        assert count is not None
        return self._in.take(count)

    def drain_call(self, wait: Wait, maxlen: int | None = None,
                   terminator: bytes | None = None) -> int:
        """Like `drain`, but call ``wait(self, "r")`` each time it would block."""
        count = self._collect(wait, maxlen, terminator, discard=True)
        assert count is not None
        return count

    def _collect(self, wait: Wait | None, maxlen: int | None, terminator: bytes | None,
                 discard: bool) -> int | None:
        """Gather one result; return its length (kept in the buffer) or, when
        discarding, the bytes discarded. `None`: nothing available and no `wait`."""
        term = _terminator_byte(maxlen, terminator)
        self._check_open()
        if self._read_error is not None:
            raise self._read_error
        dropped = gathered = 0
        while True:
            limit = None if maxlen is None else maxlen - dropped
            count = self._in.complete(limit, term)
            if count is not None or self._eof:
                count = len(self._in) if count is None else count
                return dropped + self._in.drop(count) if discard else count
            if discard:
                dropped += self._in.drop(len(self._in))
            received = self._fill() if wait is not None or gathered < _GATHER_LIMIT else None
            if received is not None:
                gathered += received
                continue
            self._starved = True
            if wait is None:
                if discard:
                    return dropped or None
                return len(self._in) or None
            wait(self, "r")
            self._check_open()

    def _fill(self) -> int | None:
        """Receive once into the buffer; bytes received, 0 at EOF, `None`: would block."""
        try:
            data = self._transport.recv(_RECV_SIZE)
        except OSError as error:
            self._read_error = error
            raise
        if data is None:
            return None
        if not data:
            self._eof = True
            return 0
        self._in.append(data)
        self._starved = False
        return len(data)

    # -- writing -------------------------------------------------------------

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
        return self.write_call(_block, *data)

    def write_nb(self, *data: bytes | bytearray | memoryview) -> int:
        """Queue data and send what the kernel takes now; never block.

        Returns:
            0 if everything but a small tail (less than one block) went out,
            otherwise the number of bytes still queued. Unsent data stays
            queued and leaves with later calls.

        Moonbridge: ``socket:write_nb(...)``.
        """
        queued = self._output(None, data, flush=False)
        return queued if self._flush_owed or queued >= _BLOCK else 0

    def flush(self, *data: bytes | bytearray | memoryview) -> Self:
        """`write` the data, then send everything queued; return the socket.

        Moonbridge: ``socket:flush(...)``.
        """
        return self.flush_call(_block, *data)

    def flush_nb(self, *data: bytes | bytearray | memoryview) -> int:
        """Queue data and flush without blocking.

        Returns:
            The number of bytes still queued; 0 means the flush is done.
            Otherwise the flush stays owed: later ``*_nb`` calls (and any
            blocking write) continue it, `poll` with the socket among the
            writers tells when to call again.

        Moonbridge: ``socket:flush_nb(...)``.
        """
        return self._output(None, data, flush=True)

    def write_call(self, wait: Wait, *data: bytes | bytearray | memoryview) -> Self:
        """Like `write`, but call ``wait(self, "w")`` each time sending would block."""
        self._output(wait, data, flush=False)
        return self

    def flush_call(self, wait: Wait, *data: bytes | bytearray | memoryview) -> Self:
        """Like `flush`, but call ``wait(self, "w")`` each time sending would block."""
        self._output(wait, data, flush=True)
        return self

    def _queued(self) -> int:
        return len(self._out) + self._transport.backlog

    def _check_writable(self) -> None:
        self._check_open()
        if self._finished:
            raise SocketFinishedError("cannot write after finish()")
        if self._write_error is not None:
            raise self._write_error

    def _output(self, wait: Wait | None, data: tuple[object, ...], flush: bool) -> int:
        self._check_writable()
        views = [as_view(item) for item in data]
        for view in views:
            self._out.append(view)
        if flush:
            self._flush_owed = True
        self._send(wait)
        return self._queued()

    def _send(self, wait: Wait | None) -> None:
        """Send while the rules say so: everything if a flush is owed, else whole blocks."""
        try:
            while self._queued() > (0 if self._flush_owed else _BLOCK - 1):
                if self._queued() >= _BLOCK:
                    self._cork(True)
                if self._out:
                    progress = self._out.send_head(self._transport.send, _SEND_LIMIT) > 0
                else:
                    progress = self._transport.push()
                if not progress:
                    if wait is None:
                        return
                    wait(self, "w")
                    self._check_open()
        except OSError as error:
            self._write_error = error
            raise
        if self._flush_owed:
            self._flush_owed = False
            self._cork(False)

    def _continue_flush(self) -> None:
        """Continue an owed flush without blocking; keep a failure for the next write."""
        if self._flush_owed and self._write_error is None and not self._closed:
            try:
                self._send(None)
            except OSError:
                pass  # sticky: the next write raises it

    def _cork(self, on: bool) -> None:
        if self._corked != on and self._tcp and _TCP_CORK is not None:
            try:
                self._sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, int(on))
            except OSError:
                return
            self._corked = on

    # -- ending --------------------------------------------------------------

    def finish(self) -> None:
        """Flush, then shut down the write direction: the peer sees EOF.

        Reading stays possible, so the usual way to end a conversation
        cleanly is `finish()`, read (or drain) until EOF, then `close()`.
        With TLS, the TLS close_notify alert goes out first (see `starttls`).
        Writing afterwards raises `SocketFinishedError`; calling `finish`
        again does nothing.

        Moonbridge: ``socket:finish()``. On Unix sockets the original closed
        the socket and faked EOF for later reads; here ``shutdown(SHUT_WR)``
        works for both kinds, so reading really goes on.
        """
        self._check_open()
        if self._finished:
            return
        self.flush()
        self._send_close_notify()
        self._finished = True
        self._cork(False)
        self._sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        """Flush, then close (TCP FIN; with TLS, close_notify first). Repeating it does nothing.

        Warning: if unread input is still in the kernel's receive buffer, the
        kernel answers with a reset (TCP RST) instead of a FIN, and the peer
        may lose data it has not read yet. Read or drain the input first;
        `finish()` lets the peer know you are done while you still read.
        After a failed write nothing is flushed.

        Moonbridge: ``socket:close()``.
        """
        if self._closed:
            return
        try:
            if not self._finished and self._write_error is None:
                self.flush()
                self._send_close_notify()
        finally:
            self._release()

    def reset(self) -> None:
        """Close at once with ``SO_LINGER`` 0: the peer sees a reset; queued output is dropped.

        On Unix sockets there is no reset packet: the peer sees EOF, or
        `ConnectionResetError` if unread input was thrown away. Repeating it
        does nothing.

        Moonbridge: ``socket:reset()``.
        """
        if self._closed:
            return
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self._release()

    def _send_close_notify(self) -> None:
        transport = self._transport
        if isinstance(transport, TLSTransport):
            self._absorb(transport.close_notify(), transport.eof)
            self._flush_owed = True
            self._send(_block)

    def _release(self) -> None:
        self._closed = True
        self._out.clear()
        self._in = InputBuffer()
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    # -- TLS -----------------------------------------------------------------

    def starttls(self, context: ssl.SSLContext, *, server_side: bool = False,
                 server_hostname: str | None = None) -> Self:
        """Turn this connection into a TLS endpoint; blocks until the handshake is done.

        Queued output is flushed first (it goes out in plain text); input
        that was already received is handed to TLS (a client may send its
        hello right after a plain-text ``STARTTLS`` line). Afterwards every
        call works unchanged on the decrypted data, `poll` sees data
        buffered inside TLS, and `finish`/`close` send the close_notify
        alert without waiting for the peer's (a ragged EOF from the peer
        reads as EOF).

        Args:
            context: A client or server `ssl.SSLContext`.
            server_side: `True` on the accepting side.
            server_hostname: The name to check the server certificate
                against (client side; required when the context checks
                host names).

        Returns:
            The socket.

        Raises:
            SocketStateError: TLS was already started, or the socket is finished.
            ssl.SSLError: The handshake failed (the socket is unusable then:
                reads and writes raise it again).
        """
        self._check_open()
        if self.tls or self._finished:
            raise SocketStateError("starttls() needs an open plain socket")
        self.flush()
        received = self._in.take(len(self._in))
        transport = TLSTransport(self._sock, context, server_side, server_hostname, received)
        try:
            transport.handshake(lambda mode: wait_ready(self._sock, mode))
        except OSError as error:
            self._read_error = self._write_error = error
            raise
        self._transport = transport
        self._absorb(transport.decrypt() or b"", transport.eof)  # data sent with the handshake
        return self

    def _absorb(self, data: bytes, eof: bool) -> None:
        """Take input that the TLS layer decrypted outside of `_fill`."""
        if data:
            self._in.append(data)
            self._starved = False
        self._eof = self._eof or eof
