"""The control protocol: frames survive any split; garbage is a clean ProtocolError.

Besides the control stream of each worker, a pool has a queue
(`SOCK_SEQPACKET`): every record is exactly one `C` frame, and bytes of a
connection past `MAX_HELD` travel in a memory file (a second descriptor).
"""

from __future__ import annotations

import os
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from layer2_prefork._errors import ProtocolError
from layer2_prefork._protocol import (
    CONTROL_TO_WORKER,
    HEADER,
    LINGER,
    MAX_FILE_BYTES,
    MAX_HELD,
    MAX_PAYLOAD,
    QUEUE,
    SEND,
    TO_MASTER,
    TO_WORKER,
    Decoder,
    Kind,
    Message,
    connect_payload,
    decode_record,
    encode,
    pack_bytes,
    unpack_bytes,
)
from layer2_prefork.master._handle import WorkerProcess


def decode_all(decoder: Decoder) -> list[Message]:
    messages = []
    while (message := decoder.next_message()) is not None:
        messages.append(message)
    return messages


def test_control_bytes_are_the_original_letters() -> None:
    # B, C and T are the original's bytes; P (park) and W (work waiting) came
    # with keep-alive parking; H (hold), D (timer done), L (linger) and S (send
    # the rest) with workers that accept themselves, R (retire) with reloads.
    # The original's I ("idle") is gone: workers say it on the scoreboard.
    assert [chr(kind) for kind in Kind] == ["B", "P", "C", "T", "W", "H", "D", "L", "S", "R"]
    assert encode(Kind.TERMINATE)[:1] == b"T"


def test_idle_is_no_message_any_more() -> None:
    decoder = Decoder(TO_MASTER)
    decoder.feed(b"I\x00\x00\x00\x00\x00")
    with pytest.raises(ProtocolError, match="unexpected message kind 0x49"):
        decoder.next_message()


def test_each_side_accepts_only_its_own_kinds() -> None:
    assert set(TO_MASTER) == {Kind.GOODBYE, Kind.PARK, Kind.HOLD, Kind.DONE, Kind.LINGER,
                              Kind.SEND}
    assert set(TO_WORKER) == {Kind.CONNECT, Kind.TERMINATE, Kind.WAITING, Kind.RETIRE}
    # C comes by the queue
    assert set(CONTROL_TO_WORKER) == {Kind.TERMINATE, Kind.WAITING, Kind.RETIRE}
    assert set(QUEUE) == {Kind.CONNECT}


def test_connect_carries_the_bytes_the_master_read() -> None:
    decoder = Decoder(TO_WORKER)
    decoder.feed(encode(Kind.CONNECT, connect_payload(2, b"GET / HTTP/1.1\r\n\r\n"), fds=1),
                 [42])
    message = decoder.next_message()
    assert message is not None
    assert (message.listener, message.data, message.fds) == (2, b"GET / HTTP/1.1\r\n\r\n", (42,))


def test_park_is_for_the_master_and_waiting_for_the_worker() -> None:
    to_master = Decoder(TO_MASTER)
    to_master.feed(encode(Kind.PARK, connect_payload(1), fds=1), [7])
    message = to_master.next_message()
    assert message is not None and (message.kind, message.listener, message.fds) == (
        Kind.PARK, 1, (7,))
    with pytest.raises(ProtocolError):
        to_master.feed(encode(Kind.WAITING))
        to_master.next_message()
    to_worker = Decoder(TO_WORKER)
    to_worker.feed(encode(Kind.WAITING))
    assert to_worker.next_message() == Message(Kind.WAITING)
    with pytest.raises(ProtocolError):
        to_worker.feed(encode(Kind.PARK, connect_payload(1), fds=1), [8])
        to_worker.next_message()


def test_park_without_its_descriptor_is_refused() -> None:
    decoder = Decoder(TO_MASTER)
    decoder.feed(encode(Kind.PARK, connect_payload(0), fds=1))
    with pytest.raises(ProtocolError, match="without its 1 descriptors"):
        decoder.next_message()


def test_connect_carries_the_listener_index_and_a_descriptor_count() -> None:
    decoder = Decoder(TO_WORKER)
    decoder.feed(encode(Kind.CONNECT, connect_payload(3), fds=1), [99])
    (message,) = decode_all(decoder)
    assert (message.kind, message.listener, message.fds) == (Kind.CONNECT, 3, (99,))


