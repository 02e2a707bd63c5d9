"""Part 3, chapter 6: progress, refusing early, handler errors before and after the
response began, and the request head timeout."""

from sessions import Recording


def record(rec: Recording) -> None:
    server = rec.start("server", "python -m layer3_http docs/examples/layer3/step06_states.py"
                       " --listen 127.0.0.1:8308 --idle-timeout 5 --request-header-timeout 5",
                       port=8308, hide=[r"INFO pool 0"],
                       elide=[r"worker \d+: (  |Traceback|During handling|The above)"])
    rec.run("client", "head -c 30000000 /dev/zero > big.bin")
    rec.run("client", "curl --data-binary @big.bin http://127.0.0.1:8308/progress")
    rec.run("client", "curl -sv --data-binary @big.bin http://127.0.0.1:8308/refuse 2>&1"
            " | grep -E '^[<>] (HTTP|Expect|Connection)|^not'")
    rec.run("client", "curl -i http://127.0.0.1:8308/fail")
    server.wait_for(r"RuntimeError")
    rec.run("client", "curl -sS 'http://127.0.0.1:8308/fail?when=after' -o /dev/null",
            status=(18, 56))
    rec.mask(r"curl: \((?:18|56)\) .*", "curl: (18 or 56) <the connection was reset>")
    server.wait_for(r"connection reset")
    # curl's telnet:// does not half-close when its input ends: the head stays incomplete.
    rec.run("client", "time (printf 'GET / HTTP/1.1\\r\\nHost: x\\r\\n' | curl -sS"
            " telnet://127.0.0.1:8308)")
    server.into(None)
    server.stop()
