"""The TLS transport: encryption between the buffers and the kernel socket.

The `ssl` module offers two ways to speak TLS. `ssl.SSLSocket` owns the
socket and hides the records; `ssl.SSLObject` with two `ssl.MemoryBIO`s
leaves the socket to us and only turns bytes into records and back. This
package uses the second, because it keeps every decision about blocking in
one place (the buffered socket) and makes three things easy:

* **Nothing waits inside the TLS layer.** Received bytes are written into the
  incoming BIO, decrypted data is read out; encrypted output collects in the
  outgoing BIO and goes into our own *backlog* queue, sent when the kernel
  takes it. A TLS record may need several reads or writes of the socket, and
  none of them hides a wait.
* **`poll` stays honest.** Every time bytes arrive, all complete records are
  decrypted at once and handed up, so decrypted data never hides inside the
  TLS layer where `poll` could not see it (`pending()` is checked as well).
* **Bytes read before TLS starts are not lost.** Anything the buffered socket
  already received (a client that sends its hello right after ``STARTTLS``)
  is fed to the TLS layer first.

Ending: `close_notify()` sends TLS's own end-of-data alert. It does *not*
wait for the peer's alert (that would block a half-closed connection), and
it first decrypts every complete record already received, because OpenSSL
discards application data that a second shutdown call finds. After it,
reading goes on until the peer ends its side. A peer that closes TCP without
close_notify (a "ragged EOF") is read as plain EOF, as `ssl.SSLSocket` does
by default; a reset is still the `ConnectionResetError` from the kernel.
"""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import Callable

from ._buffers import OutputQueue
from ._transport import raw_recv, raw_send

__all__ = ["TLSTransport"]

_RECV_SIZE = 64 * 1024  # raw bytes read from the kernel at once
_READ_SIZE = 64 * 1024  # plaintext asked of the TLS layer at once (a record is <= 16 KiB)
_ENCRYPT_SIZE = 64 * 1024  # plaintext encrypted at once: backlog stays small
_SEND_LIMIT = 1 << 20


class TLSTransport:
    """A TLS endpoint on a non-blocking socket, with memory BIOs in between."""

    __slots__ = ("_backlog", "_eof", "_incoming", "_notified", "_object", "_outgoing",
                 "_send", "_sock")

    short_recv_drains = False  # a short result is one record, not an empty kernel buffer

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, server_side: bool,
                 server_hostname: str | None, received: bytes = b"") -> None:
        self._sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._object = context.wrap_bio(self._incoming, self._outgoing,
                                        server_side=server_side,
                                        server_hostname=server_hostname)
        self._backlog = OutputQueue()  # encrypted bytes the kernel has not taken yet
        self._send = functools.partial(raw_send, sock)
        self._eof = False
        self._notified = False
        if received:
            self._incoming.write(received)

    @property
    def ssl_object(self) -> ssl.SSLObject:
        """The `ssl.SSLObject` (peer certificate, version, cipher, ALPN)."""
        return self._object

    @property
    def eof(self) -> bool:
        """`True` once the end of the peer's data was decrypted (or a ragged EOF)."""
        return self._eof

    @property
    def backlog(self) -> int:
        """Encrypted bytes waiting for the kernel."""
        return len(self._backlog)

    def handshake(self, wait: Callable[[str], object]) -> None:
        """Run the handshake to the end, calling `wait("r")`/`wait("w")` to block."""
        while True:
            try:
                self._object.do_handshake()
                done = True
            except ssl.SSLWantReadError:
                done = False
            except ssl.SSLError:
                self._collect()  # the alert that tells the peer why
                self._push_quietly()
                raise
            self._collect()
            while not self.push():
                wait("w")
            if done:
                return
            while (data := raw_recv(self._sock, _RECV_SIZE)) is None:
                wait("r")
            if data:
                self._incoming.write(data)
            elif self._incoming.eof:
                raise ssl.SSLEOFError(ssl.SSL_ERROR_EOF, "EOF during the TLS handshake")
            else:
                self._incoming.write_eof()

    def recv(self, size: int) -> bytes | None:
        """Decrypted bytes (`b""`: end of input, `None`: nothing complete yet)."""
        while True:
            data = self.decrypt()
            if data is not None:
                return data
            raw = raw_recv(self._sock, max(size, _RECV_SIZE))
            if raw is None:
                return None
            if raw:
                self._incoming.write(raw)
            else:
                self._incoming.write_eof()

    def decrypt(self) -> bytes | None:
        """Decrypt every complete record received; `b""` at end, `None` if none."""
        if self._eof:
            return b""
        parts = []
        try:
            while chunk := self._object.read(_READ_SIZE):
                parts.append(chunk)
            self._eof = True  # an empty read: the peer's close_notify
        except ssl.SSLWantReadError:
            pass
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            self._eof = True  # close_notify, or a ragged EOF read as EOF
        self._collect()  # reading can produce output (key update answers) ...
        if len(self._backlog):
            self._push_quietly()  # ... that the peer may wait for; errors show on writing
        if parts:
            return b"".join(parts)
        return b"" if self._eof else None

    def send(self, view: memoryview) -> int:
        """Encrypt from `view` once the backlog is out; return plaintext bytes taken."""
        if not self.push():
            return 0
        count = min(len(view), _ENCRYPT_SIZE)
        with view[:count] as part:
            self._object.write(part)
        self._collect()
        self.push()
        return count

    def push(self) -> bool:
        """Send backlog to the kernel; `True` once none is left."""
        while len(self._backlog):
            if not self._backlog.send_head(self._send, _SEND_LIMIT):
                return False
        return True

    def _push_quietly(self) -> None:
        try:
            self.push()
        except OSError:
            pass  # the peer is gone: it needs no alert any more

    def pending(self) -> int:
        """Decrypted bytes held inside the TLS layer."""
        return self._object.pending()

    def close_notify(self) -> bytes:
        """Queue close_notify in the backlog (once); return data decrypted first.

        The caller must keep the returned bytes (they are input the peer sent
        before) and push the backlog out.
        """
        if self._notified:
            return b""
        self._notified = True
        received = self.decrypt() or b""
        try:
            self._object.unwrap()
        except ssl.SSLWantReadError:
            pass  # sent ours; the peer's comes later, read as EOF
        except ssl.SSLError:
            pass  # the session already failed: no alert can be sent
        self._collect()
        return received

    def _collect(self) -> None:
        if self._outgoing.pending:
            self._backlog.append(memoryview(self._outgoing.read()))
