"""Part 3, chapter 7: the echo application on three workers and its graceful stop;
the small site with ranges and a refused escape; the static-file server."""

from sessions import Recording


def record(rec: Recording) -> None:
    plain = rec.start("served", "python -m layer3_http docs/examples/layer3/echo_app.py"
                      " --listen 127.0.0.1:8080", port=8080)
    plain.into(None)
    plain.stop()

    server = rec.start("echo-server", "python -m layer3_http docs/examples/layer3/echo_app.py"
                       " --listen 127.0.0.1:8080 --workers 3 -p /tmp/echo.pid", port=8080)
    for _ in range(3):
        server.wait_for(r"forked worker")
    server.into(None)
    rec.run("echo", "curl -d hello 'http://127.0.0.1:8080/some/path?a=1&a=2'")
    server.into("echo-stop")
    rec.run("echo", "kill -TERM $(cat /tmp/echo.pid)")
    server.wait_exit()
    rec.unordered("echo-stop")

    site = rec.start("site-server", "python -m layer3_http docs/examples/layer3/step07_site.py"
                     " --listen 127.0.0.1:8081", port=8081)
    site.wait_for(r"forked worker")
    site.wait_for(r"forked worker")
    rec.run("site", "curl http://127.0.0.1:8081/")
    site.wait_for(r"GET / 200")
    rec.run("site", "curl -I http://127.0.0.1:8081/layer3/step07_site.py")
    site.wait_for(r"HEAD /layer3/step07_site.py")
    rec.run("site", "curl -r 0-20 http://127.0.0.1:8081/layer3/step07_site.py")
    site.wait_for(r"GET /layer3/step07_site.py 206")
    rec.run("site", "curl -s -o /dev/null -w '%{http_code}\\n' --path-as-is"
            " http://127.0.0.1:8081/../README.md")
    site.wait_for(r"404")
    site.into(None)
    site.stop()
    rec.mask(r'ETag: "[^"]*"', 'ETag: "<mtime and size>"')
    rec.mask(r"worker \d+ has served \d+ requests", "worker <pid> has served <n> requests")

    rec.run(None, "mkdir site")  # what `make docs` builds; its content does not matter here
    static = rec.start("static", "python -m layer3_http --static site --listen 127.0.0.1:8082"
                       " --static-header 'X-Served-By: part 3'", port=8082)
    static.into(None)
    static.stop()
