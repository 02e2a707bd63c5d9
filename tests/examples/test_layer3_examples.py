"""Drive every part 3 step program and exercise solution with real HTTP clients.

The by-hand steps run as a reader runs them (``python
docs/examples/layer3/stepNN_x.py``); the applications run under the layer 3
command line (``python -m layer3_http docs/examples/layer3/stepNN_x.py
--listen 127.0.0.1:0``). Clients are raw sockets (to see and to send
exact bytes), ``http.client``, ``urllib`` and, where installed, ``curl``.
Every read has a timeout, every wait is on an event (a line printed, bytes
received, EOF), and every server is stopped with SIGTERM, which must give
exit code 0, then killed and reaped by PID whatever happened.
"""

from __future__ import annotations

import hashlib
import http.client
import http.cookiejar
import importlib.util
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import EXAMPLES, Program, example, running

TIMEOUT = 20.0
CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


# -- starting servers ----------------------------------------------------------------------------


@contextmanager
def serve_app(relative: str, *args: str) -> Iterator[tuple[Program, int]]:
    """``python -m layer3_http docs/examples/RELATIVE --listen 127.0.0.1:0 ARGS``."""
    argv = [sys.executable, "-m", "layer3_http", str(EXAMPLES / relative),
            "--listen", "127.0.0.1:0", *args]
    with running(argv) as program:
        yield program, program.wait_for_port()


@contextmanager
def stopped_cleanly(server: Iterator[tuple[Program, int]]) -> Iterator[tuple[Program, int]]:
    """Yield a started server; afterwards SIGTERM must stop it with exit code 0."""
    with server as (program, port):
        yield program, port
        assert program.stop() == 0, program.output()


# -- a raw HTTP client ---------------------------------------------------------------------------


