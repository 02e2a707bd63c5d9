"""The control protocol between the master and its workers.

Each worker has one Unix stream socket pair for control. Every message on it
is a *frame*: a fixed six-byte header, then a payload:

    +--------+---------+-------------------+------------------+
    | kind   | fds     | payload length    | payload          |
    | 1 byte | 1 byte  | 4 bytes, big end. | length bytes     |
    +--------+---------+-------------------+------------------+

`kind` is one of the `Kind` bytes. `fds` counts the file descriptors
that travel with the frame as `SCM_RIGHTS` ancillary data (sent in the same
`sendmsg` call, so the kernel delivers them with the frame's first bytes).
Frames go over two kinds of channel: each worker's own control socket pair
(a stream), and its pool's queue (a `SOCK_SEQPACKET` pair shared by all the
pool's workers, one frame per record, see `_runtime.Queue`). The messages:

| kind | channel, direction | fds | payload                                       |
|------|--------------------|-----|-----------------------------------------------|
| `H`  | control, to master | 1-2 | listener index (2 bytes), the bytes read of a |
|      |                    |     | new connection whose request is incomplete    |
| `P`  | control, to master | 1   | listener index; a keep-alive connection       |
|      |                    |     | handed back between two requests              |
| `L`  | control, to master | 1   | `LINGER`: a half-closed connection to drain   |
| `S`  | control, to master | 2   | `SEND`: a connection and a file holding the   |
|      |                    |     | rest of its response                          |
| `D`  | control, to master | 0   | listener index: a timer run has ended         |
| `B`  | control, to master | 0   | empty: "goodbye, I am exiting"                |
| `T`  | control, to worker | 0   | empty: "finish and exit"                      |
| `W`  | control, to worker | 0   | empty: "other work waits for a worker"        |
| `R`  | control, to worker | 0   | empty: "hand back what you hold and leave"    |
| `C`  | queue, to workers  | 0-2 | listener index, then the bytes the master     |
|      |                    |     | read; the connection (none: a timer event)    |

Bytes past `MAX_HELD` travel in a memory file, the frame's second
descriptor (`pack_bytes`, `unpack_bytes`). Workers say nothing when they
become idle or busy: they write it into the scoreboard (`_scoreboard`).

`T` goes to every worker when a graceful stop begins, once no connection
held by the master waits for one. A busy worker reads it only when asked
(its `stopping()` turns true, so a handler can end idle work early: layer
3 closes keep-alive connections waiting for their next request) or when
it is done, and then leaves without taking more work. `W` goes to busy
workers while work waits and no worker is idle: "park at the next
chance"; a worker ignores a `W` that reaches it while idle.

`R` retires one worker while the server goes on (a reload replaces the
workers of the old generation with it). It is a `W` that lasts, plus a
leave: a busy worker hands its keep-alive connection back at the next
chance (`park`), and leaves as soon as it is idle, without taking more
work. Unlike `T`, `stopping()` stays false, so layer 3 parks the
connection instead of closing it: the client keeps its connection and
a worker of the new generation serves its next request.

Each kind is a row in `TO_MASTER`, `CONTROL_TO_WORKER` or `QUEUE`: a new
kind is an addition, not a change of framing. The `Decoder` is pure
(bytes and descriptors in, messages out, no sockets), so it is tested on
its own with any split of the input; whatever a worker writes, the
decoder returns messages or raises `ProtocolError`, never more.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import IntEnum

from ._errors import ProtocolError

HEADER = struct.Struct("!BBI")
"""kind, descriptor count, payload length."""
LISTENER_INDEX = struct.Struct("!H")
MAX_PAYLOAD = 65536
MAX_HELD = MAX_PAYLOAD - LISTENER_INDEX.size
"""The most bytes of a connection a `C` or `H` message carries in its payload.

More than that travels as a second descriptor: a memory file (`os.memfd_create`)
holding the bytes, so a request head of any size can move between processes."""
LINGER = struct.Struct("!II")
"""The payload of `L`: milliseconds to wait for the client's end, bytes to discard at most."""
SEND = struct.Struct("!HQQIIIB")
"""The payload of `S`: listener, offset and count of the source, stall limit (ms),
linger time (ms), linger bytes, what to do when sent (`AFTER_CLOSE`, `AFTER_PARK`);
then the bytes of the next request already read, if any."""
AFTER_CLOSE = 0
AFTER_PARK = 1
NO_LIMIT = 0xFFFFFFFF
"""A time limit of `L` or `S` that means "none"."""


