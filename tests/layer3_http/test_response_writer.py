"""The response writer without sockets: handler calls in, wire bytes out.

Each test drives a `ResponseWriter` the way a handler would and checks the
exact bytes it hands out, the framing it chose, and the misuse it refuses.
The module doctests of the new socket-side modules run here too.
"""

from __future__ import annotations

import doctest
import re

import pytest

from layer3_http import _forms, _handler, _options, _response, _static, _tables, _target
from layer3_http._errors import RequestAPIError
from layer3_http._response import Framing, Phase, ResponseWriter, parse_status

DATE = re.compile(rb"Date: [A-Z][a-z]{2}, \d\d [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d GMT\r\n")


def wire(parts: list[bytes]) -> bytes:
    return DATE.sub(b"", b"".join(parts))


def writer(**kwargs: object) -> ResponseWriter:
    return ResponseWriter(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "module", [_response, _options, _handler, _forms, _tables, _static, _target])
def test_doctests(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0 and result.attempted > 0


def test_small_response_gets_a_content_length_and_goes_out_at_once() -> None:
    w = writer(static_fields=b"Server: t\r\n")
    assert w.status("200 OK") == []
    w.header("Content-Type", "text/plain")
    assert w.data(b"hello") == [] and not w.committed
    assert wire(w.finish()) == (b"HTTP/1.1 200 OK\r\nServer: t\r\nContent-Type: text/plain\r\n"
                                b"Content-Length: 5\r\n\r\nhello")
    assert w.framing is Framing.LENGTH and w.finished and not w.close


def test_date_is_added_once() -> None:
    w = writer()
    w.status(200)
    assert DATE.search(b"".join(w.finish()))
    w = writer()
    w.status(200)
    w.header("Date", "Thu, 01 Jan 1970 00:00:00 GMT")
    assert b"".join(w.finish()).count(b"Date:") == 1


def test_data_past_the_threshold_is_chunked() -> None:
    w = writer(minimum_chunk_size=4)
    w.status(200)
    assert w.data(b"ab") == []
    assert wire(w.data(b"cd")) == (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"4\r\nabcd\r\n")
    assert wire(w.data(b"e")) == b""
    assert wire(w.finish()) == b"1\r\ne\r\n0\r\n\r\n"


def test_flush_commits_and_sends_a_chunk() -> None:
    w = writer()
    w.status(200)
    w.data(b"x")
    assert wire(w.flush()).endswith(b"chunked\r\n\r\n1\r\nx\r\n")
    assert w.flush() == []
    assert wire(w.finish()) == b"0\r\n\r\n"


def test_flush_before_the_body_does_not_commit() -> None:
    w = writer()
    w.status(200)
    assert w.flush() == [] and not w.committed
    w.header("X-Late", "still possible")


def test_declared_content_length_is_used_and_enforced() -> None:
    w = writer(minimum_chunk_size=2)
    w.status(200)
    w.header("Content-Length", "4")
    w.header("Content-Length", 4)  # the same value again is fine
    assert wire(w.data(b"ab")) == b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab"
    with pytest.raises(RequestAPIError, match="more data"):
        w.data(b"cde")
    w.data(b"cd")
    assert w.finish() == []


def test_content_length_not_reached_is_refused() -> None:
    w = writer()
    w.status(200)
    w.header("Content-Length", 10)
    w.data(b"short")
    with pytest.raises(RequestAPIError, match="Content-Length 10"):
        w.finish()
    assert not w.committed  # so the connection can still answer 500


@pytest.mark.parametrize("value", ["-1", "1x", "\u0661"])
def test_content_length_must_be_digits(value: str) -> None:
    w = writer()
    w.status(200)
    with pytest.raises(ValueError):
        w.header("Content-Length", value)


def test_conflicting_content_lengths_are_refused() -> None:
    w = writer()
    w.status(200)
    w.header("Content-Length", 3)
    with pytest.raises(RequestAPIError, match="contradicts"):
        w.header("Content-Length", 4)


def test_head_counts_the_data_for_its_content_length() -> None:
    w = writer(head_request=True, minimum_chunk_size=4)
    w.status(200)
    assert w.data(b"0123456789") == []
    assert wire(w.finish()) == b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"


def test_head_flushed_early_announces_chunked_but_sends_no_body() -> None:
    w = writer(head_request=True)
    w.status(200)
    w.data(b"abc")
    assert wire(w.flush()) == b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert w.finish() == []


@pytest.mark.parametrize(("code", "framing"), [(204, b""), (304, b""),
                                               (205, b"Content-Length: 0\r\n")])
def test_bodyless_statuses(code: int, framing: bytes) -> None:
    w = writer()
    w.status(code)
    w.header("Content-Length", 7)
    with pytest.raises(RequestAPIError, match="no body"):
        w.data(b"x")
    head = wire(w.finish_headers())
    assert w.finished
    expected = b"Content-Length: 7\r\n" if code == 304 else framing
    assert head == parse_status(code)[1] + expected + b"\r\n"


def test_http10_unknown_length_is_close_delimited() -> None:
    w = writer(version=(1, 0), minimum_chunk_size=2)
    w.status(200)
    assert wire(w.data(b"abc")) == b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc"
    assert w.framing is Framing.CLOSE and w.close
    assert w.finish() == []


def test_http10_keep_alive_is_announced() -> None:
    w = writer(version=(1, 0))
    w.status(200)
    w.data(b"x")
    assert b"Connection: keep-alive\r\n" in b"".join(w.finish())
    assert not w.close


def test_close_after_finish_adds_connection_close_once() -> None:
    w = writer()
    w.status(200)
    w.close_after_finish()
    w.header("Connection", "close")
    assert b"".join(w.finish()).count(b"Connection: close") == 1
    assert w.close


def test_client_without_keep_alive_gets_connection_close() -> None:
    w = writer(keep_alive=False)
    w.status(200)
    assert b"Connection: close\r\n" in b"".join(w.finish())


def test_informational_responses() -> None:
    w = writer()
    w.status("103 Early Hints")
    w.header("Link", "</a.css>; rel=preload")
    with pytest.raises(RequestAPIError):
        w.header("Content-Length", 1)
    with pytest.raises(RequestAPIError):
        w.header("Connection", "close")
    with pytest.raises(RequestAPIError, match="finish_headers"):
        w.finish()
    assert w.finish_headers() == [b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload"
                                  b"\r\n\r\n"]
    assert w.phase is Phase.NO_STATUS
    w.status("103 Early Hints")
    assert w.status(200) == [b"HTTP/1.1 103 Early Hints\r\n\r\n"]  # the open one ends here
    assert w.final_status_given


def test_no_informational_response_to_http10() -> None:
    w = writer(version=(1, 0))
    w.status(100)
    assert w.finish_headers() == []


@pytest.mark.parametrize("status", ["20 OK", "600 Big", "200 A\r\nB", "OK", "2000", ""])
def test_bad_statuses_are_refused(status: str) -> None:
    with pytest.raises(ValueError):
        writer().status(status)


def test_status_phrase_is_filled_in() -> None:
    assert parse_status("404")[1] == b"HTTP/1.1 404 Not Found\r\n"
    assert parse_status(299)[1] == b"HTTP/1.1 299 \r\n"
    with pytest.raises(TypeError):
        parse_status(2.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(("name", "value"), [
    ("X-A", "b\r\nX-Injected: 1"), ("X-A", "b\nc"), ("X-A", "b\rc"), ("X-A", "b\x00c"),
    ("X A", "b"), ("X-A\r\n", "b"), ("", "b"), ("X-A", "€"),
])
def test_bad_header_fields_are_refused(name: str, value: str) -> None:
    w = writer()
    w.status(200)
    with pytest.raises(ValueError):
        w.header(name, value)
    assert b"Injected" not in b"".join(w.finish())


def test_header_types() -> None:
    w = writer()
    w.status(200)
    with pytest.raises(TypeError):
        w.header("X-A", b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        w.header("X-A", True)
    w.header("X-Count", 3)
    assert b"X-Count: 3\r\n" in b"".join(w.finish())


def test_transfer_encoding_belongs_to_the_server() -> None:
    w = writer()
    w.status(200)
    with pytest.raises(RequestAPIError, match="Transfer-Encoding"):
        w.header("Transfer-Encoding", "chunked")


@pytest.mark.parametrize("call", ["header", "data", "finish", "finish_headers"])
def test_nothing_before_a_status(call: str) -> None:
    w = writer()
    with pytest.raises(RequestAPIError, match="no status"):
        if call == "header":
            w.header("X-A", "b")
        elif call == "data":
            w.data(b"x")
        else:
            getattr(w, call)()


def test_order_after_the_headers() -> None:
    w = writer()
    w.status(200)
    w.data(b"x")
    with pytest.raises(RequestAPIError, match="headers finished"):
        w.header("X-A", "b")
    with pytest.raises(RequestAPIError, match="already"):
        w.status(200)
    with pytest.raises(RequestAPIError):
        w.close_after_finish()
    w.finish()
    assert w.finish() == []
    with pytest.raises(RequestAPIError, match="finished"):
        w.data(b"y")
    with pytest.raises(RequestAPIError, match="after finish"):
        w.finish_headers()


def test_switching_protocols_closes_without_a_header() -> None:
    w = writer()
    w.status(101)
    w.header("Connection", "upgrade")
    w.header("Upgrade", "echo")
    head = b"".join(w.finish_headers())
    assert b"Connection: close" not in head and w.close and w.finished


def test_raw_body_for_sendfile() -> None:
    w = writer()
    w.status(200)
    w.header("Content-Length", 5)
    w.data(b"ab")
    parts = w.raw_body(3)
    assert parts is not None and wire(parts).endswith(b"Content-Length: 5\r\n\r\nab")
    assert w.finish() == []
    chunked = writer()
    chunked.status(200)
    assert chunked.raw_body(3) is None  # unknown length to 1.1: the caller sends data
    head = writer(head_request=True)
    head.status(200)
    assert head.raw_body(7) == []
    assert b"Content-Length: 7" in b"".join(head.finish())
    http10 = writer(version=(1, 0))
    http10.status(200)
    assert http10.raw_body(4) is not None and http10.framing is Framing.CLOSE
