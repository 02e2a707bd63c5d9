"""Form fields and cookies: query strings, urlencoded bodies, `Cookie` lines.

Parsing gives ordered `(name, value)` pairs; two read-only views turn them
into what a handler reads:

* `FirstValues` (`get_params`, `post_params`): name -> first value; an
  absent name is a `KeyError` as in any mapping (use `.get()`).
* `ValueLists` (`get_params_list`, `post_params_list`): name -> list of
  all values; an absent name gives `[]` and inserts nothing.

Decoding (WHATWG application/x-www-form-urlencoded, which GET forms use in
the query too; `UrlencodedParser` decodes a body as it arrives, one field
at a time, checking the field limit at each): fields split on `&` (not
`;`), empty fields are skipped, a field without `=` has the value `""`,
`+` is a space, `%XX` escapes are decoded to bytes (a `%` not followed by
two hex digits stays as is), and the bytes are decoded as UTF-8 with
`errors="replace"`.

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

__all__ = [
    "FirstValues",
    "UrlencodedParser",
    "ValueLists",
    "parse_cookies",
    "parse_query",
    "parse_urlencoded",
]

_V = TypeVar("_V")
_T = TypeVar("_T")
_PERCENT = re.compile(rb"%([0-9A-Fa-f]{2})")


def _unescape(field: bytes) -> str:
    field = _PERCENT.sub(lambda match: bytes([int(match[1], 16)]), field.replace(b"+", b" "))
    return field.decode("utf-8", "replace")


class UrlencodedParser:
    """An application/x-www-form-urlencoded body parsed as it arrives.

    Each complete field (up to its ``&``) is decoded at once, so what is
    kept is the pairs so far and the one field not yet ended. The field
    limit is checked at every field: a body of a million ``&a`` is refused
    at field `field_limit` + 1, after reading that little of it, and
    memory stays within a small multiple of what the limits allow.

    The size of a field is bounded by the body's limit
    (`request_body_size_limit`, checked by the body decoder before the
    bytes get here); a field is decoded in a few copies of its size.

    Args:
        field_limit: Most fields accepted (`None`: no limit).

    Raises:
        ClientError: 413 from `feed` or `end` at the first field past the limit.

    Examples:
        >>> parser = UrlencodedParser()
        >>> parser.feed(b"a=1&b=x+")
        >>> parser.feed(b"y%2")
        >>> parser.feed(b"1&&c")
        >>> parser.end()
        [('a', '1'), ('b', 'x y!'), ('c', '')]
        >>> UrlencodedParser(field_limit=2).feed(b"a&b&c&")
        Traceback (most recent call last):
        ...
        layer3_http._errors.ClientError: 413 Content Too Large: more than 2 form fields
    """

    __slots__ = ("_field_limit", "_pending", "pairs")

    def __init__(self, *, field_limit: int | None = 10000) -> None:
        self._field_limit = field_limit
        self._pending: list[bytes] = []
        self.pairs: list[tuple[str, str]] = []
        """The fields decoded so far, in order."""

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the body; decode every field they end."""
        start = 0
        while True:
            end = data.find(b"&", start)
            if end < 0:
                break
            if self._pending:
                self._pending.append(data[start:end])
                field = b"".join(self._pending)
                self._pending = []
            else:
                field = data[start:end]
            self._field(field)
            start = end + 1
        if start < len(data):
            self._pending.append(data[start:] if start else data)

    def end(self) -> list[tuple[str, str]]:
        """The body is complete: decode the last field; return all pairs."""
        if self._pending:
            field = b"".join(self._pending)
            self._pending = []
            self._field(field)
        return self.pairs

    def _field(self, field: bytes) -> None:
        if not field:
            return  # empty fields are skipped
        if self._field_limit is not None and len(self.pairs) >= self._field_limit:
            raise ClientError(413, f"more than {self._field_limit} form fields")
        name, _, value = field.partition(b"=")
        self.pairs.append((_unescape(name), _unescape(value)))


def parse_urlencoded(body: bytes, *, field_limit: int | None = 10000) -> list[tuple[str, str]]:
    """Parse an application/x-www-form-urlencoded body into pairs (`UrlencodedParser`).

    Args:
        body: The request body.
        field_limit: Most fields accepted (`None`: no limit).

    Returns:
        `(name, value)` pairs in the order sent.

    Raises:
        ClientError: 413 when there are more than `field_limit` fields,
            raised at the first field past it.

    Examples:
        >>> parse_urlencoded(b"a=1&b=x+y%21&&c&a=%E2%82%AC")
        [('a', '1'), ('b', 'x y!'), ('c', ''), ('a', '€')]
    """
    parser = UrlencodedParser(field_limit=field_limit)
    parser.feed(body)
    return parser.end()


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


COOKIE_LIMIT = 1000
"""The most cookies a request may send (RFC 6265 §6.1 asks browsers to keep 50 per domain,
3,000 in all); past it, 431. The pairs are cut one at a time, so a cookie header of a
mebibyte is not split into a hundred thousand strings before the limit is seen."""


def _pairs(line: str) -> Iterator[str]:
    start = 0
    while True:
        end = line.find(";", start)
        if end < 0:
            yield line[start:]
            return
        yield line[start:end]
        start = end + 1


def parse_cookies(values: Iterable[str]) -> dict[str, str]:
    """Parse the values of the `Cookie` header lines into a dictionary.

    Raises:
        ClientError: 431 past `COOKIE_LIMIT` cookies.

    Examples:
        >>> parse_cookies(['sid=abc; theme="dark"; sid=old', "lang=en"])
        {'sid': 'abc', 'theme': 'dark', 'lang': 'en'}
    """
    cookies: dict[str, str] = {}
    pairs = 0
    for line in values:
        for pair in _pairs(line):
            pairs += 1
            if pairs > COOKIE_LIMIT:
                raise ClientError(431, f"more than {COOKIE_LIMIT} cookies")
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