class Kind(IntEnum):
    """The message kinds, named by the byte that starts their frame.

    Moonbridge: the single control bytes between master and child processes.
    """

    GOODBYE = ord("B")
    PARK = ord("P")
    CONNECT = ord("C")
    TERMINATE = ord("T")
    WAITING = ord("W")
    HOLD = ord("H")
    DONE = ord("D")
    LINGER = ord("L")
    SEND = ord("S")
    RETIRE = ord("R")


@dataclass(frozen=True, slots=True)
class Rule:
    """What a receiver accepts for one kind: payload size range and descriptor count."""

    min_payload: int = 0
    max_payload: int = 0
    max_fds: int = 0


TO_MASTER: Mapping[Kind, Rule] = {
    Kind.GOODBYE: Rule(),
    Kind.PARK: Rule(LISTENER_INDEX.size, LISTENER_INDEX.size, 1),
    Kind.HOLD: Rule(LISTENER_INDEX.size, MAX_PAYLOAD, 2),
    Kind.DONE: Rule(LISTENER_INDEX.size, LISTENER_INDEX.size),
    Kind.LINGER: Rule(LINGER.size, LINGER.size, 1),
    Kind.SEND: Rule(SEND.size, MAX_PAYLOAD, 2),
}
"""The messages a master accepts from a worker."""
TO_WORKER: Mapping[Kind, Rule] = {
    Kind.CONNECT: Rule(LISTENER_INDEX.size, MAX_PAYLOAD, 2),
    Kind.TERMINATE: Rule(),
    Kind.WAITING: Rule(),
    Kind.RETIRE: Rule(),
}
"""The messages a worker accepts from its master."""
CONTROL_TO_WORKER: Mapping[Kind, Rule] = {
    kind: rule for kind, rule in TO_WORKER.items() if kind is not Kind.CONNECT}
"""What a worker accepts on its own control socket (`C` comes through the pool's queue)."""
QUEUE: Mapping[Kind, Rule] = {Kind.CONNECT: TO_WORKER[Kind.CONNECT]}
"""What a worker accepts from its pool's queue."""
RULES = {**TO_MASTER, **TO_WORKER}


@dataclass(frozen=True, slots=True)
class Message:
    """One decoded frame: its kind, its payload and the descriptors that came with it."""

    kind: Kind
    payload: bytes = b""
    fds: tuple[int, ...] = ()

    @property
    def listener(self) -> int:
        """The listener index a `CONNECT` or `PARK` message carries."""
        (index,) = LISTENER_INDEX.unpack_from(self.payload)
        return int(index)

    @property
    def data(self) -> bytes:
        """The bytes of the connection the master read before a `CONNECT` (often none)."""
        return self.payload[LISTENER_INDEX.size:]


def encode(kind: Kind, payload: bytes = b"", fds: int = 0) -> bytes:
    """Return the frame for one message; the caller sends `fds` descriptors with it.

    Args:
        kind: The message kind.
        payload: The bytes after the header.
        fds: How many descriptors travel with the frame.

    Returns:
        Header plus payload, ready for one `send`/`sendmsg` call.

    Raises:
        ValueError: If the message breaks the rules of its kind.

    Examples:
        >>> encode(Kind.GOODBYE)
        b'B\\x00\\x00\\x00\\x00\\x00'
        >>> encode(Kind.CONNECT, connect_payload(1), fds=1)
        b'C\\x01\\x00\\x00\\x00\\x02\\x00\\x01'
    """
    rule = RULES[kind]
    if not rule.min_payload <= len(payload) <= rule.max_payload or not 0 <= fds <= rule.max_fds:
        raise ValueError(f"{kind.name} cannot carry {len(payload)} bytes and {fds} descriptors")
    return HEADER.pack(kind, fds, len(payload)) + payload


def connect_payload(listener: int, data: bytes = b"") -> bytes:
    """Return the payload of a `CONNECT` (or `PARK`) message for listener `listener`.

    Args:
        listener: The listener's index in its pool.
        data: The bytes the master read of the connection (at most `MAX_HELD`).

    Examples:
        >>> connect_payload(1, b"GET")
        b'\\x00\\x01GET'
    """
    return LISTENER_INDEX.pack(listener) + data


