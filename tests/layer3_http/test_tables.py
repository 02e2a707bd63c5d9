"""The five header tables: lookups, absent names, quoted commas, read-only."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from layer3_http import _tables
from layer3_http._abnf import split_list
from layer3_http._head import HeadParser
from layer3_http._tables import (
    Flags,
    Headers,
    HeadersCsvString,
    HeadersCsvTable,
    HeadersFlags,
    HeadersValue,
    HeaderTables,
)

FIELDS = [
    ("Host", "example.com"),
    ("Accept", "text/html, application/xhtml+xml"),
    ("accept", "*/*;q=0.8"),
    ("If-None-Match", '"a,b", W/"c"'),
    ("Connection", "Keep-Alive, Upgrade"),
    ("X-Empty", ""),
]


@pytest.fixture
def tables() -> HeaderTables:
    return HeaderTables.from_fields(FIELDS)


def test_headers_keep_one_value_per_line(tables: HeaderTables) -> None:
    """The original split values holding commas into several values."""
    assert tables.headers["ACCEPT"] == ["text/html, application/xhtml+xml", "*/*;q=0.8"]
    assert tables.headers["if-none-match"] == ['"a,b", W/"c"']
    assert tables.headers["x-empty"] == [""]


def test_csv_table_splits_items_but_not_quoted_strings(tables: HeaderTables) -> None:
    assert tables.headers_csv_table["Accept"] == [
        "text/html", "application/xhtml+xml", "*/*;q=0.8"]
    assert tables.headers_csv_table["If-None-Match"] == ['"a,b"', 'W/"c"']
    assert tables.headers_csv_table["X-Empty"] == []


def test_csv_string_joins_lines(tables: HeaderTables) -> None:
    assert tables.headers_csv_string["accept"] == (
        "text/html, application/xhtml+xml, */*;q=0.8")
    assert tables.headers_csv_string["host"] == "example.com"


def test_value_is_false_for_several_lines(tables: HeaderTables) -> None:
    assert tables.headers_value["Host"] == "example.com"
    assert tables.headers_value["Accept"] is False
    assert tables.headers_value["X-Empty"] == ""
    assert tables.headers_value["Missing"] is None


def test_flags_are_case_insensitive_at_both_levels(tables: HeaderTables) -> None:
    flags = tables.headers_flags["CONNECTION"]
    assert flags["keep-alive"] and flags["UPGRADE"] and not flags["close"]
    assert "Keep-Alive" in flags and "close" not in flags
    assert list(flags) == ["keep-alive", "upgrade"] and len(flags) == 2
    assert tables.headers_flags["accept"]["TEXT/HTML"]


def test_absent_names_give_empty_values(tables: HeaderTables) -> None:
    assert tables.headers["Missing"] == []
    assert tables.headers_csv_table["Missing"] == []
    assert tables.headers_csv_string["Missing"] == ""
    assert tables.headers_value["Missing"] is None
    missing = tables.headers_flags["Missing"]
    assert isinstance(missing, Flags) and not missing["anything"] and len(missing) == 0


def test_lookups_never_insert(tables: HeaderTables) -> None:
    for table in tables:
        before = list(table)
        _ = table["Not-Sent"]
        assert "Not-Sent" not in table and "not-sent" not in table
        assert list(table) == before and len(table) == len(before)
        assert table.get("Not-Sent") is None and table.get("Not-Sent", 7) == 7


def test_get_returns_the_table_value_when_sent(tables: HeaderTables) -> None:
    assert tables.headers.get("HOST") == ["example.com"]
    assert tables.headers_value.get("accept") is False
    assert tables.headers_csv_string.get("X-Empty", "default") == ""


def test_iteration_is_lower_case_in_first_appearance_order(tables: HeaderTables) -> None:
    expected = ["host", "accept", "if-none-match", "connection", "x-empty"]
    for table in tables:
        assert list(table) == expected and len(table) == 5
    assert dict(tables.headers)["accept"] == ["text/html, application/xhtml+xml", "*/*;q=0.8"]
    assert tables.headers == Headers(FIELDS)  # Mapping equality


def test_returned_lists_are_copies(tables: HeaderTables) -> None:
    tables.headers["Accept"].append("changed")
    tables.headers_csv_table["Accept"].clear()
    assert len(tables.headers["Accept"]) == 2
    assert len(tables.headers_csv_table["Accept"]) == 3


def test_tables_are_read_only(tables: HeaderTables) -> None:
    with pytest.raises(TypeError):
        tables.headers["X"] = ["y"]  # type: ignore[index]
    with pytest.raises(TypeError):
        del tables.headers_value["Host"]  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        tables.headers.extra = 1  # type: ignore[attr-defined]


def test_non_string_keys_are_not_members(tables: HeaderTables) -> None:
    number: object = 1
    assert number not in tables.headers and None not in tables.headers_flags["connection"]


def test_each_table_can_be_built_alone() -> None:
    assert Headers([("A", "1")])["a"] == ["1"]
    assert HeadersCsvTable([("A", "1, 2")])["a"] == ["1", "2"]
    assert HeadersCsvString([("A", "1"), ("a", "2")])["A"] == "1, 2"
    assert HeadersValue([("A", "1")])["a"] == "1"
    assert HeadersFlags([("A", "x")])["a"]["X"]
    assert repr(HeadersValue([("A", "1")])) == "HeadersValue({'a': '1'})"
    assert repr(Flags(["A"])) == "Flags(['a'])"


def test_tables_from_a_parsed_head() -> None:
    head = HeadParser().feed(
        b"GET / HTTP/1.1\r\nHost: x\r\nCookie: a=1, b=2\r\nCookie: c=3\r\n\r\n")
    assert head is not None
    tables = HeaderTables.from_fields(head.headers)
    assert tables.headers["cookie"] == ["a=1, b=2", "c=3"]
    assert tables.headers_value["cookie"] is False


@pytest.mark.parametrize(("value", "items"), [
    ("", []),
    (" , ,", []),
    ("a", ["a"]),
    ("a,b", ["a", "b"]),
    (' "x, y" , z', ['"x, y"', "z"]),
    ('"esc\\"aped, still", next', ['"esc\\"aped, still"', "next"]),
    ('"unterminated, quote', ['"unterminated, quote']),
    ("a;q=\"1,2\", b", ['a;q="1,2"', "b"]),
    ("\ta\t,\tb", ["a", "b"]),
])
def test_split_list(value: str, items: list[str]) -> None:
    assert split_list(value) == items


ITEMS = st.one_of(
    st.text("abcXYZ019-_/=;.", min_size=1, max_size=8),
    st.text("ab ,;=", max_size=8).map(lambda text: f'"{text}"'),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(ITEMS, max_size=4), min_size=1, max_size=4))
def test_csv_table_is_the_split_csv_string(lines: list[list[str]]) -> None:
    fields = [("X-List", ", ".join(items)) for items in lines]
    tables = HeaderTables.from_fields(fields)
    expected = [item for items in lines for item in items]
    assert tables.headers_csv_table["x-list"] == expected
    assert split_list(tables.headers_csv_string["X-LIST"]) == expected
    assert all(tables.headers_flags["x-list"][item.upper()] for item in expected)
    assert tables.headers["X-List"] == [value for _, value in fields]
    assert tables.headers_value["x-list"] == (fields[0][1] if len(fields) == 1 else False)


def test_docstring_examples() -> None:
    result = doctest.testmod(_tables)
    assert result.attempted > 0 and result.failed == 0
