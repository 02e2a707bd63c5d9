"""The metrics endpoint (``--metrics``, `serve_metrics`): real server, real load, exact counts.

The server is ``python -m layer3_http docs/examples/deploy/metrics_app.py``
with ``--metrics 127.0.0.1:0``; clients are raw sockets, so the test
knows every byte it sent and received. Each worker counts a request just
before it writes the request's access log line, so once the test has read
N access log lines the counters hold N requests: that is the only wait
before an exact comparison (no sleeps). Every scrape is parsed strictly
(`parse`): each line a ``# HELP``, a ``# TYPE`` or a sample of a declared
family, histogram buckets cumulative, ``+Inf`` equal to ``_count``.
"""

from __future__ import annotations

import math
import os
import re
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from http_support import RawClient, request_bytes
from support import ROOT, Program, running

pytestmark = pytest.mark.timeout(120)

APP = ROOT / "docs" / "examples" / "deploy" / "metrics_app.py"
ACCESS_LINE = re.compile(rb'"(?:GET|POST) /\S* HTTP/1\.1" \d{3} ')
METRICS_LINE = re.compile(rb"metrics on port (\d+)")
EXIT = re.compile(rb"pool 0: worker (\d+) (?:exited with status (\d+)|was killed by signal (\d+))")
NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
SAMPLE = re.compile(
    rf'^({NAME})(?:\{{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\}})? '
    r"([-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|Inf|NaN))$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')
KINDS = ("counter", "gauge", "histogram", "summary", "untyped")


# -- a strict parser of the text format, version 0.0.4 -------------------------------------


@dataclass
class Scrape:
    """One parsed exposition: family name -> kind, and every sample."""

    kinds: dict[str, str] = field(default_factory=dict)
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, frozenset(labels.items()))]

    def total(self, name: str, **labels: str) -> float:
        """The sum of a metric's samples whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(value for (sample, keys), value in self.samples.items()
                   if sample == name and wanted <= keys)


def family_of(name: str, kinds: dict[str, str]) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        base = name.removesuffix(suffix)
        if base != name and kinds.get(base) == "histogram":
            return base
    return name


def parse(text: str) -> Scrape:
    """Parse strictly; any line that is not HELP, TYPE or a sample of a typed family fails."""
    assert text.endswith("\n"), "the exposition ends with a newline"
    scrape = Scrape()
    helped: set[str] = set()
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert re.fullmatch(NAME, name) and name not in helped, line
            helped.add(name)
        elif line.startswith("# TYPE "):
            parts = line.split(" ")
            assert len(parts) == 4 and parts[3] in KINDS, line
            assert parts[2] in helped and parts[2] not in scrape.kinds, line
            scrape.kinds[parts[2]] = parts[3]
        else:
            match = SAMPLE.match(line)
            assert match, f"not a sample: {line!r}"
            name, labels, value = match.groups()
            assert family_of(name, scrape.kinds) in scrape.kinds, f"no TYPE before {line!r}"
            keys = frozenset(LABEL.findall(labels or ""))
            assert (name, keys) not in scrape.samples, f"twice: {line!r}"
            scrape.samples[(name, keys)] = float(value.replace("Inf", "inf"))
    for name, kind in scrape.kinds.items():
        if kind == "histogram":
            check_histogram(scrape, name)
        if kind == "counter":
            assert name.endswith("_total"), name
    return scrape


def check_histogram(scrape: Scrape, name: str) -> None:
    buckets = sorted((float(dict(keys)["le"].replace("Inf", "inf")), value)
                     for (sample, keys), value in scrape.samples.items()
                     if sample == name + "_bucket")
    assert buckets and math.isinf(buckets[-1][0]), "a +Inf bucket"
    counts = [count for _, count in buckets]
    assert counts == sorted(counts), f"{name}: buckets are cumulative"
    assert counts[-1] == scrape.value(name + "_count"), f"{name}: +Inf equals _count"
    assert scrape.value(name + "_sum") >= 0


def test_the_parser_refuses_what_is_not_the_format() -> None:
    good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 3\n"
    assert parse(good).value("a_total", x="1") == 3
    for bad in ("a_total 3\n", good + "junk\n", good.replace("counter", "thing"),
                good.rstrip("\n"), good + 'a_total{x="1"} 4\n'):
        with pytest.raises(AssertionError):
            parse(bad)
    histogram = ("# HELP h H.\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
                 "h_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n")
    with pytest.raises(AssertionError, match="cumulative"):
        parse(histogram)


# -- the server -----------------------------------------------------------------------------


@dataclass
class MetricsServer:
    program: Program
    port: int
    metrics_port: int

    def client(self) -> RawClient:
        return RawClient(socket.create_connection(("127.0.0.1", self.port), timeout=20))

    def metrics_get(self, target: str = "/metrics", method: str = "GET") -> tuple[int, str, str]:
        """One request to the metrics listener: status, Content-Type, body."""
        with RawClient(socket.create_connection(("127.0.0.1", self.metrics_port),
                                                timeout=20)) as client:
            client.send(request_bytes(method, target, headers=(
                ("Host", "metrics"), ("Connection", "close"))))
            response = client.read_response(head_request=method == "HEAD")
            return response.status, response.header("Content-Type") or "", \
                response.body.decode()

    def scrape(self) -> Scrape:
        status, kind, body = self.metrics_get()
        assert status == 200 and kind == "text/plain; version=0.0.4; charset=utf-8"
        return parse(body)


def forked(server: MetricsServer, count: int) -> None:
    """Wait until pool 0 forked `count` workers (one per `fork_delay`)."""
    index = -1
    for _ in range(count):
        server.program.wait_for_line(rb"pool 0: forked worker", 20, index + 1)
        index = next(number for number in range(index + 1, len(server.program.lines))
                     if b"pool 0: forked worker" in server.program.lines[number])


@contextmanager
def metrics_server(*args: str) -> Iterator[MetricsServer]:
    argv = [sys.executable, "-m", "layer3_http", str(APP), "--listen", "127.0.0.1:0",
            "--metrics", "127.0.0.1:0", *args]
    with running(argv) as program:
        port = program.wait_for_port()
        metrics_port = int(program.wait_for_line(METRICS_LINE).group(1))
        yield MetricsServer(program, port, metrics_port)


# -- a bounded load with known answers ------------------------------------------------------

OK_SIZE = 1000
POST_BODY = b"p" * 500


@dataclass
class Tally:
    """What the clients sent and got, to compare with the counters."""

    classes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(
        ("1xx", "2xx", "3xx", "4xx", "5xx"), 0))
    received: int = 0
    """Bytes of request heads and bodies the server got."""
    sent: int = 0
    """Bytes of response bodies the server sent."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, status: int, head: bytes, body: bytes, response_body: bytes) -> None:
        with self.lock:
            self.classes[f"{status // 100}xx"] += 1
            self.received += len(head) + len(body)
            self.sent += len(response_body)


