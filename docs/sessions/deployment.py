"""Deployment: WSGI and Flask applications, HTTPS, the access log, a Unix socket,
worker recycling. Production paths (/etc/ssl, /var/log, /run) are replaced by files in
the scratch folder; the page says which."""

import re

from sessions import Recording

TLS_PAIR = ("openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout key.pem -out cert.pem"
            " -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null")


def record(rec: Recording) -> None:
    wsgi = rec.start("wsgi", "python -m layer3_http --wsgi wsgi_app:app --listen 127.0.0.1:8000"
                     " --workers 4", port=8000, cd="docs/examples/deploy", hide=[r" INFO "])
    rec.run("wsgi", "curl http://127.0.0.1:8000/")
    rec.run("wsgi", "seq 1000 | curl --data-binary @- http://127.0.0.1:8000/count")
    wsgi.into(None)
    wsgi.stop()

    flask = rec.start("flask", "python -m layer3_http --wsgi docs/examples/deploy/flask_app.py:app"
                      " --listen 127.0.0.1:8000 --workers 4 --request-body-size-limit 1000000000",
                      port=8000)
    flask.into(None)
    rec.run(None, "head -c 100000000 /dev/zero > big.iso")
    rec.run("flask", "curl --data-binary @big.iso http://127.0.0.1:8000/upload")
    flask.stop()

    rec.run(None, TLS_PAIR)  # the self-signed pair of part 1, chapter 5
    https = rec.start("https", "python -m layer3_http --wsgi docs/examples/deploy/wsgi_app.py:app"
                      " --listen 127.0.0.1:8443 --certfile cert.pem --keyfile key.pem", port=8443)
    https.into(None)
    rec.run("https", "curl --cacert cert.pem https://localhost:8443/")
    https.stop()

    logs = rec.start("logs", "python -m layer3_http --wsgi docs/examples/deploy/wsgi_app.py:app"
                     " --listen 127.0.0.1:8000 --workers 4 --access-log - --access-log-format"
                     " combined --error-log - --log-level warning", port=8000)
    rec.run("logs-client", "curl -u alice:secret http://127.0.0.1:8000/items/3")
    logs.wait_for(r'"GET /items/3 HTTP/1.1"')
    logs.into(None)
    logs.stop()

    unix = rec.start("unix", "python -m layer3_http --wsgi docs/examples/deploy/wsgi_app.py:app"
                     " --workers 8 --listen unix:/tmp/app.sock", ready=r"listening on unix:")
    unix.into(None)
    rec.run("unix", "curl --unix-socket /tmp/app.sock http://localhost/")
    unix.stop()

    recycle = rec.start("recycle", "python -m layer3_http --wsgi"
                        " docs/examples/deploy/wsgi_app.py:app"
                        " --listen 127.0.0.1:8000 --max-requests 10000 --max-requests-jitter 1000",
                        port=8000)
    recycle.into(None)
    recycle.stop()

    rec.run(None, "cp docs/examples/deploy/reload_app.py app.py")
    rec.run("reload-client", "echo 'NUMBER = 1' > version.py")
    shown = (r"INFO reload|generation \d+ starts|WARNING|ERROR")
    reload = rec.start("reload", "python -m layer3_http app.py --workers 2 --stats"
                       " --listen 127.0.0.1:8000 --pidfile server.pid", port=8000,
                       elide=[r"WARNING pool 0 worker \d+:  "])
    reload.hide = [re.compile(rf"^(?!.*(?:{shown})).*INFO")]
    rec.pids_after(r"worker ")
    reload.into(None)
    reload.wait_for(r"stats total=2 idle=2 ")
    rec.run("reload-client", "curl http://127.0.0.1:8000/")
    rec.run("reload-client", "echo 'NUMBER = 2  # the new code' > version.py")
    reload.into("reload")
    rec.run("reload-client", "kill -USR2 $(cat server.pid)")
    reload.wait_for(r"reload 1 done")
    rec.run("reload-client", "curl http://127.0.0.1:8000/")
    rec.run("reload-client", "echo 'NUMBER = (' > version.py")
    rec.run("reload-client", "kill -USR2 $(cat server.pid)")
    reload.wait_for(r"reload 2 abandoned")
    rec.run("reload-client", "curl http://127.0.0.1:8000/")
    rec.mask(r"replaced in \d+\.\d\d s", "replaced in <n> s")
    reload.into(None)
    reload.stop()
