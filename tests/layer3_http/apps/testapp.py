"""The application the end-to-end tests talk to: one route per behaviour.

Served with ``python -m layer3_http tests/layer3_http/apps/testapp.py
--listen 127.0.0.1:0``; the callback is ``app``. Each route does one thing a
test checks from the outside (see the docstring of each function). Query
parameters tune it (``/big?size=1000000``).
"""

from __future__ import annotations

import json
import os
import select
from collections.abc import Callable

from layer3_http import PostMetadata, Request


def memory() -> dict[str, int]:
    """This process's peak and current resident size, in bytes (from /proc)."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmHWM", "VmRSS"):
                values[name] = int(rest.split()[0]) * 1024
    return values


def reply(request: Request, value: object, status: str = "200 OK") -> None:
    request.send_status(status)
    request.send_header("Content-Type", "application/json")
    request.send_data(json.dumps(value), "\n")


def number(request: Request, name: str, default: int) -> int:
    return int(request.get_params.get(name, default))


def echo(request: Request) -> None:
    """The request as JSON, body included (read whole)."""
    body = request.body
    reply(request, {"method": request.method, "path": request.path, "query": request.query,
                    "version": list(request.head.version),
                    "headers": [list(pair) for pair in request.head.headers],
                    "cookies": request.cookies, "body": body.decode("latin-1"),
                    "pid": os.getpid()})


def hello(request: Request) -> None:
    """A short fixed text, the body left alone."""
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain")
    request.send_data("hello\n")


def pid(request: Request) -> None:
    """The worker's PID."""
    reply(request, {"pid": os.getpid()})


def big(request: Request) -> None:
    """``size`` bytes of a repeating pattern, sent without reading the request body."""
    size = number(request, "size", 1 << 20)
    block = bytes(range(256)) * 256
    request.send_status("200 OK")
    request.send_header("Content-Type", "application/octet-stream")
    if request.get_params.get("length") == "1":
        request.send_header("Content-Length", size)
    while size > 0:
        request.send_data(block[:size])
        size -= len(block)


def chunks(request: Request) -> None:
    """``count`` flushed pieces of ``size`` bytes: a chunked (or 1.0: close-delimited) body."""
    request.send_status("200 OK")
    for index in range(number(request, "count", 5)):
        request.send_data(str(index % 10).encode() * number(request, "size", 10))
        request.flush()


def fail(request: Request) -> None:
    """Raise before any status."""
    raise RuntimeError("this handler fails on purpose")


def fail_late(request: Request) -> None:
    """Send part of a response, then raise."""
    request.send_status("200 OK")
    request.send_data("partial")
    request.flush()
    raise RuntimeError("this handler fails after its response began")


def fail_finished(request: Request) -> None:
    """Complete the response, then raise."""
    hello(request)
    request.finish()
    raise RuntimeError("this handler fails after its response was complete")


def hang(request: Request) -> None:
    """Block for ever (until the response_timeout watchdog kills the worker)."""
    select.select([], [], [])


def no_status(request: Request) -> None:
    """Return without answering."""


def form(request: Request) -> None:
    """The parsed form fields and multipart metadata."""
    metadata = {name: [[m.file_name, m.content_type] for m in items]
                for name, items in request.post_metadata_list.items()}
    reply(request, {"params": dict(request.post_params_list.items()), "metadata": metadata,
                    "pid": os.getpid()})


def upload(request: Request) -> None:
    """Stream the field ``file`` to ``dir``/upload.bin; report sizes and peak memory."""
    before = memory()
    target = os.path.join(request.get_params["dir"], "upload.bin")
    calls: list[str] = []
    state: dict[str, object] = {"bytes": 0}
    out = open(target, "wb")  # noqa: SIM115 - closed by the end call

    def receive(chunk: bytes | None = None, metadata: PostMetadata | None = None) -> None:
        if chunk is None:
            calls.append("end")
            out.close()
            return
        if metadata is not None:
            calls.append("first")
            state["file_name"] = metadata.file_name
        elif calls[-1:] != ["more"]:
            calls.append("more")
        out.write(chunk)
        state["bytes"] = int(str(state["bytes"])) + len(chunk)

    request.stream_post_param("file", receive)
    fields = dict(request.post_params)
    after = memory()
    reply(request, {**state, "calls": calls, "fields": fields, "before": before, "after": after,
                    "pid": os.getpid()})