@pytest.mark.parametrize(("kind", "payload", "fds"), [
    (Kind.GOODBYE, b"x", 0), (Kind.GOODBYE, b"", 1), (Kind.CONNECT, b"", 1),
    (Kind.CONNECT, connect_payload(0), 3), (Kind.CONNECT, b"x" * (MAX_PAYLOAD + 1), 1),
    (Kind.HOLD, b"", 1), (Kind.HOLD, connect_payload(0), 3),
    (Kind.DONE, connect_payload(0), 1), (Kind.DONE, connect_payload(0) + b"x", 0),
    (Kind.LINGER, b"", 1), (Kind.LINGER, LINGER.pack(1, 2), 2),
    (Kind.SEND, b"x" * (SEND.size - 1), 2), (Kind.SEND, b"x" * SEND.size, 3),
    (Kind.PARK, connect_payload(0), 2), (Kind.TERMINATE, b"", 1), (Kind.WAITING, b"x", 0),
])
def test_encode_refuses_what_the_receiver_would_refuse(kind: Kind, payload: bytes,
                                                       fds: int) -> None:
    with pytest.raises(ValueError):
        encode(kind, payload, fds)


worker_frames = st.lists(st.one_of(
    st.just((Kind.GOODBYE, b"")),
    st.integers(0, 65535).map(lambda index: (Kind.DONE, connect_payload(index))),
    st.binary(max_size=40).map(lambda data: (Kind.HOLD, connect_payload(1, data))),
    st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)).map(
        lambda pair: (Kind.LINGER, LINGER.pack(*pair))),
), max_size=20)