def one_client(server: MetricsServer, tally: Tally, rounds: int) -> None:
    """`rounds` times: 3 GET /ok, 1 POST /ok with a body, 1 GET /missing (404),
    and every other round a GET /crash (500, which closes the connection)."""
    client = server.client()
    try:
        for number in range(rounds):
            plan = [("GET", f"/ok?size={OK_SIZE}", b"")] * 3 + [
                ("POST", f"/ok?size={OK_SIZE}", POST_BODY), ("GET", "/missing", b"")]
            if number % 2:
                plan.append(("GET", "/crash", b""))
            for method, target, body in plan:
                headers = [("Host", "load")]
                if body:
                    headers.append(("Content-Length", str(len(body))))
                data = request_bytes(method, target, headers=headers)
                client.send(data, body)
                response = client.read_response()
                tally.add(response.status, data, body, response.body)
                if response.status == 500:
                    assert response.header("Connection") == "close"
                    client.sock.close()
                    client = server.client()
    finally:
        client.sock.close()


def test_counts_during_and_after_a_bounded_load() -> None:
    clients, rounds = 4, 8  # 4 x 8 x 5 = 160 requests and 16 crashes: 176 in all
    expected = clients * rounds * 5 + clients * (rounds // 2)
    with metrics_server("--workers", "2", "--access-log", "-") as server:
        forked(server, 2)
        before = server.scrape()
        assert before.total("moonbridge_http_requests_total") == 0
        tally = Tally()
        threads = [threading.Thread(target=one_client, args=(server, tally, rounds))
                   for _ in range(clients)]
        for thread in threads:
            thread.start()
        during: list[Scrape] = []
        while any(thread.is_alive() for thread in threads) and len(during) < 50:
            during.append(server.scrape())  # strict parse of every scrape under load
        for thread in threads:
            thread.join(60)
            assert not thread.is_alive()
        assert sum(tally.classes.values()) == expected

        while sum(1 for line in server.program.lines if ACCESS_LINE.search(line)) < expected:
            server.program.wait_for_line(ACCESS_LINE, 30, len(server.program.lines))
        after = server.scrape()

        for name, count in tally.classes.items():
            assert after.value("moonbridge_http_requests_total", code=name) == count, name
        assert tally.classes["2xx"] == clients * rounds * 4
        assert tally.classes["4xx"] == clients * rounds
        assert tally.classes["5xx"] == clients * (rounds // 2)
        duration = "moonbridge_http_request_duration_seconds"
        assert after.value(duration + "_count") == expected
        assert after.value(duration + "_bucket", le="+Inf") == expected
        assert after.value("moonbridge_http_received_bytes_total") == tally.received
        assert after.value("moonbridge_http_sent_bytes_total") == tally.sent
        assert after.total("moonbridge_workers", pool="0") == 2
        assert after.value("moonbridge_workers", pool="1", state="busy") == 1  # it answers

        counters = [name for name, kind in after.kinds.items() if kind == "counter"]
        for earlier, later in zip([before, *during], [*during, after], strict=True):
            for name in counters:  # counters never go back, under load or after it
                for (sample, keys), value in earlier.samples.items():
                    if sample == name:
                        assert later.samples[(sample, keys)] >= value, (sample, keys)
        for scrape in during:
            assert scrape.value(duration + "_count") <= expected


def pid_of_worker(server: MetricsServer) -> int:
    with server.client() as client:
        client.send(request_bytes("GET", "/pid", headers=(("Host", "t"), ("Connection", "close"))))
        return int(client.read_response().body)


def test_worker_exits_by_cause_survive_the_workers() -> None:
    with metrics_server("--workers", "1", "--max-requests", "5", "--access-log", "-") as server:
        for _ in range(5):  # the fifth is the worker's last (max_requests)
            with server.client() as client:
                client.send(request_bytes("GET", "/ok?size=10", headers=(("Host", "t"),)))
                assert client.read_response().status == 200
        server.program.wait_for_line(EXIT)
        start = len(server.program.lines)
        pid = pid_of_worker(server)
        server.program.wait_for_line(rb'"GET /pid HTTP/1.1" 200', 20, start)  # counted by now
        os.kill(pid, signal.SIGKILL)
        server.program.wait_for_line(rb"pool 0: worker %d was killed by signal 9" % pid, 20,
                                     start)
        scrape = server.scrape()
        exits = {dict(keys)["cause"]: value for (name, keys), value in scrape.samples.items()
                 if name == "moonbridge_worker_exits_total" and dict(keys)["pool"] == "0"}
        assert {cause: count for cause, count in exits.items() if count} == {
            "max_requests": 1, "signal": 1}
        # both workers are gone; what they counted is not
        assert scrape.value("moonbridge_http_requests_total", code="2xx") == 6
        assert scrape.value("moonbridge_http_sent_bytes_total") == 5 * 10 + len(f"{pid}\n")


def test_the_endpoint_answers_while_every_worker_is_busy(tmp_path: Path) -> None:
    gate_path = str(tmp_path / "gate.sock")
    with metrics_server("--workers", "2") as server, \
            socket.socket(socket.AF_UNIX) as gate:
        forked(server, 2)
        gate.bind(gate_path)
        gate.listen(4)
        gate.settimeout(20)
        clients = [server.client() for _ in range(2)]
        for client in clients:
            client.send(request_bytes("GET", f"/block?path={gate_path}", headers=(
                ("Host", "t"),)))
        held = [gate.accept()[0] for _ in clients]  # both workers are in the handler
        try:
            scrape = server.scrape()
            assert scrape.value("moonbridge_workers", pool="0", state="busy") == 2
            assert scrape.value("moonbridge_workers", pool="0", state="idle") == 0
        finally:
            for conn in held:
                conn.sendall(b"!")
                conn.close()
        for client in clients:
            with client:
                assert client.read_response().body == b"released\n"


def test_the_public_listener_does_not_serve_metrics() -> None:
    with metrics_server("--workers", "2") as server:
        with server.client() as client:
            client.send(request_bytes("GET", "/metrics", headers=(("Host", "t"),)))
            response = client.read_response()
        assert response.status == 404 and b"moonbridge_" not in response.body
        assert server.metrics_get("/other")[0] == 404
        assert server.metrics_get("/metrics", "POST")[0] == 405
        status, kind, body = server.metrics_get("/metrics", "HEAD")
        assert (status, body) == (200, "") and kind.startswith("text/plain; version=0.0.4")


def test_metrics_are_off_unless_asked_for() -> None:
    argv = [sys.executable, "-m", "layer3_http", str(APP), "--listen", "127.0.0.1:0"]
    with running(argv) as program:
        program.wait_for_port()
        program.wait_for_line(rb"pool 0: forked worker")  # printed after where it would be
        assert not any(METRICS_LINE.search(line) for line in program.lines)
        assert not any(b"pool 1:" in line for line in program.lines)


def test_the_python_api_example_serves_metrics() -> None:
    with running([sys.executable, str(APP)]) as program:
        port = program.wait_for_port()
        server = MetricsServer(program, port,
                               int(program.wait_for_line(METRICS_LINE).group(1)))
        forked(server, 2)
        with server.client() as client:
            for _ in range(2):  # the second answer comes after the first was counted
                client.send(request_bytes("GET", "/ok?size=3", headers=(("Host", "t"),)))
                assert client.read_response().body == b"xxx"
            scrape = server.scrape()
        assert scrape.value("moonbridge_http_requests_total", code="2xx") in (1, 2)
        assert scrape.total("moonbridge_workers", pool="0") == 2


def test_connections_the_master_holds_by_reason() -> None:
    """A head that has not arrived and an idle keep-alive connection are the master's.

    The master publishes its counts once per turn of its loop, so the
    test scrapes until they show (each scrape a real request, at most
    200 of them).
    """
    with metrics_server("--workers", "2") as server:
        forked(server, 2)
        with server.client() as partial, server.client() as idle:
            partial.send(b"GET /ok?size=1 HTTP/1.1\r\n")  # the rest of the head comes later
            idle.send(request_bytes("GET", "/ok?size=2", headers=(("Host", "t"),)))
            assert idle.read_response().body == b"xx"  # then it waits: parked
            held: dict[str, float] = {}
            for _ in range(200):
                scrape = server.scrape()
                held = {dict(keys)["reason"]: value for (name, keys), value
                        in scrape.samples.items() if name == "moonbridge_held_connections"}
                if held["request"] == 1 and held["keepalive"] == 1:
                    break
            held.pop("linger")  # the scrapes' own lingering closes may be among them
            assert held == {"request": 1, "keepalive": 1, "queued": 0, "write": 0}
            partial.send(b"Host: t\r\n\r\n")
            assert partial.read_response().body == b"x"


def test_the_prometheus_scrape_config_on_the_page_scrapes_this_endpoint() -> None:
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "docs/examples/deploy/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    (target,) = job["static_configs"][0]["targets"]
    assert target == "127.0.0.1:9100"  # the address the page gives --metrics
    host, port = target.rsplit(":", 1)
    assert socket.inet_aton(host) and 0 < int(port) < 65536


def test_the_endpoint_on_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "metrics.sock"
    argv = [sys.executable, "-m", "layer3_http", str(APP), "--listen", "127.0.0.1:0",
            "--metrics", str(path)]
    with running(argv) as program:
        program.wait_for_port()
        assert program.wait_for_line(rb"metrics on unix:(\S+)").group(1) == str(path).encode()
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(20)
            sock.connect(str(path))
            with RawClient(sock) as client:
                client.send(request_bytes("GET", "/metrics", headers=(
                    ("Host", "m"), ("Connection", "close"))))
                response = client.read_response()
        assert response.status == 200
        assert parse(response.body.decode()).kinds["moonbridge_workers"] == "gauge"
