"""Options, `generate_handler`'s arguments and the form sink, without sockets."""

from __future__ import annotations

import re

import pytest

from layer3_http import ClientError, Handler, Options, PostMetadata, generate_handler
from layer3_http._forms import FormSink
from layer3_http._options import normalize_static_headers, resolve_arguments


def app(request: object) -> None:
    """A callback that is never called here."""


def test_defaults() -> None:
    options = Options()
    assert options.request_header_size_limit == 1024 * 1024
    assert options.request_body_size_limit == 64 * 1024 * 1024
    assert (options.maximum_input_chunk_size, options.minimum_output_chunk_size) == (16384, 1024)
    assert (options.idle_timeout, options.request_header_timeout, options.stall_timeout,
            options.response_timeout, options.drain_timeout) == (65, 30, 30, 3600, 2)
    assert options.static_headers == () and options.static_fields == b""


def test_chunk_size_is_the_default_of_both_chunk_sizes() -> None:
    options = Options(chunk_size=100, minimum_output_chunk_size=7)
    assert (options.maximum_input_chunk_size, options.minimum_output_chunk_size) == (100, 7)
    assert options.replace(chunk_size=50).maximum_input_chunk_size == 50


@pytest.mark.parametrize(("option", "value"), [
    ("request_header_size_limit", 10), ("request_body_size_limit", -1),
    ("chunk_size", 0), ("maximum_input_chunk_size", 0), ("minimum_output_chunk_size", 1.5),
    ("idle_timeout", 0), ("stall_timeout", -1), ("drain_timeout", float("nan")),
    ("response_timeout", float("inf")), ("request_header_timeout", "30"),
    ("drain_size_limit", True),
])
def test_wrong_values_name_the_option(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        Options().replace(**{option: value})


@pytest.mark.parametrize("timeout", ["idle_timeout", "request_header_timeout", "stall_timeout",
                                     "response_timeout", "drain_timeout"])
def test_none_disables_a_timeout(timeout: str) -> None:
    assert getattr(Options().replace(**{timeout: None}), timeout) is None


@pytest.mark.parametrize("given", [
    "Server: demo\r\nX-Frame-Options: DENY",
    "Server: demo\nX-Frame-Options: DENY\n",
    ["Server: demo", ("X-Frame-Options", "DENY")],
    {"Server": "demo", "X-Frame-Options": "DENY"},
])
def test_static_headers_in_every_form(given: object) -> None:
    options = Options(static_headers=given)
    assert options.static_headers == (("Server", "demo"), ("X-Frame-Options", "DENY"))
    assert options.static_fields == b"Server: demo\r\nX-Frame-Options: DENY\r\n"


@pytest.mark.parametrize(("given", "error"), [
    ("no colon here", ValueError), ("Bad Name: x", ValueError),
    ({"X-A": "b\r\nX-B: c"}, ValueError), ({"Content-Length": "1"}, ValueError),
    ({"Date": "x"}, ValueError), ([("X-A", "b", "c")], TypeError), (42, TypeError),
])
def test_bad_static_headers(given: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        normalize_static_headers(given)  # type: ignore[arg-type]


def test_unknown_option_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown HTTP option"):
        generate_handler(app, no_such_option=1)


def test_generate_handler_argument_forms() -> None:
    assert generate_handler(app).options == Options()
    assert generate_handler(app, Options(idle_timeout=5)).options.idle_timeout == 5
    assert generate_handler({"idle_timeout": 6}, app).options.idle_timeout == 6
    handler = generate_handler(Options(idle_timeout=5), app, idle_timeout=7, chunk_size=9)
    assert isinstance(handler, Handler) and handler.callback is app
    assert handler.options.idle_timeout == 7 and handler.options.maximum_input_chunk_size == 9


def test_generate_handler_needs_a_callback() -> None:
    with pytest.raises(TypeError, match="callable"):
        generate_handler({"idle_timeout": 5})
    with pytest.raises(TypeError, match="options must be"):
        resolve_arguments(app, 42, {})


def test_handler_ignores_timer_events() -> None:
    assert generate_handler(app)(object()) is True


# -- the form sink -------------------------------------------------------------------


def test_urlencoded_fields_with_a_stream_handler_go_to_it() -> None:
    calls: list[tuple[object, ...]] = []
    sink = FormSink("application/x-www-form-urlencoded; charset=utf-8",
                    {"secret": lambda *args: calls.append(args)})
    for piece in (b"a=1&sec", b"ret=%E2%82%AC&b=2"):
        sink.feed(piece)
    sink.end()
    assert sink.params == [("a", "1"), ("b", "2")]
    assert calls == [("€".encode(), PostMetadata("secret")), ()]


def test_multipart_routing_exact_names_before_patterns() -> None:
    seen: dict[str, list[tuple[object, ...]]] = {"exact": [], "pattern": []}
    sink = FormSink("multipart/form-data; boundary=B",
                    {"file_1": lambda *args: seen["exact"].append(args)},
                    [(re.compile(r"^file_\d+$"), lambda *args: seen["pattern"].append(args))],
                    piece_size=3)
    body = (b"--B\r\nContent-Disposition: form-data; name=file_1; filename=a\r\n\r\nabcdef\r\n"
            b"--B\r\nContent-Disposition: form-data; name=file_2\r\n\r\n\r\n"
            b"--B\r\nContent-Disposition: form-data; name=other\r\n\r\nkept\r\n--B--")
    for index in range(0, len(body), 5):
        sink.feed(body[index:index + 5])
    sink.end()
    exact = seen["exact"]
    first = exact[0][1]
    assert isinstance(first, PostMetadata)
    assert (first.field_name, first.file_name) == ("file_1", "a")
    assert b"".join(args[0] for args in exact[:-1]) == b"abcdef"  # type: ignore[misc]
    assert all(len(args) == 1 for args in exact[1:-1]) and exact[-1] == ()
    assert seen["pattern"][0][0] == b"" and seen["pattern"][-1] == ()  # the empty part
    assert sink.params == [("other", "kept")]
    assert [name for name, _ in sink.metadata] == ["other"]


def test_multipart_errors_show_when_the_body_is_read() -> None:
    sink = FormSink("multipart/form-data")  # no boundary: not an error yet
    with pytest.raises(ClientError) as caught:
        sink.feed(b"--x\r\n")
    assert caught.value.status == 400
    unfinished = FormSink("multipart/form-data; boundary=B")
    unfinished.feed(b"--B\r\nContent-Disposition: form-data; name=a\r\n\r\nx")
    with pytest.raises(ClientError):
        unfinished.end()


@pytest.mark.parametrize("content_type", [None, False, "text/plain", "application/json", "x"])
def test_other_content_types_keep_nothing(content_type: object) -> None:
    sink = FormSink(content_type)  # type: ignore[arg-type]
    assert not sink.wanted
    sink.feed(b"a=1")
    sink.end()
    assert sink.params == [] and sink.metadata == []
