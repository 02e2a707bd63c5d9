"""The access log: one line per request, Common or Combined Log Format, through `logging`.

Formats are checked as pure functions first (`AccessLog.line`); then
``--access-log FILE|-`` on a running server: one line per request
(answered, refused, HEAD), nothing of it in the error log, and a log file
that logrotate renamed is followed by the workers without a restart.
"""

from __future__ import annotations

import base64
import re
import signal
from pathlib import Path

import pytest
from http_support import RawClient, request_bytes
from prod_apps.prod_support import HTTP_APP, WSGI_APPS, get, raw, server

from layer3_http import AccessEntry, AccessLog, Options

COMBINED_LINE = re.compile(
    r'^(\S+) - (\S+) \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "([^"]*)" (\d{3}) (\d+|-)'
    r' "([^"]*)" "([^"]*)"$')


def entry(**changes: object) -> AccessEntry:
    values: dict[str, object] = dict(
        client="192.0.2.1", peer="127.0.0.1", method="GET", target="/a?b=1", version="HTTP/1.1",
        status=200, body_bytes=1234, started=0.0, duration=0.0125, fields=[])
    values.update(changes)
    return AccessEntry(**values)  # type: ignore[arg-type]


def test_common_and_combined() -> None:
    line = AccessLog("common").line(entry())
    assert re.fullmatch(r'192\.0\.2\.1 - - \[01/Jan/1970:\d\d:\d\d:00 [+-]\d{4}\] '
                        r'"GET /a\?b=1 HTTP/1\.1" 200 1234', line), line
    fields = [("Referer", "http://example.org/"), ("User-Agent", 'agent "7"')]
    combined = AccessLog("combined").line(entry(fields=fields, body_bytes=0))
    assert combined.endswith('" 200 - "http://example.org/" "agent \\"7\\""')


def test_directives_user_and_escaping() -> None:
    auth = "Basic " + base64.b64encode(b"alice:secret").decode()
    log = AccessLog('%a %h %u %m %U %q %H %s %B %D %T %{X-Id}i %{Missing}i %% "%r"')
    line = log.line(entry(fields=[("Authorization", auth), ("X-Id", "a\x7fb")]))
    assert line == ('127.0.0.1 192.0.2.1 alice GET /a ?b=1 HTTP/1.1 200 1234 12500 0 a\\x7fb'
                    ' - % "GET /a?b=1 HTTP/1.1"')
    assert AccessLog("%h %u").line(entry(client=None, fields=[
        ("Authorization", "Basic !!!")])) == "unix -"
    unreadable = entry(method="-", target="-", version="", status=400, body_bytes=16)
    assert AccessLog("common").line(unreadable).endswith('"-" 400 16')


@pytest.mark.parametrize(("text", "says"), [
    ("%Z", "unknown directive '%Z'"), ("%{X}o", "unknown directive"),
    ("100%", "a lone '%'"), ("% h", "a lone '%'"),
])
def test_bad_formats_are_refused_before_any_fork(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        Options(access_log=text)


def test_access_log_file_one_line_per_request(tmp_path: Path) -> None:
    log, errors = tmp_path / "access.log", tmp_path / "error.log"
    with server(str(HTTP_APP), "--workers", "1", "--access-log", str(log),
                "--access-log-format", "combined", "-l", str(errors)) as (program, port):
        get(port, "/who", headers={"Referer": "http://r.example/", "User-Agent": "tester/1"})
        get(port, "/echo", method="POST", body=b"12345")
        get(port, "/who", method="HEAD")
        get(port, "/who", headers={"X-Forwarded-For": "192.0.2.8"})
        with RawClient(raw(port)) as client:
            client.send(b"GARBAGE\r\n\r\n")
            assert client.read_response().status == 400
        assert program.stop(signal.SIGTERM) == 0
    lines = log.read_text().splitlines()
    parsed = [COMBINED_LINE.match(line) for line in lines]
    assert all(parsed), lines
    rows = [match.groups() for match in parsed if match]
    assert [(row[2], row[3], row[4]) for row in rows] == [
        ("GET /who HTTP/1.1", "200", rows[0][4]), ("POST /echo HTTP/1.1", "200", "5"),
        ("HEAD /who HTTP/1.1", "200", "-"), ("GET /who HTTP/1.1", "200", rows[3][4]),
        ("-", "400", "16")]
    assert rows[0][5:] == ("http://r.example/", "tester/1")
    assert rows[3][0] == "192.0.2.8"  # the trusted proxy's client
    assert "GET /who" not in errors.read_text()  # access lines stay out of the error log


def test_access_log_to_stdout() -> None:
    with server(str(HTTP_APP), "--access-log", "-") as (program, port):
        get(port, "/who?x=1")
        program.wait_for_line(rb'^127\.0\.0\.1 - - \[.*\] "GET /who\?x=1 HTTP/1\.1" 200 \d+$')


def test_a_rotated_access_log_is_followed(tmp_path: Path) -> None:
    log, rotated = tmp_path / "access.log", tmp_path / "access.log.1"
    errors, errors_rotated = tmp_path / "error.log", tmp_path / "error.log.1"
    with server(str(HTTP_APP), "--workers", "1", "--access-log", str(log),
                "-l", str(errors)) as (program, port):
        with RawClient(raw(port)) as client:  # a worker logs a request before reading the next
            for query in ("before", "between"):
                client.send(request_bytes(target=f"/who?{query}"))
                assert client.read_response().status == 200
        log.rename(rotated)
        errors.rename(errors_rotated)
        program.proc.send_signal(signal.SIGUSR1)  # logrotate's postrotate
        get(port, "/who?after")
        assert program.stop(signal.SIGTERM) == 0
    assert "/who?before" in rotated.read_text() and "/who?after" not in rotated.read_text()
    assert "/who?after" in log.read_text()
    assert "INFO stopped" in errors.read_text()
    assert "INFO stopped" not in errors_rotated.read_text()


def test_the_servers_own_answers_are_logged_with_their_status() -> None:
    with server("--wsgi", f"{WSGI_APPS}:validated", "--access-log", "-",
                "--request-body-size-limit", "10") as (program, port):
        assert get(port, "/error")[0] == 500
        program.wait_for_line(rb'"GET /error HTTP/1\.1" 500 26$')
        assert get(port, "/echo", method="POST", body=b"x" * 11)[0] == 413
        program.wait_for_line(rb'"POST /echo HTTP/1\.1" 413 \d+$')
