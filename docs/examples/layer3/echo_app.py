"""An HTTP application that answers every request with what it received, as JSON.

Serve it with the layer 3 command line (port 0: the kernel picks a port,
and the server prints ``listening on port N``)::

    python -m layer3_http docs/examples/layer3/echo_app.py --listen 127.0.0.1:0

then ask it something: ``curl -d 'hello' 'http://127.0.0.1:N/some/path?a=1&a=2'``.
Run directly (``python docs/examples/layer3/echo_app.py``), the script
declares its own pool with layer 2 and serves it the same way.
"""

from __future__ import annotations

import json

from layer3_http import Request


# --8<-- [start:app]
def app(request: Request) -> None:
    """Answer with the method, path, query, headers and body of the request."""
    body = request.body  # reads the whole body (bounded by request_body_size_limit)
    answer = {
        "method": request.method,
        "path": request.path,
        "query": request.query,
        "get_params": {name: request.get_params_list[name] for name in request.get_params_list},
        "headers": {name: request.headers[name] for name in request.headers},
        "body": body.decode("utf-8", errors="replace"),
        "body_length": len(body),
    }
    request.send_status("200 OK")
    request.send_header("Content-Type", "application/json")
    request.send_data(json.dumps(answer, indent=2), "\n")
# --8<-- [end:app]


# --8<-- [start:main]
if __name__ == "__main__":
    from layer2_prefork import TCP, listen, run
    from layer3_http import generate_handler

    pool = listen(TCP("127.0.0.1", 0), connect=generate_handler(app))
    print(f"listening on port {pool.port}", flush=True)
    raise SystemExit(run())
# --8<-- [end:main]
