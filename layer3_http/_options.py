"""The HTTP options: one frozen dataclass, checked before anything forks.

`Options` holds every limit and timeout the HTTP layer applies to a
connection. It is built once, when `generate_handler` is called in the
master, so a wrong value fails at start-up with a `ValueError` that names the
option, not later inside a worker. The handler then only reads it.

Options may be given three ways, as in the original, and they combine:
an `Options` instance, a mapping (the original's options table), and
keyword arguments, later ones overriding earlier ones::

    generate_handler(app, Options(idle_timeout=10))
    generate_handler({"idle_timeout": 10}, app)
    generate_handler(app, idle_timeout=10)

Invariants: a constructed `Options` is valid and never changes;
`maximum_input_chunk_size` and `minimum_output_chunk_size` are always filled
in (from `chunk_size`, else their defaults); every timeout is either `None`
(disabled) or a positive number of seconds; `static_headers` is normalized
to a tuple of `(name, value)` pairs that passed the same checks as
`Request.send_header`.

HTTPS is one of the options. `tls_context` loads the certificate chain
and key (and, for client certificates, the CA bundle that signs them)
into a server-side `ssl.SSLContext`. Passed as the `tls` option, it makes
every connection of the handler run layer 1's `starttls` before the first
request, so TLS is terminated in the worker that serves the connection:
the master only accepts and passes the socket on, as for plain HTTP.

The context is built before the workers fork, so a missing file or a key
that does not match fails at start-up (the command line exits 1), and
every worker inherits the loaded certificate. It offers TLS 1.2 and 1.3
only, the `ssl` module's default ciphers, and ALPN ``http/1.1``.

Moonbridge: the options table of ``http.generate_handler``; TLS has no
counterpart (the original had it only as an undocumented experiment).
"""

from __future__ import annotations

import math
import os
import re
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeAlias

from layer2_prefork import check_count

from ._abnf import FIELD_CONTROL, FIELD_VALUE_OCTETS, TOKEN
from ._accesslog import AccessLog
from ._proxy import DEFAULT_TRUSTED, FORWARDED_HEADERS, TrustedProxies

__all__ = [
    "CLIENT_CERTS",
    "Options",
    "StaticHeaders",
    "check_header",
    "normalize_static_headers",
    "resolve_arguments",
    "tls_context",
]

KiB = 1024
MiB = 1024 * KiB

StaticHeaders: TypeAlias = (
    "str | Iterable[str | tuple[str, str]] | Mapping[str, str] | None"
)
"""What `Options.static_headers` accepts (see `normalize_static_headers`)."""

# Headers whose value the server decides: a static copy would contradict it.
_SERVER_FIELDS = frozenset({"connection", "content-length", "date", "transfer-encoding"})


def check_header(name: object, value: object) -> tuple[str, str]:
    """Check a response header field and return it as `(name, value)` strings.

    Args:
        name: The field name; it must be an RFC 9110 token.
        value: The field value, a `str` or an `int`; surrounding spaces are
            removed.

    Returns:
        The name and the value as text.

    Raises:
        TypeError: The name is not a `str`, or the value neither `str` nor `int`.
        ValueError: The name is not a token, or the value holds CR, LF, NUL
            or another control character, or a character outside ISO-8859-1
            (header injection is impossible).

    Examples:
        >>> check_header("X-Count", 3)
        ('X-Count', '3')
        >>> check_header("X-Evil", "a\\r\\nSet-Cookie: b")
        Traceback (most recent call last):
        ...
        ValueError: header value of 'X-Evil' holds CR, LF, NUL or another control character
    """
    if not isinstance(name, str):
        raise TypeError(f"header name must be a str, not {name!r}")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise TypeError(f"header value must be a str or an int, not {value!r}")
    if TOKEN.fullmatch(name) is None:
        raise ValueError(f"header name {name!r} is not a token (no spaces, colons, CR or LF)")
    text = str(value).strip(" \t")
    if FIELD_VALUE_OCTETS.fullmatch(text) is not None:
        return name, text  # fast path: one scan proves both rules below
    if FIELD_CONTROL.search(text) is not None:
        raise ValueError(
            f"header value of {name!r} holds CR, LF, NUL or another control character"
        )
    try:
        text.encode("iso-8859-1")
    except UnicodeEncodeError:
        raise ValueError(f"header value of {name!r} is not ISO-8859-1 text") from None
    return name, text


