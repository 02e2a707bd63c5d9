"""The control protocol: frames survive any split; garbage is a clean ProtocolError."""

from __future__ import annotations

import os
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from layer2_prefork._errors import ProtocolError
from layer2_prefork._protocol import (
    HEADER,
    MAX_PAYLOAD,
    TO_MASTER,
    TO_WORKER,
    Decoder,
    Kind,
    Message,
    connect_payload,
    encode,
)
from layer2_prefork._spawn import WorkerProcess


def decode_all(decoder: Decoder) -> list[Message]:
    messages = []
    while (message := decoder.next_message()) is not None:
        messages.append(message)
    return messages


def test_control_bytes_are_the_original_letters() -> None:
    # I, B, C and T are the original's bytes; P (park) and W (work waiting)
    # were added for keep-alive parking.
    assert [chr(kind) for kind in Kind] == ["I", "B", "P", "C", "T", "W"]
    assert encode(Kind.TERMINATE)[:1] == b"T"


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
    (Kind.CONNECT, connect_payload(0), 2),
])
def test_encode_refuses_what_the_receiver_would_refuse(kind: Kind, payload: bytes,
                                                       fds: int) -> None:
    with pytest.raises(ValueError):
        encode(kind, payload, fds)


worker_messages = st.lists(st.sampled_from([Kind.GOODBYE, Kind.GOODBYE]), max_size=20)


@given(worker_messages, st.data())
def test_any_split_decodes_the_same(kinds: list[Kind], data: st.DataObject) -> None:
    stream = b"".join(encode(kind) for kind in kinds)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder = Decoder(TO_MASTER)
    got: list[Message] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        decoder.feed(stream[start:end])
        got.extend(decode_all(decoder))
    assert [message.kind for message in got] == kinds


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
