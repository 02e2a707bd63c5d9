"""Buffered sockets with blocking and non-blocking calls (Moonbridge's ``moonbridge_io``).

Theory of operation. A `BufferedSocket` wraps one connected stream socket
(TCP over IPv4 or IPv6, a Unix socket, and TLS over either once `starttls`
ran) with an input buffer and an output queue. Its descriptor always stays
non-blocking; the blocking calls wait for readiness themselves. So every
operation comes in three forms that can be mixed freely on one socket:

=============================================  =================================================
form                                           when the kernel is not ready
=============================================  =================================================
`read`, `write`, `flush`, `drain`              waits (with `selectors`) and goes on
`read_nb`, `write_nb`, `flush_nb`, `drain_nb`  returns at once (`None`, or bytes queued)
`read_call`, `write_call`, ...                 calls your ``wait(sock, "r" or "w")`` and goes on
=============================================  =================================================

Reads return `bytes` (`b""` = EOF); writes take bytes-like objects (a `str`
is a `TypeError`). Kernel errors are raised as the `OSError` the kernel
named and are sticky per direction; misuse (a closed socket, writing after
`finish`) is a `ValueError` from `SocketStateError`'s family.

Connections come from `tcpconnect` / `localconnect` (and their ``_nb``
forms) or from a `Listener` made by `tcplisten` / `locallisten`. `poll`
waits for several objects at once and knows about buffered input; `timeref`
measures time for timeouts.

Examples:
    >>> from layer1_sockets import tcplisten, tcpconnect
    >>> with tcplisten("127.0.0.1", 0) as listener:
    ...     with tcpconnect("127.0.0.1", listener.port) as client:
    ...         with listener.accept() as server:
    ...             _ = client.flush(b"ping\\n")
    ...             _ = server.flush(server.read(terminator=b"\\n").upper())
    ...             client.read(maxlen=5)
    b'PING\\n'
"""

from ._buffered import BufferedSocket, Wait
from ._connect import localconnect, localconnect_nb, tcpconnect, tcpconnect_nb
from ._errors import SocketClosedError, SocketFinishedError, SocketStateError
from ._listen import Listener, locallisten, remove_stale_socket, tcplisten
from ._poll import poll, timeref, wait_ready

__all__ = [
    "BufferedSocket",
    "Listener",
    "SocketClosedError",
    "SocketFinishedError",
    "SocketStateError",
    "Wait",
    "localconnect",
    "localconnect_nb",
    "locallisten",
    "poll",
    "remove_stale_socket",
    "tcpconnect",
    "tcpconnect_nb",
    "tcplisten",
    "timeref",
    "wait_ready",
]
