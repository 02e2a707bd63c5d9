"""The request's header tables: five read-only views of the field lines.

The reference gives a handler five ways to look at one list of header
lines. Each is a read-only `Mapping` keyed by field name, any case:

| table | `table["Accept"]` | when absent |
| --- | --- | --- |
| `Headers` (`headers`) | the raw values, one per line | `[]` |
| `HeadersCsvTable` (`headers_csv_table`) | the comma-separated items of all lines | `[]` |
| `HeadersCsvString` (`headers_csv_string`) | the lines joined by `", "` | `""` |
| `HeadersValue` (`headers_value`) | the value if sent on one line, else `False` | `None` |
| `HeadersFlags` (`headers_flags`) | a `Flags` mapping item -> `bool` (any case) | empty `Flags` |

Invariants: looking up an absent name returns the table's empty value and
inserts nothing; `in`, `len()`, iteration and `get()` see only the names
that were sent (lower-cased, in order of first appearance); every lookup
returns a fresh object, so changing a returned list changes no table.
`Headers` keeps one entry per line: a value holding commas stays one
value, and only the CSV tables split it, never inside a quoted string.

`HeadViews` (the base of `Request`) builds these tables, `cookies`,
`get_params` and `get_params_list` from the head on first use, each a
`functools.cached_property`, then keeps them: most handlers read one
table or none, and a request pays only for the views its handler uses;
each is built at most once and only from `head`, and, like the plain
attributes they stand for, can be replaced by assignment.

`FirstValues` (`get_params`, `post_params`) maps a name to its first value
(an absent name is a `KeyError`, as in any mapping: use `.get()`);
`ValueLists` (`get_params_list`, `post_params_list`) maps it to the list of
all values (an absent name gives `[]` and inserts nothing). Both are
views of the ordered `(name, value)` pairs that `_forms` parses.

Moonbridge: `request.headers`, `headers_csv_table`, `headers_csv_string`,
`headers_value` and `headers_flags`, which the original built with Lua
metatables (and split comma-holding values in `headers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar, overload

from ._abnf import split_list
from ._forms import parse_cookies, parse_query

if TYPE_CHECKING:
    from ._head import RequestHead  # _head imports this module (single_value)

__all__ = [
    "FirstValues",
    "Flags",
    "HeadViews",
    "HeaderTables",
    "Headers",
    "HeadersCsvString",
    "HeadersCsvTable",
    "HeadersFlags",
    "HeadersValue",
    "ValueLists",
    "single_value",
]

_V = TypeVar("_V")
_T = TypeVar("_T")


class _FieldTable(Mapping[str, _V]):
    """Shared machinery: values grouped by lower-cased name, a view on top."""

    __slots__ = ("_values",)

    def __init__(self, fields: Iterable[tuple[str, str]] | _FieldTable[Any]) -> None:
        if isinstance(fields, _FieldTable):
            self._values: dict[str, list[str]] = fields._values
            return
        self._values = {}
        for name, value in fields:
            self._values.setdefault(name.lower(), []).append(value)

    def _view(self, values: list[str]) -> _V:
        raise NotImplementedError

    def __getitem__(self, name: str) -> _V:
        return self._view(self._values.get(name.lower(), []))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def get(self, name: str, /) -> _V | None: ...
    @overload
    def get(self, name: str, /, default: _V | _T) -> _V | _T: ...
    def get(self, name: str, /, default: object = None) -> object:
        """Return the table's value if the field was sent, else `default`."""
        if name not in self:
            return default
        return self[name]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"


class Headers(_FieldTable[list[str]]):
    """Field name -> list of raw values, one per header line.

    Examples:
        >>> headers = Headers([("Accept", "a, b"), ("accept", "c")])
        >>> headers["ACCEPT"], headers["Missing"], "missing" in headers
        (['a, b', 'c'], [], False)
    """

    __slots__ = ()

    def _view(self, values: list[str]) -> list[str]:
        return list(values)


class HeadersCsvTable(_FieldTable[list[str]]):
    """Field name -> comma-separated items of all its lines.

    Examples:
        >>> HeadersCsvTable([("If-Match", '"a,b", "c"'), ("If-Match", "d")])["if-match"]
        ['"a,b"', '"c"', 'd']
    """

    __slots__ = ()

    def _view(self, values: list[str]) -> list[str]:
        return [item for value in values for item in split_list(value)]


class HeadersCsvString(_FieldTable[str]):
    """Field name -> its lines joined by `", "`; `""` when absent.

    Examples:
        >>> HeadersCsvString([("Via", "a"), ("Via", "b")])["via"]
        'a, b'
    """

    __slots__ = ()

    def _view(self, values: list[str]) -> str:
        return ", ".join(values)


class HeadersValue(_FieldTable["str | Literal[False] | None"]):
    """Field name -> the value if sent on one line, `False` if on several.

    Examples:
        >>> table = HeadersValue([("Host", "x"), ("Via", "a"), ("Via", "b")])
        >>> table["host"], table["via"], table["missing"]
        ('x', False, None)
    """

    __slots__ = ()

    def _view(self, values: list[str]) -> str | Literal[False] | None:
        return single_value(values)


def single_value(values: list[str]) -> str | Literal[False] | None:
    """The `HeadersValue` rule: the value of one line, `False` for several, `None` for none."""
    if not values:
        return None
    return values[0] if len(values) == 1 else False


