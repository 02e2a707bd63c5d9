"""The read-only views of a request head, built on first use.

`HeadViews` gives `Request` its five header tables, `cookies`,
`get_params` and `get_params_list`. Each is a `functools.cached_property`:
built from `head` the first time a handler looks, then kept. That is the
fast path: most handlers read one table or none, so a request no longer
pays for eight views it never uses.

Invariants: each view is built at most once per request and only from
`head`; the header tables share one grouping of the field lines (as
`HeaderTables.from_fields` does); like the plain attributes they stand for,
the views can be replaced by assignment.

Moonbridge: the tables of the original's request object, which it built
eagerly for every request.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cached_property

from ._forms import FirstValues, ValueLists, parse_cookies, parse_query
from ._head import RequestHead
from ._tables import Headers, HeadersCsvString, HeadersCsvTable, HeadersFlags, HeadersValue

__all__ = ["HeadViews"]


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
