"""Bodies made to cost per piece: a million tiny chunks, a mebibyte of cookies.

Both were found by attacking a running server (`bench/hostile.py`): a
chunked body of a million 1-byte chunks took a worker some 16 s and
130 MiB, a 900 KiB ``Cookie`` header 40 MiB. Now the first is refused
after `FREE_CHUNKS` chunks that average under `SMALLEST_AVERAGE` bytes,
and the second past `COOKIE_LIMIT` cookies, each with a clear status.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from http_support import APPS, Server, http_server, request_bytes

from layer3_http._errors import ClientError
from layer3_http._forms import COOKIE_LIMIT, parse_cookies
from layer3_http._framing import FREE_CHUNKS, SMALLEST_AVERAGE, ChunkedDecoder, LengthDecoder

TINY = b"1\r\na\r\n"


def decode(data: bytes) -> bytes:
    decoder = ChunkedDecoder(body_size_limit=1 << 30)
    return b"".join(decoder.feed(data))


def test_a_body_of_tiny_chunks_is_refused_after_the_free_ones() -> None:
    began = time.process_time()
    with pytest.raises(ClientError) as refused:
        decode(TINY * 1_000_000 + b"0\r\n\r\n")
    assert refused.value.status == 400
    assert time.process_time() - began < 5  # it stops early: 16 s of CPU before
    assert decode(TINY * FREE_CHUNKS + b"0\r\n\r\n") == b"a" * FREE_CHUNKS  # these are free


def test_chunks_of_the_smallest_average_are_fine() -> None:
    piece = b"%x\r\n" % SMALLEST_AVERAGE + b"b" * SMALLEST_AVERAGE + b"\r\n"
    count = FREE_CHUNKS * 2
    assert len(decode(piece * count + b"0\r\n\r\n")) == count * SMALLEST_AVERAGE


def test_too_many_cookies_are_431_and_a_normal_header_is_parsed() -> None:
    many = "; ".join(f"c{n}=v" for n in range(COOKIE_LIMIT + 1))
    with pytest.raises(ClientError) as refused:
        parse_cookies([many])
    assert refused.value.status == 431
    fine = "; ".join(f"c{n}=v" for n in range(COOKIE_LIMIT))
    assert len(parse_cookies([fine])) == COOKIE_LIMIT


@pytest.fixture(scope="module")
def server() -> Server:
    with http_server("--workers", "2", app=APPS / "testapp.py") as running_:
        yield running_


def test_the_server_answers_tiny_chunks_with_400(server: Server) -> None:
    data = request_bytes("POST", "/echo", headers=[("Host", "x"),
                                                    ("Transfer-Encoding", "chunked")],
                         body=TINY * 200_000 + b"0\r\n\r\n")
    with server.raw(timeout=20) as client:
        client.send(data)
        assert client.read_response().status == 400


CHUNKED_HEAD = b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("cut", [
    b"1",                      # EOF inside a chunk-size line
    b"10;name=va",             # ... inside its extension
    b"5\r\nhel",               # ... inside chunk data
    b"5\r\nhello\r",           # ... inside the CRLF after the data
    b"5\r\nhello\r\n0\r\nX-Trailer: y",  # ... inside a trailer line
], ids=["size-line", "extension", "data", "crlf", "trailer"])
def test_eof_inside_a_chunked_body_is_400(server: Server, cut: bytes) -> None:
    with server.raw() as client:
        client.send(CHUNKED_HEAD, cut)
        client.sock.shutdown(socket.SHUT_WR)
        assert client.read_response().status == 400


def test_a_large_chunked_body_arrives_whole_and_the_next_request_after_it(
        server: Server) -> None:
    """Chunks cut across every receive, then a pipelined request in the same send."""
    sizes = [1, 65535, 65536, 65537, 300_000, 7, 262_144, 262_145, 3]
    body = b"".join(bytes([65 + n % 26]) * size for n, size in enumerate(sizes))
    chunks = b"".join(b"%x;e=\"v\"\r\n" % size + bytes([65 + n % 26]) * size + b"\r\n"
                      for n, size in enumerate(sizes))
    second = request_bytes("GET", "/hello", headers=[("Host", "x")])
    with server.raw(timeout=20) as client:
        client.send(CHUNKED_HEAD, chunks, b"0\r\n\r\n", second)
        first = client.read_response()
        assert first.status == 200
        assert json.loads(first.body)["body"].encode("latin-1") == body
        assert client.read_response().status == 200


def test_decoders_copy_out_of_a_reused_buffer() -> None:
    """A memoryview input may be overwritten after `feed`: the pieces are copies."""
    block = bytearray(b"5\r\nhello\r\n0\r\n\r\nNEXT")
    decoder = ChunkedDecoder()
    pieces = decoder.feed(memoryview(block))
    block[:] = bytes(len(block))
    assert pieces == [b"hello"] and decoder.done and decoder.leftover == b"NEXT"
    length = LengthDecoder(3, piece_size=2)
    block = bytearray(b"abcd")
    pieces = length.feed(memoryview(block))
    block[:] = b"xxxx"
    assert pieces == [b"ab", b"c"] and length.leftover == b"d"
