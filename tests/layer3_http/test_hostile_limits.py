"""Every input limit, end to end: a request exactly at the limit is served, one byte past it is not.

The server (``tests/hostile_apps/recorder.py``) runs with
``--request-header-size-limit 16384``, ``--request-body-size-limit 100000``
and ``--drain-size-limit 1000``; the other limits are the parsers' defaults:

| limit | value | past it |
| --- | --- | --- |
| request line (before its CRLF) | 8192 bytes | 414 |
| request head (all of it, CRLFs included) | ``request_header_size_limit`` | 431 |
| header fields | 100 | 431 |
| empty lines before the request line | 4 | 400 |
| body, Content-Length or chunked | ``request_body_size_limit`` | 413 |
| Content-Length numeral | 18 digits | 400 |
| chunk size | 16 hex digits | 400 |
| chunk extensions of one chunk | 1024 bytes | 400 |
| trailer fields / trailer section | 100 / 65536 bytes | 431 |
| multipart parts | 1000 | 413 |
| one part's header section | 16384 bytes | 413 |
| padding after a multipart delimiter | 256 bytes | 400 |
| multipart boundary | 70 characters | 400 |
| urlencoded form fields | 10000 | 413 |
| unread body drained to keep the connection | ``drain_size_limit`` | connection closed |

Each test builds the request so that the limited quantity is exactly the
limit, checks that the handler received it whole, then adds one byte (or
one item) and checks the refusal, with ``Connection: close`` and the end of
the connection. The limit on query fields (10000) cannot be reached through
a request line of at most 8192 bytes, so it needs no test of its own.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_support import RawClient, Response, Server, http_server

RECORDER = Path(__file__).resolve().parent.parent / "hostile_apps" / "recorder.py"
HEAD_LIMIT = 16384
BODY_LIMIT = 100_000
DRAIN_LIMIT = 1000
BOUNDARY = "limit-boundary"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with http_server("--workers", "2", "--request-header-size-limit", str(HEAD_LIMIT),
                     "--request-body-size-limit", str(BODY_LIMIT),
                     "--drain-size-limit", str(DRAIN_LIMIT), "--drain-timeout", "5",
                     app=RECORDER) as running_:
        yield running_


def exchange(server: Server, data: bytes) -> tuple[Response, RawClient]:
    """Send a whole request, read one response; the client stays open."""
    client = server.raw()
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.send(data)
    return client.read_response(), client


def served(server: Server, data: bytes) -> dict[str, object]:
    """The request is answered 200; return what the handler echoed."""
    response, client = exchange(server, data)
    with client:
        assert response.status == 200, (response.status, response.body[:200])
        echoed: dict[str, object] = json.loads(response.body)
    return echoed


def refused(server: Server, data: bytes, status: int) -> None:
    """The request gets `status`, Connection: close, and the connection ends."""
    response, client = exchange(server, data)
    with client:
        assert response.status == status, (response.status, response.body[:200])
        assert response.header("Connection") == "close"
        assert client.closed_by_server()


def head(*fields: str, line: str = "POST /front HTTP/1.1") -> bytes:
    return "".join(f"{text}\r\n" for text in (line, "Host: x", *fields, "")).encode("latin-1")


def at_and_past(server: Server, at: bytes, past: bytes, status: int) -> dict[str, object]:
    echoed = served(server, at)
    refused(server, past, status)
    return echoed


# -- the head -------------------------------------------------------------------------------


def request_line(length: int) -> bytes:
    fixed = len("GET / HTTP/1.1")
    return f"GET /{'a' * (length - fixed)} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def test_the_request_line_helper_counts_the_bytes_before_the_crlf() -> None:
    assert request_line(8192).index(b"\r\n") == 8192


def test_request_line_limit(server: Server) -> None:
    echoed = at_and_past(server, request_line(8192), request_line(8193), 414)
    assert len(str(echoed["target"])) == 8192 - len("GET  HTTP/1.1")


def padded_head(size: int) -> bytes:
    """A GET head of exactly `size` bytes (a filler field makes up the size)."""
    bare = head("X-Pad: ", line="GET /front HTTP/1.1")
    return head("X-Pad: " + "p" * (size - len(bare)), line="GET /front HTTP/1.1")


def test_head_size_limit(server: Server) -> None:
    assert len(padded_head(HEAD_LIMIT)) == HEAD_LIMIT
    at_and_past(server, padded_head(HEAD_LIMIT), padded_head(HEAD_LIMIT + 1), 431)


def test_header_count_limit(server: Server) -> None:
    def fields(count: int) -> bytes:  # Host is one of them
        return head(*(f"X-{number}: v" for number in range(count - 1)), line="GET /front HTTP/1.1")

    echoed = at_and_past(server, fields(100), fields(101), 431)
    assert echoed["headers"] == 100


def test_empty_lines_before_the_request_line(server: Server) -> None:
    request = head(line="GET /front HTTP/1.1")
    at_and_past(server, b"\r\n" * 4 + request, b"\r\n" * 5 + request, 400)


# -- the body --------------------------------------------------------------------------------


def test_content_length_body_limit(server: Server) -> None:
    def body(size: int) -> bytes:
        return head(f"Content-Length: {size}") + b"b" * size

    echoed = at_and_past(server, body(BODY_LIMIT), body(BODY_LIMIT + 1), 413)
    assert echoed["body"] == "b" * BODY_LIMIT


def chunked(*chunks: bytes, trailer: bytes = b"", size_lines: list[bytes] | None = None) -> bytes:
    lines = size_lines or [b"%x" % len(chunk) for chunk in chunks]
    body = b"".join(line + b"\r\n" + chunk + b"\r\n"
                    for line, chunk in zip(lines, chunks, strict=True))
    return head("Transfer-Encoding: chunked") + body + b"0\r\n" + trailer + b"\r\n"


def test_chunked_body_limit(server: Server) -> None:
    half = BODY_LIMIT // 2
    echoed = at_and_past(server, chunked(b"c" * half, b"c" * half),
                         chunked(b"c" * half, b"c" * (half + 1)), 413)
    assert echoed["body"] == "c" * BODY_LIMIT


def test_content_length_numeral_limit(server: Server) -> None:
    # 18 digits are parsed (and are past the body limit); 19 are not even parsed.
    refused(server, head("Content-Length: " + "9" * 18), 413)
    refused(server, head("Content-Length: " + "9" * 19), 400)
    assert served(server, head("Content-Length: " + "0" * 17 + "5") + b"12345")["body"] == "12345"


def test_chunk_size_digit_limit(server: Server) -> None:
    echoed = at_and_past(server, chunked(b"hello", size_lines=[b"5".rjust(16, b"0")]),
                         chunked(b"hello", size_lines=[b"5".rjust(17, b"0")]), 400)
    assert echoed["body"] == "hello"


def test_chunk_extension_limit(server: Server) -> None:
    def extended(length: int) -> bytes:  # the extensions are ";e=" and a value
        return chunked(b"hello", size_lines=[b"5;e=" + b"v" * (length - 3)])

    echoed = at_and_past(server, extended(1024), extended(1025), 400)
    assert echoed["body"] == "hello"


def test_trailer_field_count_limit(server: Server) -> None:
    def trailers(count: int) -> bytes:
        return chunked(b"t", trailer=b"".join(b"T-%d: v\r\n" % n for n in range(count)))

    at_and_past(server, trailers(100), trailers(101), 431)


def test_trailer_section_size_limit(server: Server) -> None:
    def section(size: int) -> bytes:  # one field and the empty line: size bytes
        return chunked(b"t", trailer=b"T: " + b"v" * (size - len(b"T: \r\n\r\n")) + b"\r\n")

    at_and_past(server, section(65536), section(65537), 431)


# -- forms -----------------------------------------------------------------------------------


def multipart(parts: list[bytes], boundary: str = BOUNDARY, padding: int = 0) -> bytes:
    delimiter = b"--" + boundary.encode() + b" " * padding + b"\r\n"
    body = b"".join(delimiter + part + b"\r\n" for part in parts) + b"--" + boundary.encode() + \
        b"--\r\n"
    return head(f"Content-Type: multipart/form-data; boundary=\"{boundary}\"",
                f"Content-Length: {len(body)}", line="POST /form HTTP/1.1") + body


FIELD = b'Content-Disposition: form-data; name="f"\r\n\r\nv'


def test_multipart_part_count_limit(server: Server) -> None:
    echoed = at_and_past(server, multipart([FIELD] * 1000), multipart([FIELD] * 1001), 413)
    assert echoed["values"] == 1000


def test_multipart_part_header_section_limit(server: Server) -> None:
    def part(size: int) -> bytes:  # the header lines and their empty line: size bytes
        disposition = b'Content-Disposition: form-data; name="f"\r\n'
        fixed = len(disposition + b"X-Pad: \r\n\r\n")
        return disposition + b"X-Pad: " + b"p" * (size - fixed) + b"\r\n\r\nv"

    echoed = at_and_past(server, multipart([part(16384)]), multipart([part(16385)]), 413)
    assert echoed["values"] == 1


def test_multipart_delimiter_padding_limit(server: Server) -> None:
    echoed = at_and_past(server, multipart([FIELD], padding=256),
                         multipart([FIELD], padding=257), 400)
    assert echoed["values"] == 1


def test_multipart_boundary_length_limit(server: Server) -> None:
    echoed = at_and_past(server, multipart([FIELD], boundary="b" * 70),
                         multipart([FIELD], boundary="b" * 71), 400)
    assert echoed["values"] == 1


def test_urlencoded_field_count_limit(server: Server) -> None:
    def form(count: int) -> bytes:
        body = b"&".join(b"f=%d" % number for number in range(count))
        return head("Content-Type: application/x-www-form-urlencoded",
                    f"Content-Length: {len(body)}", line="POST /form HTTP/1.1") + body

    echoed = at_and_past(server, form(10000), form(10001), 413)
    assert echoed["values"] == 10000


# -- the drain -------------------------------------------------------------------------------


def test_unread_body_drain_limit(server: Server) -> None:
    def unread_then_next(size: int) -> bytes:
        return (head(f"Content-Length: {size}", line="POST /ignore HTTP/1.1") + b"d" * size +
                head(line="GET /second HTTP/1.1"))

    with server.raw() as client:  # at the limit: drained, the next request is served
        client.send(unread_then_next(DRAIN_LIMIT))
        assert client.read_response().status == 200
        assert json.loads(client.read_response().body)["target"] == "/second"
    with server.raw() as client:  # one byte more: the connection closes after the answer
        client.send(unread_then_next(DRAIN_LIMIT + 1))
        first = client.read_response()
        assert first.status == 200 and json.loads(first.body)["target"] == "/ignore"
        assert client.closed_by_server()
