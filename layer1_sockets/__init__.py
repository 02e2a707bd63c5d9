"""Buffered sockets with blocking and non-blocking calls (Moonbridge's ``moonbridge_io``)."""

from ._buffered import BufferedSocket, Wait
from ._connect import localconnect, localconnect_nb, tcpconnect, tcpconnect_nb
from ._errors import SocketClosedError, SocketFinishedError, SocketStateError
from ._listen import Listener, locallisten, tcplisten
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
    "tcpconnect",
    "tcpconnect_nb",
    "tcplisten",
    "timeref",
    "wait_ready",
]