class Flags(Mapping[str, bool]):
    """Item -> whether a header listed it, case-insensitively.

    Examples:
        >>> flags = HeadersFlags([("Connection", "Keep-Alive, Upgrade")])["connection"]
        >>> flags["upgrade"], flags["close"], sorted(flags)
        (True, False, ['keep-alive', 'upgrade'])
    """

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[str]) -> None:
        self._items = dict.fromkeys(item.lower() for item in items)

    def __getitem__(self, item: str) -> bool:
        return item.lower() in self._items

    def __contains__(self, item: object) -> bool:
        return isinstance(item, str) and item.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Flags({list(self._items)!r})"


class HeadersFlags(_FieldTable[Flags]):
    """Field name -> `Flags` of its comma-separated items."""

    __slots__ = ()

    def _view(self, values: list[str]) -> Flags:
        return Flags(item for value in values for item in split_list(value))


class HeaderTables(NamedTuple):
    """All five tables over one list of field lines (they share the data)."""

    headers: Headers
    headers_csv_table: HeadersCsvTable
    headers_csv_string: HeadersCsvString
    headers_value: HeadersValue
    headers_flags: HeadersFlags

    @classmethod
    def from_fields(cls, fields: Iterable[tuple[str, str]]) -> HeaderTables:
        """Build the tables from `(name, value)` pairs, e.g. `RequestHead.headers`.

        Examples:
            >>> tables = HeaderTables.from_fields([("Accept", "text/html, */*")])
            >>> tables.headers_csv_table["accept"], tables.headers_value["accept"]
            (['text/html', '*/*'], 'text/html, */*')
        """
        headers = Headers(fields)
        return cls(
            headers,
            HeadersCsvTable(headers),
            HeadersCsvString(headers),
            HeadersValue(headers),
            HeadersFlags(headers),
        )


# -- name -> values views of form fields ---------------------------------------

class FirstValues(Mapping[str, _V]):
    """Name -> first value among `(name, value)` pairs; read-only.

    Examples:
        >>> params = FirstValues([("a", "1"), ("a", "2")])
        >>> params["a"], params.get("b"), list(params)
        ('1', None, ['a'])
    """

    __slots__ = ("_values",)

    def __init__(self, pairs: Iterable[tuple[str, _V]]) -> None:
        self._values: dict[str, _V] = {}
        for name, value in pairs:
            self._values.setdefault(name, value)

    def __getitem__(self, name: str) -> _V:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"FirstValues({self._values!r})"


class ValueLists(Mapping[str, list[_V]]):
    """Name -> all values among `(name, value)` pairs; `[]` when absent.

    Examples:
        >>> params = ValueLists([("a", "1"), ("a", "2")])
        >>> params["a"], params["b"], "b" in params, len(params)
        (['1', '2'], [], False, 1)
    """

    __slots__ = ("_values",)

    def __init__(self, pairs: Iterable[tuple[str, _V]]) -> None:
        self._values: dict[str, list[_V]] = {}
        for name, value in pairs:
            self._values.setdefault(name, []).append(value)

    def __getitem__(self, name: str) -> list[_V]:
        return list(self._values.get(name, ()))

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @overload
    def get(self, name: str, /) -> list[_V] | None: ...
    @overload
    def get(self, name: str, /, default: list[_V] | _T) -> list[_V] | _T: ...
    def get(self, name: str, /, default: object = None) -> object:
        """Return the values if the name was sent, else `default`."""
        if name not in self._values:
            return default
        return self[name]

    def __repr__(self) -> str:
        return f"ValueLists({self._values!r})"


# -- the request head's lazy views ---------------------------------------------

class HeadViews:
    """Lazy views of `head` (documented on `Request`, which inherits them)."""

    head: RequestHead

    @cached_property
    def headers(self) -> Headers:
        """Field name (any case) -> list of raw values, one per line."""
        return Headers(self.head.headers)

    @cached_property
    def headers_csv_table(self) -> HeadersCsvTable:
        """Field name -> the comma-separated items of all lines."""
        return HeadersCsvTable(self.headers)

    @cached_property
    def headers_csv_string(self) -> HeadersCsvString:
        """Field name -> all lines joined by ``", "``."""
        return HeadersCsvString(self.headers)

    @cached_property
    def headers_value(self) -> HeadersValue:
        """Field name -> the value if sent on one line, `False` if on several, `None` if absent."""
        return HeadersValue(self.headers)

    @cached_property
    def headers_flags(self) -> HeadersFlags:
        """Field name -> item -> `bool`, case-insensitive."""
        return HeadersFlags(self.headers)

    @cached_property
    def cookies(self) -> dict[str, str]:
        """Cookie name -> value."""
        return parse_cookies(self.headers["Cookie"])

    @cached_property
    def _query_pairs(self) -> list[tuple[str, str]]:
        return parse_query(self.head.query)

    @cached_property
    def get_params(self) -> Mapping[str, str]:
        """Query field -> its first value."""
        return FirstValues(self._query_pairs)

    @cached_property
    def get_params_list(self) -> Mapping[str, list[str]]:
        """Query field -> all its values (``[]`` when absent)."""
        return ValueLists(self._query_pairs)