def normalize_static_headers(headers: StaticHeaders) -> tuple[tuple[str, str], ...]:
    """Turn any accepted form of `static_headers` into checked `(name, value)` pairs.

    Accepted: a string of ``Name: value`` lines (CRLF or LF between them), a
    sequence whose items are such lines or `(name, value)` pairs, or a
    mapping of names to values.

    Raises:
        ValueError: A line has no colon, a field fails `check_header`, or it
            is one the server sets itself (`Connection`, `Content-Length`,
            `Date`, `Transfer-Encoding`).
        TypeError: The value is of none of the accepted kinds.

    Examples:
        >>> normalize_static_headers("Server: demo\\nX-Frame-Options: DENY")
        (('Server', 'demo'), ('X-Frame-Options', 'DENY'))
        >>> normalize_static_headers({"Server": "demo"})
        (('Server', 'demo'),)
    """
    if headers is None:
        return ()
    items: Iterable[object]
    if isinstance(headers, str):
        items = [line for line in re.split(r"\r?\n", headers) if line.strip()]
    elif isinstance(headers, Mapping):
        items = list(headers.items())
    elif isinstance(headers, Iterable):
        items = list(headers)
    else:
        raise TypeError(f"static_headers must be a str, a sequence or a mapping, not {headers!r}")
    pairs = []
    for item in items:
        if isinstance(item, str):
            name, colon, value = item.partition(":")
            if not colon:
                raise ValueError(f"static header line without a colon: {item!r}")
            item = (name, value)
        if not isinstance(item, tuple) or len(item) != 2:
            raise TypeError(f"static header must be a line or a (name, value) pair: {item!r}")
        name, value = check_header(*item)
        if name.lower() in _SERVER_FIELDS:
            raise ValueError(f"static_headers cannot set {name}: the server sets it per response")
        pairs.append((name, value))
    return tuple(pairs)


