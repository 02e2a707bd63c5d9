"""The multipart/form-data parser: corpus, any cutting, bounded memory.

``corpus/multipart.txt`` is fed whole, line by line, byte by byte and in
random cuts; every cutting must give the same parts (or the same error).
Hypothesis checks generated forms (with data full of near-delimiters),
mangled forms and garbage; the memory tests feed parts of megabytes and
check that the parser holds back only a few bytes.
"""

from __future__ import annotations

import doctest
import tracemalloc
from typing import Any

import pytest
from corpus_support import Case, as_bytes, cuttings, load, replays, split
from hypothesis import given, settings
from hypothesis import strategies as st

from layer3_http import _multipart
from layer3_http._errors import ClientError
from layer3_http._multipart import (
    ContentType,
    MultipartEnd,
    MultipartParser,
    PartData,
    PartEnd,
    PartStart,
    parse_content_type,
    parse_parameters,
)

DEFAULT_TYPE = "multipart/form-data; boundary=XyZ"
CASES = load("multipart.txt")


def outcome(pieces: list[bytes], content_type: str = DEFAULT_TYPE, **options: Any) -> Any:
    """Feed `pieces`, check the event order; return the parts or the error."""
    piece_size = options.get("piece_size", 16384)
    parts: list[list[Any]] = []
    state = "between"
    try:
        parser = MultipartParser.from_content_type(content_type, **options)
        for piece in pieces:
            for event in parser.feed(piece):
                if isinstance(event, PartStart):
                    assert state == "between"
                    parts.append([event.field_name, event.file_name, event.content_type, b""])
                    state = "part"
                elif isinstance(event, PartData):
                    assert state == "part" and 0 < len(event.data) <= piece_size
                    parts[-1][3] += event.data
                elif isinstance(event, PartEnd):
                    assert state == "part"
                    state = "between"
                else:
                    assert isinstance(event, MultipartEnd) and state == "between"
                    state = "end"
        assert parser.finished == (state == "end")
        parser.feed_eof()
    except ClientError as error:
        return {"error": error.status, "detail": error.detail}
    return {"parts": parts}


def check_expectation(case: Case, got: dict[str, Any]) -> None:
    if "error" in case.expect:
        assert got.get("error") == case.expect["error"], (case.where, got)
        return
    assert "error" not in got, (case.where, got)
    expected = [[*part[:3], as_bytes(part[3])] for part in case.expect["parts"]]
    assert got["parts"] == expected, case.where


@pytest.mark.parametrize(("case", "how"), replays("multipart.txt"))
def test_corpus_replayed(case: Case, how: str) -> None:
    content_type = case.expect.get("content_type", DEFAULT_TYPE)
    whole = outcome([case.data], content_type, **case.options)
    check_expectation(case, whole)
    for pieces in split(case.data, how, case.name):
        assert outcome(pieces, content_type, **case.options) == whole, pieces


@pytest.mark.parametrize("piece_size", [1, 2, 5])
def test_small_pieces_give_the_same_parts(piece_size: int) -> None:
    for case in CASES:
        content_type = case.expect.get("content_type", DEFAULT_TYPE)
        expected = outcome([case.data], content_type, **case.options)
        options = {**case.options, "piece_size": piece_size}
        assert outcome([case.data], content_type, **options) == expected


# --- properties -------------------------------------------------------------

BOUNDARIES = st.sampled_from(["XyZ", "----WebKitFormBoundary7MA4YWxkTrZu0gW", "a", "a b",
                              "=_-'()+,./:?", "-" * 70])
NAMES = st.text(st.characters(exclude_characters='"\\', exclude_categories=["Cs", "Cc"]),
                max_size=12)