@given(worker_frames, st.data())
def test_any_split_decodes_the_same(frames: list[tuple[Kind, bytes]],
                                    data: st.DataObject) -> None:
    stream = b"".join(encode(kind, payload) for kind, payload in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = Decoder(TO_MASTER)
    got: list[Message] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        decoder.feed(stream[start:end])
        got.extend(decode_all(decoder))
    assert [(message.kind, message.payload) for message in got] == frames


@given(st.binary(max_size=64))
def test_garbage_gives_messages_none_or_protocol_error(garbage: bytes) -> None:
    decoder = Decoder(TO_MASTER)
    decoder.feed(garbage)
    try:
        for message in decode_all(decoder):
            assert message.kind in TO_MASTER
    except ProtocolError:
        pass


@pytest.mark.parametrize(("frame", "message"), [
    (b"garbage!", "unexpected message kind 0x67"),
    (encode(Kind.CONNECT, connect_payload(0)), "unexpected message kind 0x43"),
    (HEADER.pack(Kind.GOODBYE, 0, 1) + b"x", "GOODBYE with a payload of 1 bytes"),
    (HEADER.pack(Kind.GOODBYE, 0, MAX_PAYLOAD * 16), "payload"),
    (HEADER.pack(Kind.GOODBYE, 1, 0), "announcing 1 descriptors"),
    (b"I\x00\x00\x00\x00\x00", "unexpected message kind 0x49"),
    (encode(Kind.TERMINATE), "unexpected message kind 0x54"),
    (HEADER.pack(Kind.HOLD, 3, 2) + b"\x00\x00", "HOLD announcing 3 descriptors"),
    (HEADER.pack(Kind.DONE, 0, 3) + b"\x00\x00\x00", "DONE with a payload of 3 bytes"),
    (HEADER.pack(Kind.LINGER, 1, 4) + b"\x00" * 4, "LINGER with a payload of 4 bytes"),
    (HEADER.pack(Kind.SEND, 2, 10) + b"\x00" * 10, "SEND with a payload of 10 bytes"),
])
def test_what_a_master_refuses(frame: bytes, message: str) -> None:
    decoder = Decoder(TO_MASTER)
    decoder.feed(frame)
    with pytest.raises(ProtocolError, match=message):
        decode_all(decoder)


def test_a_connect_without_its_descriptor_is_refused() -> None:
    decoder = Decoder(TO_WORKER)
    decoder.feed(encode(Kind.CONNECT, connect_payload(0), fds=1))
    with pytest.raises(ProtocolError, match="without its 1 descriptors"):
        decoder.next_message()


def test_descriptors_without_a_frame_are_refused_and_closed() -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    decoder = Decoder(TO_MASTER)
    decoder.feed(b"", [read_end])
    with pytest.raises(ProtocolError, match="without a frame"):
        decoder.next_message()
    decoder.close()
    with pytest.raises(OSError):
        os.fstat(read_end)


def test_a_descriptor_crosses_a_real_socket_pair_with_its_frame() -> None:
    master_end, worker_end = socket.socketpair()
    passed_a, passed_b = socket.socketpair()
    unused = socket.socket(socket.AF_UNIX)
    try:
        worker = WorkerProcess(0, os.getpid(), master_end, unused)
        worker.send(Kind.CONNECT, connect_payload(7), passed_a.fileno())
        worker.send(Kind.TERMINATE)
        decoder = Decoder(TO_WORKER)
        while len(messages := decode_all(decoder)) == 0:
            data, fds, _, _ = socket.recv_fds(worker_end, 4096, 4)
            decoder.feed(data, fds)
        connect = messages[0]
        assert connect.listener == 7
        with socket.socket(fileno=connect.fds[0]) as received:
            received.sendall(b"through the worker")
            assert passed_b.recv(100) == b"through the worker"
        worker_end.sendall(encode(Kind.GOODBYE) + b"garbage!")
        master_end.setblocking(False)
        with pytest.raises(ProtocolError):
            worker.receive()
    finally:
        for sock in (master_end, worker_end, passed_a, passed_b, unused):
            sock.close()


# --- the queue and the bytes of a connection ----------------------------------

def test_a_queue_record_is_one_connect_frame() -> None:
    send_end, receive_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    passed_a, passed_b = socket.socketpair()
    try:
        socket.send_fds(send_end, [encode(Kind.CONNECT, connect_payload(3, b"GET"), fds=1)],
                        [passed_a.fileno()])
        send_end.send(encode(Kind.CONNECT, connect_payload(1)))  # a timer event: no socket
        data, fds, _, _ = socket.recv_fds(receive_end, 70000, 2)
        message = decode_record(data, fds, QUEUE)
        assert (message.listener, message.data, len(message.fds)) == (3, b"GET", 1)
        with socket.socket(fileno=message.fds[0]) as received:
            received.sendall(b"queued")
            assert passed_b.recv(100) == b"queued"
        data, fds, _, _ = socket.recv_fds(receive_end, 70000, 2)
        assert decode_record(data, fds, QUEUE) == Message(Kind.CONNECT, connect_payload(1))
    finally:
        for sock in (send_end, receive_end, passed_a, passed_b):
            sock.close()


@pytest.mark.parametrize(("record", "message"), [
    (encode(Kind.TERMINATE), "unexpected message kind 0x54"),
    (encode(Kind.CONNECT, connect_payload(0)) * 2, "not one frame"),
    (encode(Kind.CONNECT, connect_payload(0))[:-1], "not one frame"),
    (encode(Kind.CONNECT, connect_payload(0), fds=1), "without its 1 descriptors"),
])
def test_a_queue_record_that_is_not_one_connect_is_refused(record: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_record(record, [], QUEUE)


def test_a_refused_queue_record_closes_its_descriptors() -> None:
    read_end, write_end = os.pipe()
    os.close(write_end)
    with pytest.raises(ProtocolError):
        decode_record(encode(Kind.CONNECT, connect_payload(0), fds=1) + b"extra", [read_end],
                      QUEUE)
    with pytest.raises(OSError):
        os.fstat(read_end)


@pytest.mark.parametrize("size", [0, 1, MAX_HELD, MAX_HELD + 1, 3 * MAX_PAYLOAD + 7])
def test_bytes_of_any_size_travel_whole(size: int) -> None:
    data = bytes(index % 251 for index in range(size))
    payload, memfd = pack_bytes(data)
    assert (memfd is None) == (size <= MAX_HELD)  # past MAX_HELD: in a memory file
    fds = (7,) if memfd is None else (7, memfd)
    message = Message(Kind.HOLD, connect_payload(2, payload), fds)
    assert len(message.payload) <= MAX_PAYLOAD
    assert unpack_bytes(message) == data
    if memfd is not None:
        with pytest.raises(OSError):
            os.fstat(memfd)  # unpack_bytes closed it


def test_bytes_both_in_the_payload_and_in_a_file_are_refused() -> None:
    _, memfd = pack_bytes(b"x" * (MAX_HELD + 1))
    assert memfd is not None
    with pytest.raises(ProtocolError, match="in its payload and in a file"):
        unpack_bytes(Message(Kind.HOLD, connect_payload(0, b"also"), (7, memfd)))
    with pytest.raises(OSError):
        os.fstat(memfd)


def test_a_memory_file_past_the_limit_is_refused() -> None:
    memfd = os.memfd_create("huge")
    os.ftruncate(memfd, MAX_FILE_BYTES + 1)  # sparse: costs no memory
    with pytest.raises(ProtocolError, match=f"a file of {MAX_FILE_BYTES + 1} bytes"):
        unpack_bytes(Message(Kind.CONNECT, connect_payload(0), (7, memfd)))
    with pytest.raises(OSError):
        os.fstat(memfd)