@dataclass
class Response:
    """A response as it came off the wire."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    chunks: list[int]  # the size of each chunk, for a chunked body

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        assert len(values) <= 1, (name, values)
        return values[0] if values else None


class Client:
    """A raw HTTP connection: exact bytes out, responses in, every read bounded."""

    def __init__(self, port: int, buffer_size: int | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if buffer_size is not None:  # small kernel buffers: no room to hide data in
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, buffer_size)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, buffer_size)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(("127.0.0.1", port))
        self.buffer = bytearray()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, *data: bytes) -> None:
        for piece in data:
            self.sock.sendall(piece)

    def _fill(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buffer += chunk
        return bool(chunk)

    def read_until(self, marker: bytes) -> bytes:
        while (end := self.buffer.find(marker)) < 0:
            if not self._fill():
                raise EOFError(f"EOF before {marker!r}; got {bytes(self.buffer)[:200]!r}")
        data = bytes(self.buffer[: end + len(marker)])
        del self.buffer[: end + len(marker)]
        return data

    def read_exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise EOFError(f"EOF after {len(self.buffer)} of {size} bytes")
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        data, self.buffer = bytes(self.buffer), bytearray()
        return data

    def at_eof(self) -> bool:
        """True when the server closed the connection and nothing is left to read."""
        return not self.buffer and not self._fill()

    def read_response(self, head_request: bool = False) -> Response:
        lines = self.read_until(b"\r\n\r\n").decode("iso-8859-1").split("\r\n")[:-2]
        status = int(lines[0].split(" ")[1])
        headers = [(name, value.strip()) for name, _, value in
                   (line.partition(":") for line in lines[1:])]
        response = Response(status, headers, b"", [])
        if head_request or status in (204, 304) or 100 <= status < 200:
            return response
        if (response.header("Transfer-Encoding") or "").lower() == "chunked":
            body = bytearray()
            while size := int(self.read_until(b"\r\n")[:-2].split(b";")[0], 16):
                response.chunks.append(size)
                body += self.read_exactly(size)
                assert self.read_exactly(2) == b"\r\n"
            assert self.read_until(b"\r\n") == b"\r\n"  # no trailers from our servers
            response.body = bytes(body)
        elif (length := response.header("Content-Length")) is not None:
            response.body = self.read_exactly(int(length))
        else:
            response.body = self.read_to_eof()
        return response


def exchange(port: int, *data: bytes, head_request: bool = False) -> Response:
    """Send the bytes on a new connection and read one response."""
    with Client(port) as client:
        client.send(*data)
        return client.read_response(head_request)


def get(port: int, target: str, *fields: str, method: str = "GET",
        version: str = "HTTP/1.1") -> Response:
    head = f"{method} {target} {version}\r\nHost: 127.0.0.1\r\n"
    head += "".join(field + "\r\n" for field in fields) + "\r\n"
    return exchange(port, head.encode("latin-1"), head_request=method == "HEAD")


def post(port: int, target: str, body: bytes, *fields: str) -> Response:
    head = f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
    head += "".join(field + "\r\n" for field in fields) + "\r\n"
    return exchange(port, head.encode("latin-1"), body)


def chunked(body: bytes, sizes: list[int]) -> bytes:
    """Frame `body` as chunks of the given sizes (the rest in one more), and the last chunk."""
    pieces, start = [], 0
    for size in [*sizes, len(body)]:
        piece = body[start : start + size]
        start += len(piece)
        if piece:
            pieces.append(b"%x\r\n%s\r\n" % (len(piece), piece))
    return b"".join(pieces) + b"0\r\n\r\n"


def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
    assert CURL is not None
    return subprocess.run([CURL, "--silent", "--show-error", "--noproxy", "*",
                           "--max-time", str(TIMEOUT), *args],
                          capture_output=True, timeout=TIMEOUT + 10, check=False)


# -- chapter 1: the request line by hand ---------------------------------------------------------


@pytest.fixture(scope="module")
def step01() -> Iterator[tuple[Program, int]]:
    with stopped_cleanly(example("layer3/step01_request_line.py")) as server:
        yield server


def test_step01_answers_a_request_line_by_hand(step01: tuple[Program, int]) -> None:
    program, port = step01
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request("GET", "/some/path?x=1&y=%20")
    response = conn.getresponse()
    body = response.read()
    conn.close()
    assert response.status == 200 and response.getheader("Connection") == "close"
    assert body == b"method: GET\ntarget: /some/path?x=1&y=%20\nversion: HTTP/1.1\n"
    assert response.getheader("Content-Length") == str(len(body))
    head = get(port, "/", method="HEAD")
    assert head.status == 200 and head.header("Content-Length") == "41" and head.body == b""
    assert get(port, "/x", method="DELETE").status == 501
    assert get(port, "/x", version="HTTP/1.0").body.endswith(b"version: HTTP/1.0\n")
    program.wait_for_line(rb"DELETE /x HTTP/1\.1")


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET / HTTP/1.1\n\r\n", 400),  # bare LF
    (b"GET /a\rb HTTP/1.1\r\n\r\n", 400),  # bare CR
    (b"GET  / HTTP/1.1\r\n\r\n", 400),  # two spaces
    (b"GET\t/ HTTP/1.1\r\n\r\n", 400),  # a tab is not a space here
    (b"GET / http/1.1\r\n\r\n", 400),  # the version is case-sensitive
    (b"GET index.html HTTP/1.1\r\n\r\n", 400),  # not origin-form
    (b"G(T / HTTP/1.1\r\n\r\n", 400),  # the method is not a token
    (b"GET / HTTP/1.2\r\n\r\n", 505),
    (b"GET / HTTP/2.0\r\n\r\n", 505),
    (b"GET /" + b"a" * 8200 + b" HTTP/1.1\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
], ids=["bare-LF", "bare-CR", "two-spaces", "tab", "lowercase-version", "no-slash",
        "bad-method", "HTTP-1.2", "HTTP-2", "long-line", "long-head"])
def test_step01_refuses_what_it_cannot_accept(step01: tuple[Program, int],
                                              request_bytes: bytes, status: int) -> None:
    _, port = step01
    with Client(port) as client:
        client.send(request_bytes)
        response = client.read_response()
        assert client.at_eof()
    assert response.status == status
    assert response.body.decode().startswith(str(status))


def test_step01_longest_request_line_is_accepted(step01: tuple[Program, int]) -> None:
    _, port = step01
    target = b"/" + b"a" * (8192 - len(b"GET  HTTP/1.1") - 1)
    line = b"GET " + target + b" HTTP/1.1"
    assert len(line) == 8192
    assert exchange(port, line + b"\r\n\r\n").status == 200
    assert exchange(port, line.replace(b"GET ", b"GET a") + b"\r\n\r\n").status == 414


def test_step01_a_request_in_pieces_and_cut_short(step01: tuple[Program, int]) -> None:
    program, port = step01
    request = b"GET /bytes HTTP/1.1\r\nHost: x\r\n\r\n"
    with Client(port) as client:
        for byte in request:  # one byte per segment: read() waits for the LF
            client.send(bytes([byte]))
        assert client.read_response().body.startswith(b"method: GET\ntarget: /bytes\n")
    with Client(port) as client:  # EOF inside the request line
        client.send(b"GET / HT")
        client.sock.shutdown(socket.SHUT_WR)
        assert client.read_response().status == 400
    with Client(port):
        pass  # a client that says nothing and leaves gets nothing
    assert get(port, "/after").status == 200
    program.wait_for_line(rb"GET /after HTTP/1\.1")


# -- chapter 2: header fields --------------------------------------------------------------------


@pytest.fixture(scope="module")
def step02() -> Iterator[tuple[Program, int]]:
    with stopped_cleanly(example("layer3/step02_fields.py")) as server:
        yield server


@pytest.fixture(scope="module")
def tables() -> Iterator[tuple[Program, int]]:
    with stopped_cleanly(serve_app("layer3/step02_tables.py")) as server:
        yield server


def test_step02_fields_are_listed_as_understood(step02: tuple[Program, int]) -> None:
    _, port = step02
    response = get(port, "/", "Accept: text/plain", "ACCEPT:*/*  ", "X-Empty:")
    assert response.status == 200
    assert response.body == (b"host: '127.0.0.1'\naccept: 'text/plain'\naccept: '*/*'\n"
                             b"x-empty: ''\n")
    assert get(port, "/", version="HTTP/1.0").status == 200  # HTTP/1.0 needs no Host


BAD_HEADS = {
    "obs-fold": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n", 400),
    "space-before-colon": (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    "tab-before-colon": (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length\t: 0\r\n\r\n", 400),
    "no-colon": (b"GET / HTTP/1.1\r\nHost: x\r\nJust text\r\n\r\n", 400),
    "nul-in-value": (b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400),
    "no-host": (b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400),
    "two-hosts": (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "too-many-fields": (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-N: 1\r\n" * 100 + b"\r\n", 431),
}


@pytest.mark.parametrize("server", ["step02", "tables"])
@pytest.mark.parametrize("case", list(BAD_HEADS))
def test_step02_by_hand_and_layer3_refuse_the_same_heads(
        request: pytest.FixtureRequest, server: str, case: str) -> None:
    _, port = request.getfixturevalue(server)
    head, status = BAD_HEADS[case]
    with Client(port) as client:
        client.send(head)
        assert client.read_response().status == status
        assert client.at_eof()


def test_step02_the_five_tables(tables: tuple[Program, int]) -> None:
    _, port = tables
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.putrequest("GET", "/", skip_accept_encoding=True)
    conn.putheader("Accept", "text/html, */*;q=0.1")
    conn.putheader("accept", "image/png")  # a second line of the same field
    conn.putheader("If-None-Match", '"a,b", "c"')
    conn.putheader("Cache-Control", "No-Cache")
    conn.endheaders()
    text = conn.getresponse().read().decode()
    conn.close()
    assert "accept\n" in text and "Accept\n" not in text  # names are lower-cased
    assert "headers[name]            = ['text/html, */*;q=0.1', 'image/png']" in text
    assert "headers_value[name]      = False" in text  # sent on two lines
    assert "headers_csv_table[name]  = ['text/html', '*/*;q=0.1', 'image/png']" in text
    assert "headers_csv_string[name] = 'text/html, */*;q=0.1, image/png'" in text
    assert "headers_csv_table[name]  = ['\"a,b\"', '\"c\"']" in text  # quotes keep commas
    assert "headers_flags[name]      = ['no-cache']" in text  # items lower-cased
    assert "headers_value[name]      = 'No-Cache'" in text


def test_step02_the_tables_for_an_absent_field(tables: tuple[Program, int]) -> None:
    _, port = tables
    text = get(port, "/?name=Cookie").body.decode()
    assert text == ("Cookie\n"
                    "  headers[name]            = []\n"
                    "  headers_value[name]      = None\n"
                    "  headers_csv_table[name]  = []\n"
                    "  headers_csv_string[name] = ''\n"
                    "  headers_flags[name]      = []\n")


# -- chapter 3: bodies ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def step03_by_hand() -> Iterator[tuple[Program, int]]:
    with stopped_cleanly(example("layer3/step03_bodies.py")) as server:
        yield server


@pytest.fixture(scope="module")
def step03_layer3() -> Iterator[tuple[Program, int]]:
    with stopped_cleanly(serve_app("layer3/step03_stream.py")) as server:
        yield server


BODY_SERVERS = ["step03_by_hand", "step03_layer3"]


def received(body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"received {len(body)} bytes, sha256 {digest}\n".encode()


@pytest.mark.parametrize("server", BODY_SERVERS)
def test_step03_content_length_and_chunked_bodies(request: pytest.FixtureRequest,
                                                  server: str) -> None:
    _, port = request.getfixturevalue(server)
    body = random.Random(3).randbytes(3_000_000)
    assert post(port, "/", body).body == received(body)
    assert post(port, "/", b"").body == received(b"")
    sizes = [1, 2, 70_000, 3, 100_000]
    assert exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                    chunked(body, sizes)).body == received(body)
    # Size in capitals with an extension, then a trailer field: both allowed, both ignored.
    wire = b"A;name=value\r\n0123456789\r\n0\r\nX-Checksum: none\r\n\r\n"
    assert exchange(port, b"PUT / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n",
                    wire).body == received(b"0123456789")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request("POST", "/", body=iter([body[:5], body[5:]]), encode_chunked=True)
    assert conn.getresponse().read() == received(body)
    conn.close()


AMBIGUOUS = {
    "CL-and-TE": (b"Content-Length: 5\r\nTransfer-Encoding: chunked", b"0\r\n\r\n", 400),
    "TE-not-chunked": (b"Transfer-Encoding: gzip", b"", 400),
    "chunked-not-last": (b"Transfer-Encoding: chunked, gzip", b"", 400),
    "TE-gzip-chunked": (b"Transfer-Encoding: gzip, chunked", b"", 501),
    "negative-CL": (b"Content-Length: -1", b"", 400),
    "plus-CL": (b"Content-Length: +5", b"hello", 400),
    "CL-disagree": (b"Content-Length: 5, 6", b"hello", 400),
    "CL-twice-disagree": (b"Content-Length: 5\r\nContent-Length: 6", b"hello", 400),
    "CL-list-agrees": (b"Content-Length: 5, 5", b"hello", 400),
    "CL-twice-agree": (b"Content-Length: 5\r\nContent-Length: 5", b"hello", 400),
    "bad-chunk-size": (b"Transfer-Encoding: chunked", b"zz\r\nhello\r\n0\r\n\r\n", 400),
    "chunk-without-CRLF": (b"Transfer-Encoding: chunked", b"5\r\nhelloX0\r\n\r\n", 400),
    "too-large": (b"Content-Length: 67108865", b"", 413),
    "expect-other": (b"Content-Length: 5\r\nExpect: 200-ok", b"hello", 417),
}


@pytest.mark.parametrize("server", BODY_SERVERS)
@pytest.mark.parametrize("case", list(AMBIGUOUS))
def test_step03_ambiguous_framing_is_refused(request: pytest.FixtureRequest, server: str,
                                             case: str) -> None:
    _, port = request.getfixturevalue(server)
    fields, body, status = AMBIGUOUS[case]
    with Client(port) as client:
        client.send(b"POST / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n\r\n", body)
        assert client.read_response().status == status
        assert client.at_eof()  # a framing error always ends the connection


@pytest.mark.parametrize("server", BODY_SERVERS)
def test_step03_expect_100_continue(request: pytest.FixtureRequest, server: str) -> None:
    _, port = request.getfixturevalue(server)
    body = os.urandom(200_000)
    with Client(port) as client:
        client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 200000\r\n"
                    b"Expect: 100-continue\r\n\r\n")
        # The client sends nothing more until the server invites the body.
        assert client.read_until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.send(body)
        assert client.read_response().body == received(body)


@pytest.mark.parametrize("server", BODY_SERVERS)
def test_step03_a_body_cut_short(request: pytest.FixtureRequest, server: str) -> None:
    _, port = request.getfixturevalue(server)
    for framing, partial in ((b"Content-Length: 100", b"only forty-two bytes of a hundred, sorry"),
                             (b"Transfer-Encoding: chunked", b"64\r\nshort")):
        with Client(port) as client:
            client.send(b"POST / HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n", partial)
            client.sock.shutdown(socket.SHUT_WR)
            assert client.read_response().status == 400


@needs_curl
@pytest.mark.parametrize("server", BODY_SERVERS)
def test_step03_curl_uploads(request: pytest.FixtureRequest, server: str,
                             tmp_path: Path) -> None:
    _, port = request.getfixturevalue(server)
    upload = tmp_path / "upload.bin"
    body = os.urandom(2_000_000)  # large enough for curl to send Expect: 100-continue
    upload.write_bytes(body)
    url = f"http://127.0.0.1:{port}/"
    assert curl("--data-binary", f"@{upload}", url).stdout == received(body)
    result = curl("-H", "Transfer-Encoding: chunked", "--data-binary", f"@{upload}", url)
    assert result.stdout == received(body)


# -- chapter 4: responses ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def responses() -> Iterator[tuple[Program, int]]:
    with stopped_cleanly(serve_app("layer3/step04_responses.py")) as server:
        yield server


def count_lines(n: int) -> bytes:
    return b"".join(b"line %d\n" % line for line in range(1, n + 1))


def test_step04_a_short_response_goes_out_whole_with_a_content_length(
        responses: tuple[Program, int]) -> None:
    _, port = responses
    with Client(port) as client:
        client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        head = client.read_until(b"\r\n\r\n")
        assert re.fullmatch(rb"HTTP/1\.1 200 OK\r\nDate: [^\r]+ GMT\r\n"
                            rb"Content-Type: text/plain; charset=utf-8\r\n"
                            rb"Content-Length: 13\r\n\r\n", head), head
        assert client.read_exactly(13) == b"hello, world\n"
    short = get(port, "/count?n=10")
    assert short.header("Content-Length") == str(len(count_lines(10)))
    assert short.body == count_lines(10)


def test_step04_a_long_response_is_chunked_in_pieces_of_at_least_1_kib(
        responses: tuple[Program, int]) -> None:
    _, port = responses
    response = get(port, "/count?n=1000")
    assert response.header("Transfer-Encoding") == "chunked"
    assert response.header("Content-Length") is None
    assert response.body == count_lines(1000)
    assert len(response.chunks) > 2 and min(response.chunks[:-1]) >= 1024


def test_step04_flush_sends_one_chunk_per_call(responses: tuple[Program, int]) -> None:
    _, port = responses
    with Client(port) as client:
        client.send(b"GET /ticks?n=3 HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"Transfer-Encoding: chunked\r\n" in client.read_until(b"\r\n\r\n")
        assert client.read_until(b"0\r\n\r\n") == (
            b"7\r\ntick 1\n\r\n7\r\ntick 2\n\r\n7\r\ntick 3\n\r\n0\r\n\r\n")


def test_step04_a_declared_length_is_used_and_never_chunked(
        responses: tuple[Program, int]) -> None:
    _, port = responses
    response = get(port, "/sized?n=100000")
    assert response.header("Content-Length") == "100000"
    assert response.header("Transfer-Encoding") is None
    assert response.body == b"x" * 100_000


def test_step04_head_204_and_304_carry_no_body(responses: tuple[Program, int]) -> None:
    _, port = responses
    with Client(port) as client:  # on one connection: a stray body would break the next
        client.send(b"HEAD /count?n=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
        head = client.read_response(head_request=True)
        assert head.status == 200 and head.header("Content-Length") == str(
            len(count_lines(1000)))  # the length GET would have had
        client.send(b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n")
        empty = client.read_response()
        assert empty.status == 204 and empty.header("Content-Length") is None
        client.send(b'GET /cached HTTP/1.1\r\nHost: x\r\nIf-None-Match: "v0", "v1"\r\n\r\n')
        cached = client.read_response()
        assert cached.status == 304 and cached.header("ETag") == '"v1"'
        client.send(b"GET /cached HTTP/1.1\r\nHost: x\r\n\r\n")
        fresh = client.read_response()
        assert fresh.status == 200 and fresh.body == b"this page has version 1\n"


def test_step04_keep_alive_and_pipelining(responses: tuple[Program, int]) -> None:
    _, port = responses
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    bodies, sockets = [], set()
    for path in ("/hello", "/count?n=1000", "/sized?n=5000", "/hello"):
        conn.request("GET", path)
        bodies.append(conn.getresponse().read())
        sockets.add(id(conn.sock))
    conn.close()
    assert len(sockets) == 1  # one connection carried all four
    assert bodies[1] == count_lines(1000) and bodies[3] == b"hello, world\n"
    with Client(port) as client:  # three requests in one segment, answered in order
        client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                    b"GET /ticks?n=2 HTTP/1.1\r\nHost: x\r\n\r\n"
                    b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n"
                    b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.read_response().body == b"hello, world\n"
        assert client.read_response().body == b"tick 1\ntick 2\n"
        last = client.read_response()
        assert last.body == b"goodbye\n" and last.header("Connection") == "close"
        assert client.at_eof()  # the fourth request is never answered


def test_step04_connection_close_and_http_1_0(responses: tuple[Program, int]) -> None:
    _, port = responses
    with Client(port) as client:
        client.send(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert client.read_response().header("Connection") == "close"
        assert client.at_eof()
    with Client(port) as client:  # 1.0 and long: no chunks, the end of the body is EOF
        client.send(b"GET /count?n=1000 HTTP/1.0\r\n\r\n")
        response = client.read_response()
        assert response.header("Transfer-Encoding") is None
        assert response.header("Content-Length") is None
        assert response.header("Connection") == "close"
        assert response.body == count_lines(1000)
    with Client(port) as client:  # 1.0 may ask to keep the connection
        for _ in range(2):
            client.send(b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            response = client.read_response()
            assert response.header("Connection") == "keep-alive"
            assert response.body == b"hello, world\n"


def test_step04_minimum_output_chunk_size_decides_the_framing() -> None:
    with stopped_cleanly(serve_app("layer3/step04_responses.py",
                                   "--minimum-output-chunk-size", "65536")) as (_, port):
        response = get(port, "/count?n=1000")  # 8893 bytes: now below the threshold
        assert response.header("Content-Length") == str(len(count_lines(1000)))
        assert response.body == count_lines(1000)
        large = get(port, "/count?n=10000")
        assert large.header("Transfer-Encoding") == "chunked"
        assert min(large.chunks[:-1]) >= 65536


@needs_curl
def test_step04_curl_reuses_the_connection(responses: tuple[Program, int]) -> None:
    _, port = responses
    url = f"http://127.0.0.1:{port}"
    result = curl("--verbose", f"{url}/hello", f"{url}/count?n=3")
    assert result.stdout == b"hello, world\n" + count_lines(3)
    assert b"Re-using existing connection" in result.stderr


# -- chapter 5: forms, cookies, uploads ----------------------------------------------------------


@pytest.fixture(scope="module")
def forms() -> Iterator[tuple[Program, int]]:
    with stopped_cleanly(serve_app("layer3/step05_forms.py")) as server:
        yield server


def number_in(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match is not None, (pattern, text)
    return int(match[1])


def multipart(boundary: str, *parts: tuple[str, str | None, bytes]) -> bytes:
    """A multipart/form-data body: (field name, file name or None, content) per part."""
    out = []
    for name, file_name, content in parts:
        disposition = f'form-data; name="{name}"'
        if file_name is not None:
            disposition += f'; filename="{file_name}"\r\nContent-Type: application/octet-stream'
        out.append(f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
                   + content + b"\r\n")
    return b"".join(out) + f"--{boundary}--\r\n".encode()


def test_step05_greet_reads_the_query_or_the_form(forms: tuple[Program, int]) -> None:
    _, port = forms
    assert get(port, "/greet?name=Ada+L%C3%B6we").body == "hello, Ada Löwe\n".encode()
    form = post(port, "/greet", b"name=B%C3%A9a&name=second",
                "Content-Type: application/x-www-form-urlencoded")
    assert form.body == "hello, Béa\n".encode()  # post_params: the first value
    assert get(port, "/greet").body == b"hello, stranger\n"


def test_step05_visits_are_counted_in_a_cookie(forms: tuple[Program, int]) -> None:
    _, port = forms
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPCookieProcessor(jar))
    for visit in (1, 2, 3):
        with opener.open(f"http://127.0.0.1:{port}/", timeout=TIMEOUT) as page:
            assert f"Visit number {visit}.".encode() in page.read()
    assert [(cookie.name, cookie.value) for cookie in jar] == [("visits", "3")]
    # The value is opaque: a quoted value is unquoted, garbage starts again at 1.
    assert b"Visit number 8." in get(port, "/", 'Cookie: theme=dark; visits="7"').body
    assert b"Visit number 1." in get(port, "/", "Cookie: visits=%37").body


def test_step05_uploads_are_streamed_in_bounded_memory(forms: tuple[Program, int]) -> None:
    _, port = forms
    big = random.Random(5).randbytes(24 * 1024 * 1024)
    small = b"\r\n--not-the-boundary\r\n" * 2000
    body = multipart("b0undary", ("note", None, "ünïcode".encode()), ("file1", "big.bin", big),
                     ("file2", "empty.txt", b""), ("file3", "small.txt", small),
                     ("other", "kept.txt", b"kept as a field"))
    response = post(port, "/upload", body, "Content-Type: multipart/form-data; boundary=b0undary")
    lines = response.body.decode().splitlines()
    assert lines[0] == "note: ünïcode"
    assert lines[1].startswith(f"file1: big.bin (application/octet-stream), {len(big)} bytes, "
                               f"sha256 {hashlib.sha256(big).hexdigest()}, first call + ")
    more = number_in(r"first call \+ (\d+) more", lines[1])
    assert more + 1 >= len(big) // 16384  # pieces of at most maximum_input_chunk_size
    assert lines[1].endswith(", ended")
    assert lines[2] == (f"file2: empty.txt (application/octet-stream), 0 bytes, "
                        f"sha256 {EMPTY_SHA256}, first call + 0 more, ended")
    assert f"{len(small)} bytes, sha256 {hashlib.sha256(small).hexdigest()}" in lines[3]
    assert len(lines) == 5  # "other" does not match ^file: collected, not streamed
    grown = number_in(r"^peak memory grew by (\d+) KiB$", lines[4])
    assert grown < 8 * 1024, lines[4]  # 24 MiB went through, the peak barely moved


def test_step05_a_bad_multipart_body_is_400(forms: tuple[Program, int]) -> None:
    _, port = forms
    no_end = multipart("xyz", ("note", None, b"hi"))[: -len(b"--xyz--\r\n")]
    assert post(port, "/upload", no_end, "Content-Type: multipart/form-data; boundary=xyz"
                ).status == 400
    assert post(port, "/upload", b"x", "Content-Type: multipart/form-data").status == 400
    # Not a form at all: no error, simply no fields.
    lines = post(port, "/upload", b"{}", "Content-Type: application/json").body.splitlines()
    assert lines[0] == b"note: " and lines[1].startswith(b"peak memory") and len(lines) == 2


@needs_curl
def test_step05_curl_posts_forms_and_files(forms: tuple[Program, int], tmp_path: Path) -> None:
    _, port = forms
    upload = tmp_path / "photo.jpg"
    content = os.urandom(300_000)
    upload.write_bytes(content)
    result = curl("-F", "note=from curl", "-F", f"file1=@{upload}",
                  f"http://127.0.0.1:{port}/upload")
    assert result.stdout.startswith(b"note: from curl\nfile1: photo.jpg (image/jpeg), "
                                    b"300000 bytes, sha256 "
                                    + hashlib.sha256(content).hexdigest().encode())
    assert curl("-d", "name=Ada", f"http://127.0.0.1:{port}/greet").stdout == b"hello, Ada\n"


# -- chapter 6: the request state machine --------------------------------------------------------


@pytest.fixture(scope="module")
def states() -> Iterator[tuple[Program, int]]:
    # short bodies go to the handler as they come (see the chapter: held_body_limit)
    with stopped_cleanly(serve_app("layer3/step06_states.py", "--held-body-limit", "0")
                         ) as server:
        yield server


@pytest.fixture(scope="module")
def impatient() -> Iterator[tuple[Program, int]]:
    """The same application with every timeout at one second."""
    with stopped_cleanly(serve_app("layer3/step06_states.py", "--idle-timeout", "1",
                                   "--request-header-timeout", "1", "--stall-timeout", "1",
                                   "--held-body-limit", "0", "--write-completion-limit", "0")
                         ) as server:
        yield server


def test_step06_defer_reading_answers_before_the_body(states: tuple[Program, int]) -> None:
    _, port = states
    with Client(port) as client:
        client.send(b"POST /progress HTTP/1.1\r\nHost: x\r\nContent-Length: 10000\r\n\r\n",
                    b"a" * 100)  # 100 of 10 000 bytes: the client waits before the rest
        assert b"Transfer-Encoding: chunked" in client.read_until(b"\r\n\r\n")
        assert client.read_until(b"receiving\n\r\n") == b"a\r\nreceiving\n\r\n"
        client.send(b"a" * 9900)
        assert client.read_until(b"0\r\n\r\n") == b"15\r\nreceived 10000 bytes\n\r\n0\r\n\r\n"
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # and the connection goes on
        assert client.read_response().body == b"hello\n"


def test_step06_monologue_refuses_without_reading(states: tuple[Program, int]) -> None:
    _, port = states
    with Client(port) as client:  # a client that waits for 100 Continue never gets it
        client.send(b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n"
                    b"Expect: 100-continue\r\n\r\n")
        response = client.read_response()
        assert response.status == 413 and response.header("Connection") == "close"
        assert client.at_eof()
    with Client(port) as client:  # one that sends anyway: the rest is never read
        client.send(b"POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: 10485760\r\n\r\n",
                    b"z" * 65536)
        assert client.read_response().status == 413
        client.sock.shutdown(socket.SHUT_WR)
        assert client.at_eof()  # the server discarded what came, saw our end, closed


def test_step06_the_writer_reads_the_body_while_it_is_blocked(
        states: tuple[Program, int]) -> None:
    _, port = states
    body = b"b" * (8 * 1024 * 1024)
    with Client(port, buffer_size=65536) as client:
        # The whole body first, reading nothing: the 8 MiB answer fills every buffer
        # on the way, and only the server reading the body meanwhile lets this finish.
        client.send(b"POST /download?mb=8 HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body), body)
        response = client.read_response()
        assert response.status == 200 and len(response.body) == 8 * 1024 * 1024
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.read_response().body == b"hello\n"


def test_step06_deferred_reading_deadlocks_until_the_stall_timeout(
        impatient: tuple[Program, int]) -> None:
    program, port = impatient
    body = b"b" * (8 * 1024 * 1024)
    started = time.monotonic()
    with Client(port, buffer_size=65536) as client, pytest.raises(
            (ConnectionResetError, BrokenPipeError)):
        client.send(b"POST /download?mb=8&defer=1 HTTP/1.1\r\nHost: x\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body), body)
        client.read_response()
    assert time.monotonic() - started >= 0.9
    program.wait_for_line(rb"took no response data for 1\.0 s")


def test_step06_idle_and_request_header_timeouts(impatient: tuple[Program, int]) -> None:
    _, port = impatient
    started = time.monotonic()
    with Client(port) as client:  # nothing sent: closed without a word
        assert client.at_eof()
    assert time.monotonic() - started >= 0.9
    with Client(port) as client:  # a head that never ends: 408
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        response = client.read_response()
        assert response.status == 408 and client.at_eof()
    with Client(port) as client:  # kept alive after a response, then idle: closed
        client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert client.read_response().body == b"hello\n"
        assert client.at_eof()


def test_step06_a_failing_handler_gets_500_or_a_reset(states: tuple[Program, int]) -> None:
    program, port = states
    failed = get(port, "/fail")
    assert failed.status == 500 and failed.header("Connection") == "close"
    with Client(port) as client:
        client.send(b"GET /fail?when=after HTTP/1.1\r\nHost: x\r\n\r\n")
        with pytest.raises((ConnectionResetError, EOFError)):
            client.read_response()  # the head and 4 KiB came, the end never does
    assert get(port, "/").body == b"hello\n"  # the worker lives on
    program.wait_for_line(rb"GET /fail: the handler raised; answered 500")
    program.wait_for_line(rb"the handler raised after the response began; connection reset")
    program.wait_for_line(rb"RuntimeError: a bug in the handler")


# -- chapter 7: a real server --------------------------------------------------------------------


def wait_for_lines(program: Program, pattern: bytes, count: int) -> None:
    """Wait until `count` lines of the output match `pattern`."""
    start = 0
    for _ in range(count):
        program.wait_for_line(pattern, start=start)
        start = next(index for index in range(start, len(program.lines))
                     if re.search(pattern, program.lines[index])) + 1


def test_step07_echo_app_with_three_workers_and_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "http.sock"
    argv = [sys.executable, "-m", "layer3_http", str(EXAMPLES / "layer3/echo_app.py"),
            "--listen", "127.0.0.1:0", "--listen", f"unix:{path}", "--workers", "3"]
    with stopped_cleanly(running_server(argv)) as (program, port):
        program.wait_for_line(rb"listening on unix:")
        wait_for_lines(program, rb"INFO pool 0: forked worker \d+", 3)
        answer = json_of(get(port, "/a/b?x=1&x=2", "X-Demo: yes"))
        assert answer["path"] == "a/b" and answer["get_params"] == {"x": ["1", "2"]}
        assert answer["headers"] == {"host": ["127.0.0.1"], "x-demo": ["yes"]}
        with socket.socket(socket.AF_UNIX) as unix:
            unix.settimeout(TIMEOUT)
            unix.connect(str(path))
            unix.sendall(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                         b"Connection: close\r\n\r\nhello")
            reply = b"".join(iter(lambda: unix.recv(65536), b""))
        assert b'"body": "hello"' in reply
    assert sum(b"forked worker" in line for line in program.lines) == 3  # never more
    assert not path.exists()


def test_step07_a_log_file_and_a_pidfile(tmp_path: Path) -> None:
    log, pidfile = tmp_path / "server.log", tmp_path / "server.pid"
    argv = [sys.executable, "-m", "layer3_http", str(EXAMPLES / "layer3/echo_app.py"),
            "--listen", "127.0.0.1:0", "-l", str(log), "-p", str(pidfile)]
    with running_server(argv) as (program, port):
        assert get(port, "/").status == 200  # a worker answered: the master loop runs
        assert pidfile.read_text().strip() == str(program.pid)
        second = Program([*argv[:-4], "-p", str(pidfile)])
        try:  # a second server with the same pidfile refuses to start: exit code 2
            assert second.proc.wait(TIMEOUT) == 2
        finally:
            second.kill()
        assert program.stop() == 0, program.output()
    text = log.read_text()
    assert "INFO pool 0: forked worker" in text and text.endswith("INFO stopped\n")
    assert not pidfile.exists()


def json_of(response: Response) -> dict[str, object]:
    assert response.status == 200, response
    value = json.loads(response.body)
    assert isinstance(value, dict)
    return value


@needs_curl
def test_step07_echo_app_answers_curl() -> None:
    with stopped_cleanly(serve_app("layer3/echo_app.py")) as (_, port):
        result = curl("-d", "hello", f"http://127.0.0.1:{port}/some/path?a=1&a=2")
    assert b'"path": "some/path"' in result.stdout and b'"body": "hello"' in result.stdout


def test_step07_site_serves_a_page_and_files_and_logs_each_request() -> None:
    source = (EXAMPLES / "layer3/step07_site.py").read_bytes()
    with stopped_cleanly(serve_app("layer3/step07_site.py")) as (program, port):
        assert re.fullmatch(rb"worker \d+ has served \d+ requests\ntry /layer3/step07_site.py\n",
                            get(port, "/").body)
        file = get(port, "/layer3/step07_site.py")
        assert file.body == source and (file.header("Content-Type") or "").startswith("text/")
        etag = file.header("ETag")
        assert etag is not None
        assert get(port, "/layer3/step07_site.py", f"If-None-Match: {etag}").status == 304
        part = get(port, "/layer3/step07_site.py", "Range: bytes=0-9")
        assert part.status == 206 and part.body == source[:10]
        assert get(port, "/../README.md").status == 404  # no way out of the folder
        assert get(port, "/%2e%2e/README.md").status == 404
        moved = get(port, "/layer3")
        assert moved.status == 301 and moved.header("Location") == "/layer3/"
        program.wait_for_line(rb"GET /layer3/step07_site\.py 206 [0-9.]+ ms")
        program.wait_for_line(rb"worker \d+: GET /\.\./README\.md 404")


def test_step07_static_folder_from_the_command_line(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<h1>home</h1>\n")
    (tmp_path / "notes.txt").write_text("plain notes\n")
    argv = [sys.executable, "-m", "layer3_http", "--static", str(tmp_path),
            "--listen", "127.0.0.1:0", "--static-header", "X-Served-By: part 3"]
    with stopped_cleanly(running_server(argv)) as (_, port):
        home = get(port, "/")
        assert home.body == b"<h1>home</h1>\n" and home.header("X-Served-By") == "part 3"
        assert home.header("Content-Type") == "text/html; charset=utf-8"
        head = get(port, "/notes.txt", method="HEAD")
        assert head.header("Content-Length") == "12" and head.body == b""
        assert get(port, "/missing.txt").status == 404
        refused = get(port, "/notes.txt", method="DELETE")
        assert refused.status == 405 and refused.header("Allow") == "GET, HEAD"


@contextmanager
def running_server(argv: list[str]) -> Iterator[tuple[Program, int]]:
    with running(argv) as program:
        yield program, program.wait_for_port()


# -- exercises -----------------------------------------------------------------------------------


def test_ex1_paths_splits_and_decodes_the_target() -> None:
    with stopped_cleanly(example("layer3/solutions/ex1_paths.py")) as (_, port):
        response = get(port, "/caf%C3%A9/a+b?q=caf%C3%A9+au+lait&x=1&&x=%26&flag&sp=%2B")
        assert response.status == 200
        assert response.body.decode() == ("path: /café/a+b\n"  # "+" is a space only in a query
                                          "query: q = café au lait\nquery: x = 1\n"
                                          "query: x = &\nquery: flag = \nquery: sp = +\n")
        assert get(port, "/").body == b"path: /\n"
        for bad in ("/%zz", "/a%2", "/%FF%FE", "/a%00b", "/?x=%C3"):
            assert get(port, bad).status == 400, bad
        assert get(port, "no-slash").status == 400


def test_ex2_keepalive_serves_several_requests_on_one_connection() -> None:
    with stopped_cleanly(example("layer3/solutions/ex2_keepalive.py")) as (_, port):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        for number in (1, 2, 3):
            conn.request("GET", f"/n{number}")
            assert conn.getresponse().read() == (
                f"request {number} on this connection: GET /n{number}\n".encode())
        conn.close()
        with Client(port) as client:  # pipelined: answered in order, then closed as asked
            client.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.1\r\nHost: x\r\n\r\n"
                        b"GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert client.read_response().body.endswith(b"request 1 on this connection: GET /a\n")
            client.read_response()
            last = client.read_response()
            assert last.body == b"request 3 on this connection: GET /c\n"
            assert last.header("Connection") == "close" and client.at_eof()
        with Client(port) as client:  # HTTP/1.0: closed unless it asks for keep-alive
            client.send(b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            assert client.read_response().header("Connection") == "keep-alive"
            client.send(b"GET /old HTTP/1.0\r\n\r\n")
            assert client.read_response().header("Connection") == "close"
            assert client.at_eof()
        with Client(port) as client:  # a body it does not read: 501 and close
            client.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
            assert client.read_response().status == 501 and client.at_eof()


@pytest.fixture(scope="module")
def language() -> Iterator[tuple[Program, int]]:
    with stopped_cleanly(serve_app("layer3/solutions/ex3_language.py")) as server:
        yield server


@pytest.mark.parametrize(("fields", "greeting", "code"), [
    ((), "Hello!", "en"),
    (("Accept-Language: de-CH, fr;q=0.9, en;q=0.5",), "Hallo!", "de"),
    (("Accept-Language: fr;q=0.5, es;q=0.7",), "Hola!", "es"),
    (("Accept-Language: fr;q=0.2", "Accept-Language: es;q=0.1"), "Bonjour!", "fr"),
    (("Accept-Language: it, pt",), "Hello!", "en"),
    (("Accept-Language: en;q=0, *;q=0.5",), "Hallo!", "de"),
    (("Accept-Language: es;q=nonsense, fr;q=0.3",), "Bonjour!", "fr"),
    (("Accept-Language: FR",), "Bonjour!", "fr"),
], ids=["none", "region-and-weights", "highest-weight", "two-lines", "unknown", "star",
        "bad-weight", "capitals"])
def test_ex3_language_negotiation(language: tuple[Program, int], fields: tuple[str, ...],
                                  greeting: str, code: str) -> None:
    _, port = language
    response = get(port, "/", *fields)
    assert response.body == f"{greeting}\n".encode()
    assert response.header("Content-Language") == code
    assert response.header("Vary") == "Accept-Language"


def test_ex4_wordcount_counts_streamed_pieces_like_wc() -> None:
    text = random.Random(4).choices([b"word", b"x", b" ", b"\n", b"\t", b"  ", b"ab\ncd"], k=20000)
    body = b"".join(text)
    lines, words = body.count(b"\n"), len(body.split())
    expected = f"{lines} {words} {len(body)}\n".encode()
    with stopped_cleanly(serve_app("layer3/solutions/ex4_wordcount.py",
                                   "--maximum-input-chunk-size", "3")) as (_, port):
        assert post(port, "/", body).body == expected
        assert exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                        chunked(body, [1, 7, 1, 5000])).body == expected
        assert post(port, "/", b"").body == b"0 0 0\n"
        assert post(port, "/", b"one").body == b"0 1 3\n"


@pytest.fixture(scope="module")
def conditional() -> Iterator[tuple[int, str, bytes]]:
    """The ex5 server, and the ETag and text it serves (loaded from the solution)."""
    spec = importlib.util.spec_from_file_location(
        "ex5_conditional", EXAMPLES / "layer3/solutions/ex5_conditional.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with stopped_cleanly(serve_app("layer3/solutions/ex5_conditional.py")) as (_, port):
        yield port, module.ETAG, module.TEXT


@pytest.mark.parametrize(("if_none_match", "status"), [
    (None, 200), ("ETAG", 304), ("W/ETAG", 304), ('"old", ETAG', 304), ('"old"', 200),
    ("*", 304), ('"old", "older"', 200),
], ids=["none", "same", "weak", "in-a-list", "other", "star", "others"])
def test_ex5_conditional_requests(conditional: tuple[int, str, bytes], if_none_match: str | None,
                                  status: int) -> None:
    port, etag, text = conditional
    fields = () if if_none_match is None else (
        "If-None-Match: " + if_none_match.replace("ETAG", etag),)
    with Client(port) as client:  # GET then HEAD on one connection: no stray body bytes
        client.send(f"GET / HTTP/1.1\r\nHost: x\r\n{''.join(f + chr(13) + chr(10) for f in fields)}"
                    "\r\n".encode())
        response = client.read_response()
        assert response.status == status and response.header("ETag") == etag
        assert response.body == (text if status == 200 else b"")
    head = get(port, "/", *fields, method="HEAD")
    assert head.status == status and head.body == b""
    if status == 200:
        assert head.header("Content-Length") == str(len(text))


def test_ex5_conditional_other_methods_and_paths(conditional: tuple[int, str, bytes]) -> None:
    port, _, _ = conditional
    refused = get(port, "/", method="DELETE")
    assert refused.status == 405 and refused.header("Allow") == "GET, HEAD"
    assert get(port, "/other").status == 404


def test_ex6_preferences_in_a_cookie() -> None:
    with stopped_cleanly(serve_app("layer3/solutions/ex6_preferences.py")) as (_, port):
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPCookieProcessor(jar))
        base = f"http://127.0.0.1:{port}"
        with opener.open(base + "/", timeout=TIMEOUT) as page:
            assert b"Theme: light" in page.read()
        # The form: 303 to /, followed with a GET that already sends the new cookie.
        with opener.open(base + "/theme", data=b"theme=dark", timeout=TIMEOUT) as page:
            assert page.url == base + "/" and b"Theme: dark" in page.read()
        assert [(cookie.name, cookie.value) for cookie in jar] == [("theme", "dark")]
        redirect = post(port, "/theme", b"theme=light",
                        "Content-Type: application/x-www-form-urlencoded")
        assert redirect.status == 303 and redirect.header("Location") == "/"
        assert (redirect.header("Set-Cookie") or "").startswith("theme=light; Path=/")
        assert post(port, "/theme", b"theme=<b>", "Content-Type: application/x-www-form-urlencoded"
                    ).status == 400
        assert b"Theme: light" in get(port, "/", "Cookie: theme=<script>").body


def test_ex7_refuse_early_before_100_continue() -> None:
    with stopped_cleanly(serve_app("layer3/solutions/ex7_refuse_early.py")) as (_, port):
        with Client(port) as client:  # too large, announced: 413 instead of 100 Continue
            client.send(b"PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n"
                        b"Expect: 100-continue\r\n\r\n")
            response = client.read_response()
            assert response.status == 413 and client.at_eof()
        with Client(port) as client:  # small enough: invited, counted
            client.send(b"PUT /f HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                        b"Expect: 100-continue\r\n\r\n")
            assert client.read_until(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
            client.send(b"z" * 1000)
            assert client.read_response().body == b"received 1000 bytes\n"
        body = b"c" * (1024 * 1024 + 1)  # chunked: refused when the limit is passed
        with Client(port) as client:
            client.send(b"PUT /f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                        chunked(body, [65536] * 20))
            client.sock.shutdown(socket.SHUT_WR)
            assert client.read_response().status == 413
        exactly = b"c" * (1024 * 1024)
        assert exchange(port, b"PUT /f HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
                        chunked(exactly, [65536] * 20)).body == b"received 1048576 bytes\n"
