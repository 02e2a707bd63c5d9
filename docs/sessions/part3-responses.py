"""Part 3, chapter 4: Content-Length or chunked, HEAD, keep-alive and its end, HTTP/1.0."""

from sessions import Recording


def record(rec: Recording) -> None:
    server = rec.start("server", "python -m layer3_http docs/examples/layer3/step04_responses.py"
                       " --listen 127.0.0.1:8306", port=8306)
    server.into(None)
    rec.run("client", "curl -i http://127.0.0.1:8306/hello")
    rec.run("client", "curl -i --raw 'http://127.0.0.1:8306/ticks?n=3'")
    rec.run("client", "curl -I 'http://127.0.0.1:8306/count?n=1000'")
    rec.run("keep-alive", "curl -sv http://127.0.0.1:8306/hello http://127.0.0.1:8306/last 2>&1"
            " | grep -E '^\\* (Re-using|Connection|Closing)|^[<>] (GET|HTTP|Connection)|^[a-z]'")
    rec.run("keep-alive", "curl -si -0 'http://127.0.0.1:8306/count?n=1000' | head -5")
    server.stop()