def stream_body(request: Request) -> None:
    """Stream the raw body; report its size and the largest piece."""
    sizes: list[int] = []
    request.stream_request_body(lambda piece: sizes.append(len(piece)))
    reply(request, {"bytes": sum(sizes), "pieces": len(sizes), "largest": max(sizes, default=0),
                    "smallest": min(sizes, default=0)})


def ignore_body(request: Request) -> None:
    """Answer without touching the body."""
    hello(request)


def inject(request: Request) -> None:
    """Try a header value with CR/LF; report the refusal (or let it raise with ?raise=1)."""
    value = request.get_params.get("value", "a\r\nX-Injected: yes")
    request.send_status("200 OK")
    try:
        request.send_header("X-Test", value)
    except ValueError as error:
        if request.get_params.get("raise") == "1":
            raise
        request.send_data("refused: ", type(error).__name__)
        return
    request.send_data("accepted")


def monologue(request: Request) -> None:
    """Answer at once, the body ignored; the connection closes after."""
    request.monologue()
    hello(request)


def defer_echo(request: Request) -> None:
    """Answer first, then stream the body back as it arrives (chunked)."""
    request.defer_reading()
    request.send_status("200 OK")
    request.finish_headers()

    def back(piece: bytes) -> None:
        request.send_data(piece)
        request.flush()

    request.stream_request_body(back)


def close(request: Request) -> None:
    """Ask for the connection to close after the response."""
    request.close_after_finish()
    hello(request)


def length_mismatch(request: Request) -> None:
    """Declare 10 bytes, send 5."""
    request.send_status("200 OK")
    request.send_header("Content-Length", 10)
    request.send_data("short")


def status(request: Request) -> None:
    """Answer with ``code`` (and ``data`` as body when given)."""
    request.send_status(int(request.get_params.get("code", "200")))
    if "data" in request.get_params:
        request.send_data(request.get_params["data"])


def retire(request: Request) -> bool:
    """Answer, then retire the worker (the callback returns False)."""
    pid(request)
    return False


def informational(request: Request) -> None:
    """A 103 Early Hints response, then the final one."""
    request.send_status("103 Early Hints")
    request.send_header("Link", "</style.css>; rel=preload")
    request.finish_headers()
    hello(request)


def header_tables(request: Request) -> None:
    """The five header tables' views of the field ``name``."""
    name = request.get_params["name"]
    flags = request.headers_flags[name]
    reply(request, {"headers": request.headers[name],
                    "csv_table": request.headers_csv_table[name],
                    "csv_string": request.headers_csv_string[name],
                    "value": request.headers_value[name],
                    "flags": sorted(item for item in flags if flags[item])})


def memory_route(request: Request) -> None:
    """The worker's memory figures."""
    reply(request, {**memory(), "pid": os.getpid()})


ROUTES: dict[str, Callable[[Request], object]] = {
    "echo": echo, "hello": hello, "pid": pid, "big": big, "chunks": chunks, "fail": fail,
    "fail-late": fail_late, "fail-finished": fail_finished, "hang": hang,
    "no-status": no_status, "form": form, "upload": upload,
    "stream-body": stream_body, "ignore-body": ignore_body, "inject": inject,
    "monologue": monologue, "defer-echo": defer_echo, "close": close,
    "length-mismatch": length_mismatch, "status": status, "retire": retire,
    "informational": informational, "memory": memory_route, "headers": header_tables,
}


def app(request: Request) -> object:
    """Dispatch on the path; 404 for anything else."""
    route = ROUTES.get(request.path or "")
    if route is None:
        request.send_status("404 Not Found")
        request.send_data("no such route\n")
        return None
    return route(request)
