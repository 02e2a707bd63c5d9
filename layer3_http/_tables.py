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

Moonbridge: `request.headers`, `headers_csv_table`, `headers_csv_string`,
`headers_value` and `headers_flags`, which the original built with Lua
metatables (and split comma-holding values in `headers`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, NamedTuple, TypeVar, overload

from ._abnf import split_list

__all__ = [
    "Flags",
    "HeaderTables",
    "Headers",
    "HeadersCsvString",
    "HeadersCsvTable",
    "HeadersFlags",
    "HeadersValue",
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
