"""The request-head parser: corpus replayed every way, properties, limits.

The corpus (``corpus/heads_valid.txt``, ``corpus/heads_invalid.txt``) is
fed whole, line by line, byte by byte and in random cuts; every cutting
must give exactly the same outcome as the whole input, error detail
included. Hypothesis then checks the same on generated and mangled heads.
"""

from __future__ import annotations

import doctest
import random
from typing import Any

import pytest
from corpus_support import Case, cuttings, load, random_pieces, replays, split
from hypothesis import given, settings
from hypothesis import strategies as st

from layer3_http import _errors, _head, _lines
from layer3_http._errors import ClientError, HTTPError, RequestAPIError
from layer3_http._head import BodyKind, HeadParser, RequestHead
from layer3_http._lines import InputBuffer, Limit

HEAD_CASES = load("heads_valid.txt") + load("heads_invalid.txt")
VALID_CASES = [case for case in HEAD_CASES if "error" not in case.expect]
OUTCOME_KEYS = {"error", "incomplete"}


def describe(head: RequestHead, leftover: bytes) -> dict[str, Any]:
    """The head as the corpus spells it (JSON-like values)."""
    body: Any = {BodyKind.NONE: "none", BodyKind.CHUNKED: "chunked"}.get(head.body_kind)
    return {
        "method": head.method,
        "target": head.target,
        "version": list(head.version),
        "path": head.path,
        "query": head.query,
        "authority": head.authority,
        "headers": [list(field) for field in head.headers],
        "body": head.content_length if body is None else body,
        "expect_continue": head.expect_continue,
        "keep_alive": head.keep_alive,
        "connection": sorted(head.connection),
        "size": head.size,
        "leftover": leftover.decode("iso-8859-1"),
    }


def outcome(pieces: list[bytes], **options: Any) -> dict[str, Any]:
    """Feed `pieces` in order; describe the head, the error, or incompleteness."""
    parser = HeadParser(**options)
    try:
        for index, piece in enumerate(pieces):
            head = parser.feed(piece)
            if head is not None:
                return describe(head, parser.leftover + b"".join(pieces[index + 1 :]))
    except ClientError as error:
        return {"error": error.status, "detail": error.detail}
    return {"incomplete": True}


def check_expectation(case: Case, got: dict[str, Any]) -> None:
    expect = {key: value for key, value in case.expect.items() if key != "options"}
    if "error" in expect:
        assert got.get("error") == expect["error"], (case.where, got)
    elif expect.get("incomplete"):
        assert got == {"incomplete": True}, (case.where, got)
    else:
        assert "error" not in got and "incomplete" not in got, (case.where, got)
        assert {key: got[key] for key in expect} == expect, case.where


@pytest.mark.parametrize(("case", "how"), [*replays("heads_valid.txt"),
                                           *replays("heads_invalid.txt")])
def test_corpus_replayed(case: Case, how: str) -> None:
    whole = outcome([case.data], **case.options)
    check_expectation(case, whole)
    for pieces in split(case.data, how, case.name):
        assert outcome(pieces, **case.options) == whole, pieces


def test_corpus_is_large_enough() -> None:
    assert len(VALID_CASES) >= 30
    assert len(HEAD_CASES) - len(VALID_CASES) >= 50


# --- properties -------------------------------------------------------------

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
PATH_CHARS = "abcXYZ019-._~!$&'()*+,;=:@/%"
VALUE_BYTES = st.binary(max_size=30).map(
    lambda raw: bytes(b for b in raw if b == 9 or 32 <= b < 127 or b >= 128)
)


@st.composite
def valid_heads(draw: st.DrawFn) -> tuple[bytes, dict[str, Any]]:
    """A valid head and what the parser must make of it."""
    method = draw(st.text(TOKEN_CHARS, min_size=1, max_size=8).filter(lambda m: m != "CONNECT"))
    path = draw(st.text(PATH_CHARS, max_size=20))
    query = draw(st.one_of(st.just(""), st.text(PATH_CHARS + "?", max_size=20).map("?".__add__)))
    names = st.text(TOKEN_CHARS, min_size=1, max_size=10).filter(
        lambda n: n.lower() not in ("host", "content-length", "transfer-encoding", "expect",
                                    "connection"))
    fields = draw(st.lists(st.tuples(names, VALUE_BYTES), max_size=8))
    empty_lines = draw(st.integers(0, 4))
    raw = b"\r\n" * empty_lines + f"{method} /{path}{query} HTTP/1.1\r\nHost: h\r\n".encode()
    raw += b"".join(name.encode() + b":" + value + b"\r\n" for name, value in fields)
    raw += b"\r\n"
    headers = [["Host", "h"]] + [
        [name, value.strip(b" \t").decode("iso-8859-1")] for name, value in fields
    ]
    return raw, {"method": method, "path": path, "query": query, "headers": headers,
                 "size": len(raw)}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_generated_heads_parse_the_same_in_any_cutting(data: st.DataObject) -> None:
    raw, expect = data.draw(valid_heads())
    got = outcome(data.draw(cuttings(raw)))
    assert {key: got[key] for key in expect} == expect
    assert got["leftover"] == ""


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_corpus_inputs_give_the_same_outcome_in_any_cutting(data: st.DataObject) -> None:
    case = data.draw(st.sampled_from(HEAD_CASES))
    assert outcome(data.draw(cuttings(case.data)), **case.options) == outcome(
        [case.data], **case.options)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(1, 80), st.integers(1, 80), st.integers(0, 3))