def _check_seconds(option: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{option} must be a number of seconds > 0 or None, not {value!r}")
    seconds = float(value)
    if math.isnan(seconds) or seconds <= 0 or math.isinf(seconds):
        raise ValueError(f"{option} must be a number of seconds > 0 or None, not {value!r}")
    return seconds


def _check_linger(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not 0 <= float(value) < math.inf:
        raise ValueError(f"park_linger must be a number of seconds >= 0 or None, not {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class Options:
    """Limits and timeouts of the HTTP layer, validated when constructed.

    Sizes are in bytes, timeouts in seconds; a timeout of `None` disables it.

    Attributes:
        static_headers: Header fields sent with every response (a string of
            lines, a list of lines or `(name, value)` pairs, or a mapping;
            stored as a tuple of pairs).
        request_header_size_limit: Most bytes of a request head (431 past it).
        request_body_size_limit: Most bytes of a request body (413 past it).
        chunk_size: Default for the two chunk sizes below.
        maximum_input_chunk_size: Largest piece of request body handed to a
            stream callback (default `chunk_size`, else 16 KiB).
        minimum_output_chunk_size: Response data is collected until this much
            is pending before it is sent (default `chunk_size`, else 1 KiB);
            `Request.flush` sends earlier. A response that ends before the
            threshold goes out with a `Content-Length` in one write.
        idle_timeout: Wait this long for the first byte of a request (the
            first one or the next on a kept-alive connection), then close
            without a response.
        request_header_timeout: Time from the first byte of a head to its
            end; past it the client gets 408 and the connection closes.
        stall_timeout: Longest wait for the client to send or take any byte
            while a request is read or a response written.
        response_timeout: Longest time one request may take, handler
            included; the worker is killed past it (the layer 2 watchdog,
            `layer2_prefork.timeout`), as in the original.
        drain_timeout: After a response, the longest time spent discarding
            a request body the handler did not read (keep-alive), or waiting
            for the client's end before closing.
        drain_size_limit: Most bytes of an unread request body discarded to
            keep the connection alive; a larger rest closes it instead.
        park_linger: After a response on a keep-alive connection, wait this
            long for the next request, then hand the idle connection back
            to the master (`layer2_prefork.park`), so it does not pin the
            worker; at once when other connections wait for a worker.
            `None`: never park (the worker waits up to `idle_timeout`).
        forwarded_allow_ips: The peers whose ``Forwarded`` and
            ``X-Forwarded-*`` headers are believed (see `TrustedProxies`):
            IP addresses, networks, ``unix`` for Unix socket peers, ``*``
            for all; a comma-separated string or a list.
        forwarded_header: The header those proxies set, the only one
            believed: ``"X-Forwarded-For"`` (with ``X-Forwarded-Proto``, as
            nginx sets them) or ``"Forwarded"`` (RFC 7239). The other kind
            is ignored, since a proxy passes it through from its client.
        access_log: One line per request on the logger
            ``layer3_http.access``: an `AccessLog`, a format, ``"common"``,
            ``"combined"``, or `None` for none.
        tls: A server-side `ssl.SSLContext`: every connection speaks TLS
            (HTTPS); the handshake must end within `request_header_timeout`.
        max_requests: Retire the worker after it answered this many
            requests (`None` = never): the last response says
            ``Connection: close``, then layer 2 forks a fresh worker.
        max_requests_jitter: Each worker adds a random 0 to this many to
            `max_requests`, so that workers do not all retire together.
        write_completion_limit: When the handler is done and the client is
            slow to take the response, up to this many bytes of it (in
            memory, or a file of the static callback at any size) go to the
            master, which finishes sending them; the worker is free at once.
            Past it, the worker sends the rest itself. 0: never.
        held_body_limit: A request body announced with a ``Content-Length``
            of at most this many bytes is received by the master, with the
            head, before a worker gets the request, so a slow uploader of
            a small body costs no worker; larger bodies, chunked ones and
            ``Expect: 100-continue`` requests are read by the worker (under
            `minimum_rate`). 0: the master waits for heads only.
        minimum_rate: Bytes per second a client must keep up, on average,
            while the worker reads its request body or writes a response
            itself, after a start of `stall_timeout` seconds; a client
            slower than that is cut off like a stalled one (the idea of
            Apache's ``mod_reqtimeout`` ``MinRate``). `None`: no minimum.

    Raises:
        ValueError: Naming the first option whose value is wrong.

    Examples:
        >>> options = Options(chunk_size=4096, idle_timeout=None)
        >>> options.maximum_input_chunk_size, options.minimum_output_chunk_size
        (4096, 4096)
        >>> Options(stall_timeout=0)
        Traceback (most recent call last):
        ...
        ValueError: stall_timeout must be a number of seconds > 0 or None, not 0

    Moonbridge: the options table of ``http.generate_handler``; the
    timeouts come from the original's later releases.
    """

    static_headers: Any = ()
    request_header_size_limit: int = 1 * MiB
    request_body_size_limit: int = 64 * MiB
    chunk_size: int | None = None
    maximum_input_chunk_size: int | None = None
    minimum_output_chunk_size: int | None = None
    idle_timeout: float | None = 65.0
    request_header_timeout: float | None = 30.0
    stall_timeout: float | None = 30.0
    response_timeout: float | None = 3600.0
    drain_timeout: float | None = 2.0
    drain_size_limit: int = 1 * MiB
    park_linger: float | None = 0.02
    forwarded_allow_ips: Any = DEFAULT_TRUSTED
    forwarded_header: str = FORWARDED_HEADERS[0]
    access_log: Any = None
    tls: ssl.SSLContext | None = None
    max_requests: int | None = None
    max_requests_jitter: int = 0
    write_completion_limit: int = 32 * MiB
    held_body_limit: int = 1 * MiB
    minimum_rate: int | None = 1024
    static_fields: bytes = field(default=b"", init=False, repr=False, compare=False)
    """The static headers encoded once, as they go into every response head."""
    trusted_proxies: TrustedProxies = field(default=TrustedProxies(DEFAULT_TRUSTED), init=False,
                                            repr=False, compare=False)
    """`forwarded_allow_ips` and `forwarded_header` compiled."""

    def __post_init__(self) -> None:
        pairs = normalize_static_headers(self.static_headers)
        object.__setattr__(self, "static_headers", pairs)
        encoded = b"".join(f"{name}: {value}\r\n".encode("iso-8859-1") for name, value in pairs)
        object.__setattr__(self, "static_fields", encoded)
        check_count("request_header_size_limit", self.request_header_size_limit, 64)
        check_count("request_body_size_limit", self.request_body_size_limit, 0)
        check_count("drain_size_limit", self.drain_size_limit, 0)
        if self.chunk_size is not None:
            check_count("chunk_size", self.chunk_size, 1)
        for option, default in (("maximum_input_chunk_size", 16 * KiB),
                                ("minimum_output_chunk_size", 1 * KiB)):
            value = getattr(self, option)
            if value is None:
                value = self.chunk_size if self.chunk_size is not None else default
            object.__setattr__(self, option, check_count(option, value, 1))
        for option in ("idle_timeout", "request_header_timeout", "stall_timeout",
                       "response_timeout", "drain_timeout"):
            object.__setattr__(self, option, _check_seconds(option, getattr(self, option)))
        if self.park_linger is not None:
            object.__setattr__(self, "park_linger", _check_linger(self.park_linger))
        self._check_production()

    def _check_production(self) -> None:
        """Check and normalize the options for proxies, logs, TLS and recycling."""
        trusted = TrustedProxies(self.forwarded_allow_ips, self.forwarded_header)
        object.__setattr__(self, "forwarded_allow_ips", trusted.items)
        object.__setattr__(self, "forwarded_header", trusted.header)
        object.__setattr__(self, "trusted_proxies", trusted)
        log = self.access_log
        if isinstance(log, str):
            object.__setattr__(self, "access_log", AccessLog(log))
        elif log is not None and not isinstance(log, AccessLog):
            raise ValueError(f"access_log must be an AccessLog, a format or None, not {log!r}")
        if self.tls is not None and not isinstance(self.tls, ssl.SSLContext):
            raise ValueError(f"tls must be an ssl.SSLContext or None, not {self.tls!r}")
        if self.max_requests is not None:
            check_count("max_requests", self.max_requests, 1)
        check_count("max_requests_jitter", self.max_requests_jitter, 0)
        check_count("write_completion_limit", self.write_completion_limit, 0)
        check_count("held_body_limit", self.held_body_limit, 0)
        if self.minimum_rate is not None:
            check_count("minimum_rate", self.minimum_rate, 1)

    @property
    def input_chunk_size(self) -> int:
        """`maximum_input_chunk_size` as an int (always set once constructed)."""
        assert self.maximum_input_chunk_size is not None
        return self.maximum_input_chunk_size

    @property
    def output_chunk_size(self) -> int:
        """`minimum_output_chunk_size` as an int (always set once constructed)."""
        assert self.minimum_output_chunk_size is not None
        return self.minimum_output_chunk_size

    def replace(self, **changes: Any) -> Options:
        """Return a copy with some options changed (validated again).

        Examples:
            >>> Options().replace(idle_timeout=5).idle_timeout
            5.0
        """
        values = {item.name: getattr(self, item.name) for item in fields(self) if item.init}
        if "chunk_size" in changes:
            for derived in ("maximum_input_chunk_size", "minimum_output_chunk_size"):
                values[derived] = None
        unknown = set(changes) - set(values)
        if unknown:
            raise ValueError(f"unknown HTTP option(s): {', '.join(sorted(unknown))}")
        values.update(changes)
        return Options(**values)


Callback = Callable[[Any], object]


def resolve_arguments(first: object, second: object,
                      overrides: Mapping[str, Any]) -> tuple[Callback, Options]:
    """Sort out `generate_handler`'s arguments: the callback and the options.

    The callback may come first or second (the other being the options:
    an `Options`, a mapping, or `None`); keyword arguments override both.

    Raises:
        TypeError: Neither argument is callable, or the options are of the
            wrong kind.
        ValueError: An option is unknown or has a wrong value.

    Examples:
        >>> def app(request): ...
        >>> callback, options = resolve_arguments({"idle_timeout": 9}, app, {})
        >>> callback is app, options.idle_timeout
        (True, 9.0)
    """
    if not callable(first) and callable(second):
        first, second = second, first
    if not callable(first):
        raise TypeError(f"generate_handler needs a callable callback, not {first!r}")
    if second is None:
        options = Options()
    elif isinstance(second, Options):
        options = second
    elif isinstance(second, Mapping):
        options = Options().replace(**dict(second))
    else:
        raise TypeError(f"options must be an Options, a mapping or None, not {second!r}")
    if overrides:
        options = options.replace(**overrides)
    return first, options


# -- HTTPS -------------------------------------------------------------------

CLIENT_CERTS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
                "required": ssl.CERT_REQUIRED}
"""How strictly client certificates are asked for, by name."""


def tls_context(certfile: str | os.PathLike[str], keyfile: str | os.PathLike[str] | None = None,
                *, ca_certs: str | os.PathLike[str] | None = None,
                client_certs: str = "required") -> ssl.SSLContext:
    """Build the server-side TLS context for the `tls` option.

    Args:
        certfile: The server's certificate chain, PEM (the key may be in it too).
        keyfile: The private key, PEM, if not in `certfile`.
        ca_certs: CA certificates (PEM) that sign client certificates; with
            it, clients are asked for a certificate.
        client_certs: With `ca_certs`: ``"required"`` (no certificate, no
            connection) or ``"optional"`` (a client may send none; one it
            sends must verify); ``"none"`` asks for none.

    Returns:
        The context.

    Raises:
        ValueError: An unknown `client_certs` name.
        OSError: A file cannot be read (`ssl.SSLError` when it is not
            a valid certificate or key, or they do not match).

    Examples:
        >>> tls_context("no/such/cert.pem")
        Traceback (most recent call last):
        ...
        FileNotFoundError: [Errno 2] No such file or directory
    """
    if client_certs not in CLIENT_CERTS:
        raise ValueError(f"client_certs must be one of {', '.join(CLIENT_CERTS)}, "
                         f"not {client_certs!r}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    if ca_certs is not None:
        context.load_verify_locations(cafile=ca_certs)
        context.verify_mode = CLIENT_CERTS[client_certs]
    context.set_alpn_protocols(["http/1.1"])
    return context
