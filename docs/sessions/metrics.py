"""Metrics: the command line with --metrics, a few requests, then the endpoint with curl."""

import socket

from sessions import Recording


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def record(rec: Recording) -> None:
    rec.names.ports[free_port()] = 9100  # the page's 9100 is a free port in the run
    server = rec.start("server", "python -m layer3_http docs/examples/deploy/metrics_app.py"
                       " --listen 127.0.0.1:8000 --workers 2 --metrics 127.0.0.1:9100"
                       " --access-log -", port=8000, ready=r"metrics on ", in_root=True)
    server.into(None)
    for _ in range(2):  # both workers of pool 0, one fork_delay apart
        server.wait_for(r"pool 0: forked worker")
    rec.run("client", "curl -s http://127.0.0.1:8000/ok?size=5; echo")
    server.wait_for(r'"GET /ok\?size=5 HTTP/1.1" 200')
    rec.run("client", "curl -s http://127.0.0.1:8000/metrics")
    server.wait_for(r'"GET /metrics HTTP/1.1" 404')
    rec.run("scrape", "curl -s http://127.0.0.1:9100/metrics | head -5")
    rec.run("scrape", "curl -s http://127.0.0.1:9100/metrics"
            " | grep -E '^moonbridge_http_(requests_total|request_duration_seconds_count)'")
    rec.run("scrape", "curl -sI http://127.0.0.1:9100/metrics | grep -i '^content-type'")
    server.stop()