@st.composite
def forms(draw: st.DrawFn) -> tuple[str, bytes, list[list[Any]]]:
    """A valid form: its Content-Type, its body and its parts."""
    boundary = draw(BOUNDARIES)
    delimiter = b"\r\n--" + boundary.encode()
    near = st.sampled_from([b"\r", b"\r\n", b"\r\n-", b"--", delimiter[:-1], delimiter[2:],
                            b"\n" + delimiter[2:]])
    chunks = st.lists(st.one_of(st.binary(max_size=10), near), max_size=6).map(b"".join)
    parts = []
    body = draw(st.sampled_from([b"", b"preamble\r\n", b"\r\n"]))
    for _ in range(draw(st.integers(0, 4))):
        name = draw(NAMES)
        file_name = draw(st.one_of(st.none(), NAMES))
        content_type = draw(st.sampled_from([None, "text/plain", "application/octet-stream"]))
        data = draw(chunks.filter(lambda chunk: delimiter not in b"\r\n" + chunk + b"\r"))
        disposition = f'form-data; name="{name}"'
        if file_name is not None:
            disposition += f'; filename="{file_name}"'
        body += b"--" + boundary.encode() + b"\r\nContent-Disposition: "
        body += disposition.encode() + b"\r\n"
        if content_type:
            body += b"Content-Type: " + content_type.encode() + b"\r\n"
        body += b"\r\n" + data + b"\r\n"
        parts.append([name, file_name, content_type, data])
    body += b"--" + boundary.encode() + b"--" + draw(st.sampled_from([b"", b"\r\n", b"\r\nbye"]))
    return f'multipart/form-data; boundary="{boundary}"', body, parts


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(1, 40))
def test_generated_forms_parse_the_same_in_any_cutting(
    data: st.DataObject, piece_size: int
) -> None:
    content_type, body, parts = data.draw(forms())
    got = outcome(data.draw(cuttings(body)), content_type, piece_size=piece_size)
    assert got == {"parts": parts}


@st.composite
def mangled(draw: st.DrawFn) -> tuple[str, bytes]:
    content_type, body, _ = draw(forms())
    raw = bytearray(body)
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        byte = draw(st.one_of(st.sampled_from(b"\r\n-\";=: \tX"), st.integers(0, 255)))
        if draw(st.booleans()) and raw:
            raw[at] = byte
        else:
            raw[at:at] = bytes([byte])
    return content_type, bytes(raw)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_mangled_forms_give_a_clean_answer_in_any_cutting(data: st.DataObject) -> None:
    content_type, raw = data.draw(mangled())
    options = {"part_count_limit": 3, "part_header_size_limit": 80}
    whole = outcome([raw], content_type, **options)
    assert outcome(data.draw(cuttings(raw)), content_type, **options) == whole


@settings(max_examples=300, deadline=None)
@given(st.data(), st.binary(max_size=300), st.text(max_size=40))
def test_garbage_gives_a_client_error(data: st.DataObject, raw: bytes, content_type: str) -> None:
    for kind in (content_type, DEFAULT_TYPE):
        whole = outcome([raw], kind)
        assert outcome(data.draw(cuttings(raw)), kind) == whole
        assert "error" in whole or "parts" in whole


# --- bounded memory ----------------------------------------------------------

HEAD = b"--XyZ\r\nContent-Disposition: form-data; name=f; filename=big.bin\r\n\r\n"


def test_hold_back_is_only_a_possible_delimiter_start() -> None:
    parser = MultipartParser("XyZ")
    events = parser.feed(HEAD + b"abc\r\n--Xy")
    assert events[1:] == [PartData(b"abc")] and parser.buffered == len(b"\r\n--Xy")
    assert parser.feed(b"q") == [PartData(b"\r\n--Xyq")] and parser.buffered == 0
    assert parser.feed(b"\r\r") == [PartData(b"\r")] and parser.buffered == 1
    assert parser.feed(b"\n--XyZ--") == [PartEnd(), MultipartEnd()]


