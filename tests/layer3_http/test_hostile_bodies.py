"""Bodies made to cost per piece: a million tiny chunks, a mebibyte of cookies.

Both were found by attacking a running server (`bench/hostile.py`): a
chunked body of a million 1-byte chunks took a worker some 16 s and
130 MiB, a 900 KiB ``Cookie`` header 40 MiB. Now the first is refused
after `FREE_CHUNKS` chunks that average under `SMALLEST_AVERAGE` bytes,
and the second past `COOKIE_LIMIT` cookies, each with a clear status.
"""

from __future__ import annotations

import time

import pytest
from http_support import APPS, Server, http_server, request_bytes

from layer3_http._chunked import FREE_CHUNKS, SMALLEST_AVERAGE, ChunkedDecoder
from layer3_http._errors import ClientError
from layer3_http._forms import COOKIE_LIMIT, parse_cookies

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