def test_small_limits_give_the_same_error_in_any_cutting(
    data: st.DataObject, size_limit: int, line_limit: int, count_limit: int
) -> None:
    """Several limits broken by one input: the first byte that breaks one decides."""
    raw = data.draw(st.sampled_from(HEAD_CASES)).data
    options = {"size_limit": size_limit, "request_line_limit": line_limit,
               "header_count_limit": count_limit + 1}
    assert outcome(data.draw(cuttings(raw)), **options) == outcome([raw], **options)


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    """A corpus head with a few bytes replaced, inserted or removed."""
    raw = bytearray(draw(st.sampled_from(VALID_CASES)).data)
    interesting = st.sampled_from(b"\r\n \t:\x00\x7f\x80,;\"=/?*Hx0")
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(raw)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        if action == "insert" or not raw:
            raw[at:at] = bytes([draw(st.one_of(interesting, st.integers(0, 255)))])
        elif action == "replace":
            raw[min(at, len(raw) - 1)] = draw(st.one_of(interesting, st.integers(0, 255)))
        else:
            del raw[min(at, len(raw) - 1)]
    return bytes(raw)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mangled_heads_give_a_clean_answer_in_any_cutting(data: st.DataObject) -> None:
    raw = data.draw(mangled())
    whole = outcome([raw])  # raises anything but ClientError: the test fails
    assert outcome(data.draw(cuttings(raw))) == whole
    if "error" in whole:
        assert whole["error"] in (400, 414, 417, 431, 501, 505)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.randoms(use_true_random=False))
def test_garbage_gives_a_client_error_or_waits(raw: bytes, rng: random.Random) -> None:
    whole = outcome([raw], size_limit=300)
    assert outcome(random_pieces(raw, rng), size_limit=300) == whole
    assert ("error" in whole) or ("incomplete" in whole) or ("method" in whole)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([b"a", b"\r\n", b"x:y\r\n", b"\t"]))
def test_input_that_never_ends_stops_at_the_size_limit(prefix: bytes, filler: bytes) -> None:
    parser = HeadParser(size_limit=300)
    stream = prefix + filler * 400
    with pytest.raises(ClientError) as caught:
        for start in range(0, len(stream), 7):
            if parser.feed(stream[start : start + 7]) is not None:
                return  # a head can complete early (e.g. prefix ends in one)
    assert caught.value.status in (400, 414, 431, 501, 505)


# --- limits: at the limit and one byte past -------------------------------

REQUEST = b"GET /path HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n"


@pytest.mark.parametrize("limit", range(1, len(REQUEST) + 2))
def test_size_limit_at_every_position(limit: int) -> None:
    got = outcome([REQUEST], size_limit=limit)
    if limit >= len(REQUEST):
        assert got["size"] == len(REQUEST)
    else:
        assert got["error"] == 431
        assert outcome(split(REQUEST, "bytes")[0], size_limit=limit) == got


AWKWARD = [
    b"GET /ab\rc HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /abc HTTP/1.1\r\r\nHost: x\r\n\r\n",
    b"GET /abc HTTP/1.1\nHost: x\r\n\r\n",
    b"\r\n\r\r\nGET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nA: b\rc\r\n\r\n",
]


@pytest.mark.parametrize("raw", AWKWARD)
def test_every_pair_of_limits_whole_equals_byte_by_byte(raw: bytes) -> None:
    for line_limit in range(1, len(raw) + 2):
        for size_limit in range(1, len(raw) + 2, 3):
            options = {"size_limit": size_limit, "request_line_limit": line_limit}
            assert outcome(split(raw, "bytes")[0], **options) == outcome([raw], **options)


def test_request_line_limit_at_and_one_past() -> None:
    line_length = len(b"GET /path HTTP/1.1")
    assert outcome([REQUEST], request_line_limit=line_length)["path"] == "path"
    assert outcome([REQUEST], request_line_limit=line_length - 1)["error"] == 414


def test_default_request_line_limit_is_8192() -> None:
    def request(length: int) -> bytes:
        target = "/" + "a" * (length - len("GET / HTTP/1.1"))
        return f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()

    assert "path" in outcome([request(8192)])
    assert outcome([request(8193)])["error"] == 414


def test_default_head_size_limit_is_one_mebibyte() -> None:
    start = b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: "
    filler = 1024 * 1024 - len(start) - 4
    assert outcome([start + b"a" * filler + b"\r\n\r\n"])["size"] == 1024 * 1024
    assert outcome([start + b"a" * (filler + 1) + b"\r\n\r\n"])["error"] == 431


