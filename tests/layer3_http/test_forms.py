"""Query strings, urlencoded bodies, their mappings, and cookies."""

from __future__ import annotations

import doctest
import tracemalloc
import urllib.parse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layer3_http import _forms
from layer3_http._errors import ClientError
from layer3_http._forms import UrlencodedParser, parse_cookies, parse_query, parse_urlencoded
from layer3_http._tables import FirstValues, ValueLists


@pytest.mark.parametrize(("body", "pairs"), [
    (b"", []),
    (b"a=1", [("a", "1")]),
    (b"a=1&a=2&b=", [("a", "1"), ("a", "2"), ("b", "")]),
    (b"flag", [("flag", "")]),
    (b"&&a=1&&", [("a", "1")]),
    (b"=value", [("", "value")]),
    (b"a=b=c", [("a", "b=c")]),
    (b"a=1;b=2", [("a", "1;b=2")]),
    (b"sp=a+b&plus=a%2Bb", [("sp", "a b"), ("plus", "a+b")]),
    (b"k%20ey=v%3Dx", [("k ey", "v=x")]),
    (b"pct=100%&bad=%zz&short=%4", [("pct", "100%"), ("bad", "%zz"), ("short", "%4")]),
    (b"euro=%E2%82%AC&raw=\xe2\x82\xac", [("euro", "\u20ac"), ("raw", "\u20ac")]),
    (b"broken=%FF%FE", [("broken", "\ufffd\ufffd")]),
    (b"upper=%c3%A9", [("upper", "\u00e9")]),
])
def test_parse_urlencoded(body: bytes, pairs: list[tuple[str, str]]) -> None:
    assert parse_urlencoded(body) == pairs


def test_parse_query_takes_the_request_query() -> None:
    assert parse_query("?a=1&b=x+y") == [("a", "1"), ("b", "x y")]
    assert parse_query("a=1") == [("a", "1")]
    assert parse_query("") == [] and parse_query("?") == [] and parse_query(None) == []


def test_field_limit_at_and_one_past() -> None:
    assert len(parse_urlencoded(b"&".join([b"a=1"] * 10000))) == 10000
    with pytest.raises(ClientError) as caught:
        parse_urlencoded(b"&".join([b"a=1"] * 10001))
    assert caught.value.status == 413
    assert len(parse_urlencoded(b"x&" * 20000, field_limit=None)) == 20000
    with pytest.raises(ClientError):
        parse_query("?a&b&c", field_limit=2)


def parse_in_pieces(body: bytes, cuts: list[int], field_limit: int | None = 10000,
                    ) -> list[tuple[str, str]]:
    parser = UrlencodedParser(field_limit=field_limit)
    start = 0
    for cut in sorted(cuts):
        parser.feed(body[start:cut])
        start = cut
    parser.feed(body[start:])
    return parser.end()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40).map(lambda data: data.replace(b"\x00", b"&")),
       st.lists(st.integers(0, 40), max_size=6))
def test_the_stream_parser_gives_the_same_pairs_whatever_the_cuts(
        body: bytes, cuts: list[int]) -> None:
    assert parse_in_pieces(body, cuts) == parse_urlencoded(body)


def test_the_stream_parser_refuses_at_the_first_field_past_the_limit() -> None:
    parser = UrlencodedParser(field_limit=3)
    parser.feed(b"a&b&c")  # the third field is not ended yet
    parser.feed(b"&")
    with pytest.raises(ClientError) as caught:
        parser.feed(b"d&")
    assert caught.value.status == 413
    assert [name for name, _ in parser.pairs] == ["a", "b", "c"]
    at_the_end = UrlencodedParser(field_limit=1)
    at_the_end.feed(b"a&b")
    with pytest.raises(ClientError):
        at_the_end.end()


