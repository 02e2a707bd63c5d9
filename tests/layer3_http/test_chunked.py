"""The body decoders: chunked corpus replayed every way, properties, limits.

``corpus/chunked.txt`` is fed whole, line by line, byte by byte and in
random cuts; every cutting must decode the same body (or raise the same
error). Hypothesis checks generated and mangled chunked bodies, and the
Content-Length counter and the `body_decoder` facade get their own tests.
"""

from __future__ import annotations

import doctest
from typing import Any

import pytest
from corpus_support import Case, as_bytes, cuttings, load, replays, split
from hypothesis import given, settings
from hypothesis import strategies as st

from layer3_http import _abnf, _framing
from layer3_http._errors import ClientError
from layer3_http._framing import ChunkedDecoder, LengthDecoder, body_decoder
from layer3_http._head import HeadParser

CASES = load("chunked.txt")
VALID = [case for case in CASES if "error" not in case.expect]


def outcome(pieces: list[bytes], **options: Any) -> dict[str, Any]:
    """Feed `pieces`; describe the body, the error, or how far it got."""
    decoder = ChunkedDecoder(**options)
    piece_size = options.get("piece_size", 16384)
    data = bytearray()
    try:
        for index, piece in enumerate(pieces):
            for part in decoder.feed(piece):
                assert 0 < len(part) <= piece_size
                data += part
            assert decoder.received == len(data)
            if decoder.done:
                rest = decoder.leftover + b"".join(pieces[index + 1 :])
                return {"data": bytes(data), "leftover": rest}
    except ClientError as error:  # data before an error depends on the cutting
        return {"error": error.status, "detail": error.detail}
    return {"incomplete": True, "data": bytes(data)}


def check_expectation(case: Case, got: dict[str, Any]) -> None:
    expect = case.expect
    if "error" in expect:
        assert got.get("error") == expect["error"], (case.where, got)
        return
    assert "error" not in got, (case.where, got)
    assert got.get("incomplete", False) == expect.get("incomplete", False), case.where
    assert got["data"] == as_bytes(expect["data"]), case.where
    if "leftover" in expect:
        assert got["leftover"] == as_bytes(expect["leftover"]), case.where


@pytest.mark.parametrize(("case", "how"), replays("chunked.txt"))
def test_corpus_replayed(case: Case, how: str) -> None:
    whole = outcome([case.data], **case.options)
    check_expectation(case, whole)
    for pieces in split(case.data, how, case.name):
        assert outcome(pieces, **case.options) == whole, pieces


@pytest.mark.parametrize("piece_size", [1, 2, 3, 7])
def test_pieces_never_exceed_piece_size(piece_size: int) -> None:
    for case in VALID:
        options = {**case.options, "piece_size": piece_size}
        assert outcome([case.data], **options)["data"] == as_bytes(case.expect["data"])


# --- properties -------------------------------------------------------------

EXTENSIONS = st.sampled_from([b"", b";a", b";a=b", b' ; q="x;y"', b";k=v;flag"])
TRAILERS = st.lists(st.sampled_from([b"X: 1", b"Checksum: abc", b"Y:"]), max_size=3)


