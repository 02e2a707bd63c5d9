"""Step 2b: the five header tables of layer 3, shown for every header field sent.

An HTTP application for the layer 3 command line. For each field name the
client sent, it answers with what each of the request's header tables
gives for that name. ``GET /?name=Accept`` asks about one name only,
sent or not, so you can see what each table returns for a field that is
absent.

Serve it with
``python -m layer3_http docs/examples/layer3/step02_tables.py --listen 127.0.0.1:0``
and try ``curl -H 'Accept: text/html, */*;q=0.1' -H 'Accept: image/png' http://127.0.0.1:PORT/``.
"""

from __future__ import annotations

from layer3_http import Request


# --8<-- [start:app]
def describe(request: Request, name: str) -> str:
    return (
        f"{name}\n"
        f"  headers[name]            = {request.headers[name]!r}\n"
        f"  headers_value[name]      = {request.headers_value[name]!r}\n"
        f"  headers_csv_table[name]  = {request.headers_csv_table[name]!r}\n"
        f"  headers_csv_string[name] = {request.headers_csv_string[name]!r}\n"
        f"  headers_flags[name]      = {sorted(request.headers_flags[name])!r}\n"
    )


def app(request: Request) -> None:
    asked = request.get_params.get("name")
    names = [asked] if asked is not None else list(request.headers)  # lower-cased names
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain; charset=utf-8")
    request.send_data(*(describe(request, name) for name in names))
# --8<-- [end:app]