class Decoder:
    """Turn the bytes and descriptors read from a control socket into messages.

    Feed it what each `recvmsg` returned, then call `next_message()`
    until it returns `None`. Descriptors wait in a queue until the frame
    that announced them is complete. After a `ProtocolError` the
    stream cannot be resynchronised: the owner drops the peer and calls
    `close()` to close the descriptors still queued.

    Args:
        accepted: The kinds this side accepts, with their rules
            (`TO_MASTER` or `TO_WORKER`).

    Examples:
        >>> decoder = Decoder(TO_MASTER)
        >>> decoder.feed(encode(Kind.GOODBYE)[:3])
        >>> decoder.next_message() is None
        True
        >>> decoder.feed(encode(Kind.GOODBYE)[3:])
        >>> decoder.next_message()
        Message(kind=<Kind.GOODBYE: 66>, payload=b'', fds=())
    """

    def __init__(self, accepted: Mapping[Kind, Rule]) -> None:
        self._accepted = accepted
        self._buffer = bytearray()
        self._fds: deque[int] = deque()

    def feed(self, data: bytes, fds: Sequence[int] = ()) -> None:
        """Add bytes and descriptors received from the peer."""
        self._buffer += data
        self._fds.extend(fds)

    def next_message(self) -> Message | None:
        """Return the next complete message, or `None` if more bytes are needed.

        Raises:
            ProtocolError: If the bytes are not a frame this side accepts.
        """
        if len(self._buffer) < HEADER.size:
            if self._fds and not self._buffer:
                raise ProtocolError("descriptors arrived without a frame announcing them")
            return None
        kind_byte, fd_count, length = HEADER.unpack_from(self._buffer)
        try:
            kind = Kind(kind_byte)
            rule = self._accepted[kind]
        except (ValueError, KeyError):
            raise ProtocolError(f"unexpected message kind {kind_byte:#04x}") from None
        if not rule.min_payload <= length <= min(rule.max_payload, MAX_PAYLOAD):
            raise ProtocolError(f"{kind.name} with a payload of {length} bytes")
        if fd_count > rule.max_fds:
            raise ProtocolError(f"{kind.name} announcing {fd_count} descriptors")
        end = HEADER.size + length
        if len(self._buffer) < end:
            return None
        if len(self._fds) < fd_count:
            raise ProtocolError(f"{kind.name} arrived without its {fd_count} descriptors")
        payload = bytes(self._buffer[HEADER.size:end])
        del self._buffer[:end]
        fds = tuple(self._fds.popleft() for _ in range(fd_count))
        return Message(kind, payload, fds)

    def close(self) -> None:
        """Close every descriptor still queued and forget the buffered bytes."""
        while self._fds:
            try:
                os.close(self._fds.popleft())
            except OSError:
                pass
        self._buffer.clear()


def pack_bytes(data: bytes) -> tuple[bytes, int | None]:
    """Return how `data` travels: in the payload, or in a memory file (a descriptor to send).

    Up to `MAX_HELD` bytes go in the payload. More go into a new memory file
    (`os.memfd_create`), whose descriptor the caller sends as the frame's
    second one and then closes.
    """
    if len(data) <= MAX_HELD:
        return data, None
    fd = os.memfd_create("held", os.MFD_CLOEXEC)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return b"", fd


def unpack_bytes(message: Message) -> bytes:
    """Return the bytes a `C` or `H` message carries; closes the memory file, if any.

    Raises:
        ProtocolError: If the message has bytes both in its payload and in a file.
    """
    if len(message.fds) < 2:
        return message.data
    fd = message.fds[1]
    try:
        if message.data:
            raise ProtocolError(f"{message.kind.name} with bytes in its payload and in a file")
        size = os.fstat(fd).st_size
        if size > MAX_FILE_BYTES:
            raise ProtocolError(f"{message.kind.name} with a file of {size} bytes")
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


MAX_FILE_BYTES = 1 << 26
"""The most bytes a memory file of `C` or `H` may hold (64 MiB)."""


def decode_record(data: bytes, fds: Sequence[int], accepted: Mapping[Kind, Rule]) -> Message:
    """Decode one record of a `SOCK_SEQPACKET` queue: exactly one whole frame.

    Raises:
        ProtocolError: If the record is not exactly one frame this side accepts
            (its descriptors are closed then).
    """
    decoder = Decoder(accepted)
    decoder.feed(data, fds)
    message: Message | None = None
    try:
        message = decoder.next_message()
        if message is None or decoder._buffer or decoder._fds:
            raise ProtocolError(f"a queue record of {len(data)} bytes is not one frame")
    except ProtocolError:
        decoder.close()
        for fd in message.fds if message is not None else ():
            os.close(fd)
        raise
    return message