def test_a_flood_of_empty_fields_is_refused_early_in_little_memory() -> None:
    piece = b"&a" * 8192  # 16 KiB pieces, as the body decoder hands them
    parser = UrlencodedParser()
    fed = 0
    tracemalloc.start()
    try:
        with pytest.raises(ClientError) as caught:
            for _ in range(4096):  # a 64 MiB body, if it were all read
                parser.feed(piece)
                fed += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert caught.value.status == 413
    assert fed < 2 * len(piece)  # refused within the second piece (field 10001)
    assert peak < 4 * 1024 * 1024, peak  # 10000 short pairs, not 64 MiB of splits


def test_a_big_field_costs_a_few_copies_of_itself() -> None:
    size = 8 * 1024 * 1024
    parser = UrlencodedParser()
    tracemalloc.start()
    try:
        parser.feed(b"big=")
        for _ in range(size // 16384):
            parser.feed(b"x" * 16384)
        parser.feed(b"&small=1")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parser.end() == [("big", "x" * size), ("small", "1")]
    assert peak < 5 * size, peak


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT), max_size=6))
def test_round_trip_with_the_standard_library_encoder(pairs: list[tuple[str, str]]) -> None:
    encoded = urllib.parse.urlencode(pairs)
    assert parse_urlencoded(encoded.encode("ascii")) == pairs  # even ("", "") is "="
    assert parse_query("?" + encoded) == parse_urlencoded(encoded.encode("ascii"))


@settings(max_examples=300, deadline=None)
@given(st.text("ab=&+%2Fe9;\u00e9 ", max_size=30))
def test_agrees_with_the_standard_library_parser(query: str) -> None:
    expected = urllib.parse.parse_qsl(query, keep_blank_values=True, errors="replace")
    assert parse_urlencoded(query.encode("utf-8")) == expected


def test_first_values_mapping() -> None:
    params = FirstValues(parse_urlencoded(b"a=1&b=2&a=3"))
    assert params["a"] == "1" and params["b"] == "2"
    assert dict(params) == {"a": "1", "b": "2"} and len(params) == 2
    with pytest.raises(KeyError):
        params["missing"]
    assert params.get("missing") is None and "missing" not in params
    assert repr(params) == "FirstValues({'a': '1', 'b': '2'})"


def test_value_lists_mapping_never_inserts() -> None:
    params = ValueLists(parse_urlencoded(b"a=1&b=2&a=3"))
    assert params["a"] == ["1", "3"] and params["missing"] == []
    assert "missing" not in params and len(params) == 2 and list(params) == ["a", "b"]
    assert params.get("missing") is None and params.get("missing", []) == []
    assert params.get("a") == ["1", "3"]
    params["a"].append("changed")
    assert params["a"] == ["1", "3"]


def test_mappings_hold_any_values() -> None:
    metadata = [("file", ("a.txt", "text/plain")), ("file", ("b.png", "image/png"))]
    assert FirstValues(metadata)["file"] == ("a.txt", "text/plain")
    assert ValueLists(metadata)["file"][1] == ("b.png", "image/png")


@pytest.mark.parametrize(("lines", "cookies"), [
    ([], {}),
    (["a=1"], {"a": "1"}),
    (["a=1; b=2;c=3"], {"a": "1", "b": "2", "c": "3"}),
    (['theme="dark mode"'], {"theme": "dark mode"}),
    (['q=""'], {"q": ""}),
    (['lone="'], {"lone": '"'}),
    (["  spaced  =  value  "], {"spaced": "value"}),
    (["a=1", "b=2"], {"a": "1", "b": "2"}),
    (["sid=new; sid=old"], {"sid": "new"}),
    (["token=a=b=c"], {"token": "a=b=c"}),
    (["empty="], {"empty": ""}),
    (["novalue; =nameless; ok=1"], {"ok": "1"}),
    (["pct=a%20b"], {"pct": "a%20b"}),
    (["x=1;;; ;y=2"], {"x": "1", "y": "2"}),
])
def test_parse_cookies(lines: list[str], cookies: dict[str, str]) -> None:
    assert parse_cookies(lines) == cookies


def test_docstring_examples() -> None:
    result = doctest.testmod(_forms)
    assert result.attempted > 0 and result.failed == 0
