"""Form fields and cookies: query strings, urlencoded bodies, `Cookie` lines.

Parsing gives ordered `(name, value)` pairs; two read-only views turn them
into what a handler reads:

* `FirstValues` (`get_params`, `post_params`): name -> first value; an
  absent name is a `KeyError` as in any mapping (use `.get()`).
* `ValueLists` (`get_params_list`, `post_params_list`): name -> list of
  all values; an absent name gives `[]` and inserts nothing.

Decoding (WHATWG application/x-www-form-urlencoded, which GET forms use in
the query too): fields split on `&` (not `;`), empty fields are skipped, a
field without `=` has the value `""`, `+` is a space, `%XX` escapes are
decoded to bytes (a `%` not followed by two hex digits stays as is), and the
bytes are decoded as UTF-8 with `errors="replace"`.

Cookies (RFC 6265 section 5.4 as a server sees it): pairs split on `;`,
whitespace around names and values dropped, one pair of surrounding double
quotes removed, nothing else decoded (a cookie value is opaque). When a
name repeats, the first pair wins: browsers send the most specific cookie
first.

Moonbridge: `get_params`, `get_params_list`, `post_params`,
`post_params_list` and `cookies`; the original also percent-decoded
cookie values, which RFC 6265 does not define.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar, overload

from ._errors import ClientError

__all__ = ["FirstValues", "ValueLists", "parse_cookies", "parse_query", "parse_urlencoded"]

_V = TypeVar("_V")
_T = TypeVar("_T")
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def _unescape(field: bytes) -> str:
    field = _PERCENT.sub(lambda match: bytes([int(match[1], 16)]), field.replace(b"+", b" "))
    return field.decode("utf-8", "replace")


def parse_urlencoded(body: bytes, *, field_limit: int | None = 10000) -> list[tuple[str, str]]:
    """Parse an application/x-www-form-urlencoded body into pairs.

    Args:
        body: The request body.
        field_limit: Most fields accepted (`None`: no limit).

    Returns:
        `(name, value)` pairs in the order sent.

    Raises:
        ClientError: 413 when there are more than `field_limit` fields.

    Examples:
        >>> parse_urlencoded(b"a=1&b=x+y%21&&c&a=%E2%82%AC")
        [('a', '1'), ('b', 'x y!'), ('c', ''), ('a', '€')]
    """
    fields = [field for field in body.split(b"&") if field]
    if field_limit is not None and len(fields) > field_limit:
        raise ClientError(413, f"more than {field_limit} form fields")
    pairs = []
    for field in fields:
        name, _, value = field.partition(b"=")
        pairs.append((_unescape(name), _unescape(value)))
    return pairs


def parse_query(query: str | None, *, field_limit: int | None = 10000) -> list[tuple[str, str]]:
    """Parse a request's query (`RequestHead.query`) into pairs.

    Args:
        query: The query with or without its leading `?`; `None` (the
            `OPTIONS *` request) gives no pairs.
        field_limit: Most fields accepted (`None`: no limit).

    Raises:
        ClientError: 413 when there are more than `field_limit` fields.

    Examples:
        >>> parse_query("?q=caf%C3%A9+au+lait&page=2")
        [('q', 'café au lait'), ('page', '2')]
    """
    if not query:
        return []
    return parse_urlencoded(query.removeprefix("?").encode("iso-8859-1"), field_limit=field_limit)


def parse_cookies(values: Iterable[str]) -> dict[str, str]:
    """Parse the values of the `Cookie` header lines into a dictionary.

    Examples:
        >>> parse_cookies(['sid=abc; theme="dark"; sid=old', "lang=en"])
        {'sid': 'abc', 'theme': 'dark', 'lang': 'en'}
    """
    cookies: dict[str, str] = {}
    for line in values:
        for pair in line.split(";"):
            name, equals, value = pair.partition("=")
            name, value = name.strip(" \t"), value.strip(" \t")
            if not equals or not name:
                continue
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            cookies.setdefault(name, value)
    return cookies


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