@pytest.mark.parametrize("filler", [b"x", b"\r", b"\r\n--Xy", b"\r\n-"])
def test_huge_part_keeps_memory_flat(filler: bytes) -> None:
    """Megabytes of part data, even of near-delimiters, hold back a few bytes."""
    parser = MultipartParser("XyZ", piece_size=16384)
    parser.feed(HEAD)
    block = (filler * (65536 // len(filler) + 1))[:65536]
    total = 0
    tracemalloc.start()
    try:
        for _ in range(64):  # 4 MiB
            for event in parser.feed(block):
                assert isinstance(event, PartData)
                total += len(event.data)
            assert parser.buffered <= len(b"\r\n--XyZ") - 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024  # a few blocks, never the whole part
    assert total + parser.buffered == 64 * 65536
    assert parser.feed(b"\r\n--XyZ--")[-2:] == [PartEnd(), MultipartEnd()]


def test_part_headers_are_bounded() -> None:
    parser = MultipartParser("XyZ")
    parser.feed(b"--XyZ\r\n")
    with pytest.raises(ClientError) as caught:
        for _ in range(10000):
            parser.feed(b"X-Filler: " + b"a" * 90 + b"\r\n")
    assert caught.value.status == 413 and parser.buffered < 200


def test_default_limits() -> None:
    def form(parts: int, header: int = 0) -> Any:
        one = b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n"
        if header:
            one += b"X: " + b"h" * header + b"\r\n"
        return outcome([(one + b"\r\nv\r\n") * parts + b"--XyZ--"])

    assert len(form(1000)["parts"]) == 1000
    assert form(1001)["error"] == 413
    # 16 KiB header section: disposition line (40) + X line + blank line (2).
    assert "parts" in form(1, 16384 - 40 - 2 - 5)
    assert form(1, 16384 - 40 - 2 - 4)["error"] == 413


# --- the original's bugs ----------------------------------------------------

def test_unquoted_filename_is_kept() -> None:
    """The original dropped `filename=x.txt` written without quotes."""
    body = b"--XyZ\r\nContent-Disposition: form-data; name=f; filename=x.txt\r\n\r\nhi\r\n--XyZ--"
    start = MultipartParser("XyZ").feed(body)[0]
    assert isinstance(start, PartStart) and start.file_name == "x.txt"


def test_final_delimiter_without_crlf_is_accepted() -> None:
    """The original refused a body ending right after `--boundary--`."""
    parser = MultipartParser("XyZ")
    events = parser.feed(b"--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--XyZ--")
    assert events[-1] == MultipartEnd() and parser.finished
    parser.feed_eof()
    assert parser.feed(b"anything after is epilogue") == []


# --- Content-Type and parameters ---------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("text/html", ContentType("text/html", {})),
    ("Text/HTML ; Charset=UTF-8", ContentType("text/html", {"charset": "UTF-8"})),
    ('multipart/form-data;boundary="a;b"', ContentType("multipart/form-data", {"boundary": "a;b"})),
    ("application/x-www-form-urlencoded;", ContentType("application/x-www-form-urlencoded", {})),
    ("text/plain; a=1; b=\"\\\\\"", ContentType("text/plain", {"a": "1", "b": "\\"})),
    ("text", None),
    ("text/", None),
    ("/plain", None),
    ("text/plain; a", None),
    ("text/plain; a=1; A=2", None),
    ("text/plain; a=\"open", None),
    ("text/plain a=1", None),
])
def test_parse_content_type(value: str, expected: ContentType | None) -> None:
    assert parse_content_type(value) == expected


def test_parse_parameters_keeps_unknown_backslashes() -> None:
    assert parse_parameters(r'; p="a\b\"c\\d"') == {"p": 'a\\b"c\\d'}
    assert parse_parameters("") == {}
    assert parse_parameters("; ; a=1") == {"a": "1"}


@pytest.mark.parametrize("value", [
    "multipart/form-data", "multipart/form-data; boundary=", "text/plain; boundary=x y",
    "multipart/form-data; boundary=\"\"", "multipart/form-data; boundary=\"a\x01\"",
])
def test_from_content_type_refuses_a_bad_boundary(value: str) -> None:
    with pytest.raises(ClientError) as caught:
        MultipartParser.from_content_type(value)
    assert caught.value.status == 400


def test_errors_are_sticky() -> None:
    parser = MultipartParser("XyZ")
    with pytest.raises(ClientError) as first:
        parser.feed(b"--XyZ\r\n\r\n")
    with pytest.raises(ClientError) as again:
        parser.feed(b"more")
    with pytest.raises(ClientError) as at_end:
        parser.feed_eof()
    assert first.value is again.value is at_end.value
    with pytest.raises(ValueError):
        MultipartParser("XyZ", piece_size=0)


def test_docstring_examples() -> None:
    result = doctest.testmod(_multipart, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
