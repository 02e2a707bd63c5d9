"""Part 3, chapter 2: header fields, then the header tables of layer 3."""

from sessions import CLIENT, Recording


def record(rec: Recording) -> None:
    server = rec.start("fields-server", "python docs/examples/layer3/step02_fields.py 8302",
                       port=8302)
    rec.run("fields", "curl -H 'Accept: text/plain' -H 'Accept: */*' http://127.0.0.1:8302/")
    rec.run("fields", f"printf 'GET / HTTP/1.1\\r\\nHost : x\\r\\n\\r\\n' | {CLIENT} 8302")
    server.wait_for("refused: 400")
    server.stop()

    tables = rec.start("tables-server", "python -m layer3_http"
                       " docs/examples/layer3/step02_tables.py --listen 127.0.0.1:8303",
                       port=8303)
    tables.into(None)
    rec.run("tables", "curl -H 'Accept: text/html, */*;q=0.1' -H 'Accept: image/png'"
            " 'http://127.0.0.1:8303/?name=accept'")
    rec.run("tables", "printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\nX-A: 1\\r\\n  folded\\r\\n\\r\\n'"
            f" | {CLIENT} 8303")
    tables.stop()