@st.composite
def chunked_bodies(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A valid chunked body (with a pipelined tail) and the data it carries."""
    chunks = draw(st.lists(st.binary(min_size=1, max_size=40), max_size=6))
    raw = bytearray()
    for chunk in chunks:
        size = draw(st.sampled_from(["%x", "%X", "%04x"])) % len(chunk)
        raw += size.encode() + draw(EXTENSIONS) + b"\r\n" + chunk + b"\r\n"
    raw += b"0" + draw(EXTENSIONS) + b"\r\n"
    raw += b"".join(trailer + b"\r\n" for trailer in draw(TRAILERS)) + b"\r\n"
    return bytes(raw) + b"NEXT", b"".join(chunks)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.integers(1, 50))
def test_generated_bodies_decode_the_same_in_any_cutting(
    data: st.DataObject, piece_size: int
) -> None:
    raw, body = data.draw(chunked_bodies())
    got = outcome(data.draw(cuttings(raw)), piece_size=piece_size)
    assert got == {"data": body, "leftover": b"NEXT"}


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_reading_by_next_read_never_passes_the_end(data: st.DataObject) -> None:
    """A socket read with the decoder's hint stops exactly at the body's end."""
    raw, body = data.draw(chunked_bodies())
    decoder = ChunkedDecoder(piece_size=data.draw(st.integers(1, 30)))
    stream, got = raw, bytearray()
    while not decoder.done:
        maxlen, terminator = decoder.next_read()
        size = min(maxlen, data.draw(st.integers(1, 64)))  # a short read is always allowed
        if terminator is not None and terminator in stream[:size]:
            size = stream.index(terminator) + 1
        piece, stream = stream[:size], stream[size:]
        for part in decoder.feed(piece):
            got += part
    assert bytes(got) == body and decoder.leftover == b"" and stream == b"NEXT"
    assert decoder.next_read() == (0, None)


@st.composite
def mangled(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(chunked_bodies())[0])
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(0, len(raw) - 1)))
        byte = draw(st.one_of(st.sampled_from(b"\r\n;=\" \t0fF:x"), st.integers(0, 255)))
        if draw(st.booleans()) and raw:
            raw[at] = byte
        else:
            raw[at:at] = bytes([byte])
    return bytes(raw)


@settings(max_examples=400, deadline=None)
@given(st.data())
def test_mangled_bodies_give_a_clean_answer_in_any_cutting(data: st.DataObject) -> None:
    raw = data.draw(mangled())
    options = {"body_size_limit": 100, "trailer_size_limit": 40, "extension_limit": 12}
    whole = outcome([raw], **options)
    assert outcome(data.draw(cuttings(raw)), **options) == whole


@settings(max_examples=300, deadline=None)
@given(st.data(), st.binary(max_size=300))
def test_garbage_gives_a_client_error_or_waits(data: st.DataObject, raw: bytes) -> None:
    whole = outcome([raw])
    assert outcome(data.draw(cuttings(raw))) == whole
    assert set(whole) in ({"error", "detail"}, {"incomplete", "data"}, {"data", "leftover"})


def test_endless_size_line_stops_at_its_limit() -> None:
    decoder = ChunkedDecoder(extension_limit=100)
    with pytest.raises(ClientError) as caught:
        for _ in range(1000):
            decoder.feed(b"1;aaaaaaaa")
    assert caught.value.status == 400


def test_endless_trailers_stop_at_the_trailer_limit() -> None:
    decoder = ChunkedDecoder()
    decoder.feed(b"0\r\n")
    with pytest.raises(ClientError) as caught:
        for number in range(100000):
            decoder.feed(b"X-%d: v\r\n" % number)
    assert caught.value.status == 431


# --- limits ----------------------------------------------------------------

def test_default_trailer_limits() -> None:
    def trailers(count: int, size: int = 5) -> dict[str, Any]:
        fields = b"".join(b"X-%02d: " % n + b"v" * size + b"\r\n" for n in range(count))
        return outcome([b"0\r\n" + fields + b"\r\n"])

    assert trailers(100)["data"] == b""
    assert trailers(101)["error"] == 431
    # 64 KiB of trailer section, final CRLF included: 8 fields of 8192 bytes.
    assert trailers(8, 8192 - 9)["data"] == b""
    assert trailers(8, 8192 - 8)["error"] == 431


def test_size_digit_limit_is_configurable() -> None:
    assert outcome([b"00005\r\nhello\r\n0\r\n\r\n"], size_digit_limit=5)["data"] == b"hello"
    assert outcome([b"000005\r\nhello\r\n0\r\n\r\n"], size_digit_limit=5)["error"] == 400


def test_body_size_limit_counts_all_chunks() -> None:
    raw = b"".join(b"1\r\n%c\r\n" % byte for byte in b"abcdefghij") + b"0\r\n\r\n"
    assert outcome([raw], body_size_limit=10)["data"] == b"abcdefghij"
    assert outcome([raw], body_size_limit=9)["error"] == 413


def test_bad_configuration() -> None:
    with pytest.raises(ValueError):
        ChunkedDecoder(piece_size=0)
    with pytest.raises(ValueError):
        ChunkedDecoder(body_size_limit=-1)


# --- the original's bug, and the decoder object ----------------------------

def test_final_zero_chunk_ends_the_body() -> None:
    """The original refused the `0` chunk, so every chunked request failed."""
    decoder = ChunkedDecoder()
    assert decoder.feed(b"3\r\nabc\r\n0\r\n\r\n") == [b"abc"]
    assert decoder.done and decoder.leftover == b""


def test_errors_are_sticky_and_feeding_a_finished_decoder_fails() -> None:
    broken = ChunkedDecoder()
    with pytest.raises(ClientError) as first:
        broken.feed(b"zz\r\n")
    with pytest.raises(ClientError) as again:
        broken.feed(b"0\r\n\r\n")
    assert again.value is first.value
    done = ChunkedDecoder()
    done.feed(b"0\r\n\r\n")
    with pytest.raises(ValueError):
        done.feed(b"")


# --- Content-Length and the facade -----------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.data(), st.binary(max_size=100), st.integers(1, 20))
def test_length_decoder_in_any_cutting(data: st.DataObject, body: bytes, piece_size: int) -> None:
    decoder = LengthDecoder(len(body), piece_size=piece_size)
    got = bytearray()
    pieces = data.draw(cuttings(body + b"NEXT"))
    index = 0
    while not decoder.done:
        for part in decoder.feed(pieces[index]):
            assert 0 < len(part) <= piece_size
            got += part
        index += 1
    assert decoder.done and bytes(got) == body and decoder.received == len(body)
    assert decoder.leftover + b"".join(pieces[index:]) == b"NEXT"


def test_length_decoder_limits_and_hints() -> None:
    assert LengthDecoder(10, body_size_limit=10).next_read() == (10, None)
    with pytest.raises(ClientError) as caught:
        LengthDecoder(11, body_size_limit=10)
    assert caught.value.status == 413
    decoder = LengthDecoder(40000)
    assert decoder.next_read() == (16384, None)
    decoder.feed(b"x" * 39999)
    assert decoder.next_read() == (1, None) and not decoder.done
    with pytest.raises(ValueError):
        LengthDecoder(-1)


def test_body_decoder_matches_the_head() -> None:
    def head(fields: bytes) -> Any:
        return HeadParser().feed(b"POST / HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")

    nothing = body_decoder(head(b""))
    assert nothing.done and nothing.received == 0
    sized = body_decoder(head(b"Content-Length: 3\r\n"), piece_size=2)
    assert sized.feed(b"abc") == [b"ab", b"c"] and sized.done
    chunked = body_decoder(head(b"Transfer-Encoding: chunked\r\n"))
    assert chunked.feed(b"1\r\nz\r\n0\r\n\r\n") == [b"z"] and chunked.done
    with pytest.raises(ClientError) as caught:
        body_decoder(head(b"Content-Length: 11\r\n"), body_size_limit=10)
    assert caught.value.status == 413


@pytest.mark.parametrize("module", [_framing, _abnf], ids=lambda m: m.__name__)
def test_docstring_examples(module: Any) -> None:
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