def test_default_header_count_limit_is_100() -> None:
    def request(count: int) -> bytes:
        fields = b"".join(b"X-%d: v\r\n" % number for number in range(count - 1))
        return b"GET / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n"

    assert len(outcome([request(100)])["headers"]) == 100
    assert outcome([request(101)]) == {"error": 431, "detail": "more than 100 header fields"}


def test_no_leading_empty_line_allowed_with_limit_zero() -> None:
    assert outcome([b"\r\n" + REQUEST], empty_line_limit=0)["error"] == 400
    assert "path" in outcome([REQUEST], empty_line_limit=0)


def test_limits_must_be_sensible() -> None:
    with pytest.raises(ValueError):
        HeadParser(size_limit=0)
    with pytest.raises(ValueError):
        HeadParser(request_line_limit=0)
    with pytest.raises(ValueError):
        HeadParser(empty_line_limit=-1)


# --- the original's bugs ---------------------------------------------------

def test_head_in_many_pieces_works() -> None:
    """Moonbridge 1.1.1 crashed when a head arrived in several pieces."""
    parser = HeadParser()
    results = [parser.feed(bytes([byte])) for byte in REQUEST]
    assert results[:-1] == [None] * (len(REQUEST) - 1)
    assert results[-1] is not None and results[-1].path == "path"


def test_http10_is_accepted() -> None:
    """The original answered HTTP/1.0 with 505."""
    head = HeadParser().feed(b"GET /old HTTP/1.0\r\n\r\n")
    assert head is not None and head.version == (1, 0) and not head.keep_alive


def test_content_length_with_chunked_is_refused() -> None:
    """The original accepted both and so could be smuggled past."""
    raw = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
    with pytest.raises(ClientError) as caught:
        HeadParser().feed(raw)
    assert caught.value.status == 400


def test_negative_content_length_is_refused() -> None:
    raw = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"
    with pytest.raises(ClientError) as caught:
        HeadParser().feed(raw)
    assert caught.value.status == 400


def test_commas_stay_inside_one_header_value() -> None:
    head = HeadParser().feed(b"GET / HTTP/1.1\r\nHost: x\r\nAccept: a, b\r\n\r\n")
    assert head is not None and head.values("ACCEPT") == ["a, b"]


# --- the parser object -----------------------------------------------------

def test_errors_are_sticky_and_feeding_a_finished_parser_fails() -> None:
    broken = HeadParser()
    with pytest.raises(ClientError) as first:
        broken.feed(b"GET / HTTP/1.1\n")
    with pytest.raises(ClientError) as again:
        broken.feed(b"")
    assert again.value is first.value
    done = HeadParser()
    assert done.feed(REQUEST) is not None
    assert done.head is not None and done.head.path == "path"
    with pytest.raises(ValueError):
        done.feed(b"more")


def test_started_and_next_read() -> None:
    parser = HeadParser()
    assert not parser.started and parser.feed(b"") is None and not parser.started
    assert parser.feed(b"G") is None and parser.started
    maxlen, terminator = parser.next_read()
    assert terminator == b"\n" and maxlen > 0


def test_body_kinds() -> None:
    def head(fields: bytes) -> RequestHead:
        result = HeadParser().feed(b"POST / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
        assert result is not None
        return result

    assert (head(b"").body_kind, head(b"").content_length) == (BodyKind.NONE, None)
    assert head(b"Content-Length: 12\r\n").content_length == 12
    chunked = head(b"Transfer-Encoding: chunked\r\n")
    assert (chunked.body_kind, chunked.content_length) == (BodyKind.CHUNKED, None)


def test_input_buffer_limits_name_what_they_limit() -> None:
    buffer = InputBuffer()
    buffer.append(b"abcdef")
    with pytest.raises(ClientError) as caught:
        buffer.take_line(Limit(3, 414, "request line"))
    assert str(caught.value) == "414 URI Too Long: request line larger than 3 bytes"
    buffer = InputBuffer()
    buffer.append(b"ab\r\ncd")
    assert buffer.take_line() == b"ab" and buffer.peek(5) == b"cd" and buffer.tail(1) == b"d"


def test_error_classes() -> None:
    error = ClientError(505, "HTTP/2.0")
    assert isinstance(error, HTTPError) and error.reason == "HTTP Version Not Supported"
    assert error.status_line == "505 HTTP Version Not Supported"
    assert issubclass(RequestAPIError, RuntimeError) and issubclass(RequestAPIError, HTTPError)
    assert not issubclass(ClientError, RuntimeError)
    with pytest.raises(ValueError):
        ClientError(200, "not an error")
    assert ClientError(418, "teapot").reason == "I'm a Teapot"


@pytest.mark.parametrize("module", [_errors, _lines, _head], ids=lambda m: m.__name__)
def test_docstring_examples(module: Any) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
