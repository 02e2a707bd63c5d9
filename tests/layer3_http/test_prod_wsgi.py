"""WSGI (PEP 3333) on layer 3: ``python -m layer3_http --wsgi module:app``.

The routes of ``tests/prod_apps/wsgi_apps.py`` run under
`wsgiref.validate.validator` with its warnings as errors, so anything the
server does against PEP 3333 fails the request. Real clients
(`http.client`, raw sockets, curl) check the environ, a streaming
``wsgi.input`` (Content-Length and chunked), iterable, streamed and
``write()`` responses, ``exc_info``, ``close()``, ``wsgi.file_wrapper``
with ``sendfile``, and the Flask example of the deployment page.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from http_support import RawClient, request_bytes
from prod_apps.prod_support import DEPLOY, WSGI_APPS, get, get_json, raw, server
from support import Program

from layer3_http import wsgi_callback


@pytest.fixture(scope="module")
def validated() -> Iterator[tuple[Program, int]]:
    with server("--wsgi", f"{WSGI_APPS}:validated", "--workers", "1") as running:
        yield running


def no_validator_complaint(program: Program) -> None:
    program.drain_output()
    text = program.output()
    for sign in ("AssertionError", "WSGIWarning", "garbage collected without being closed"):
        assert sign not in text


def test_environ_follows_pep_3333(validated: tuple[Program, int]) -> None:
    program, port = validated
    environ = get_json(port, "/environ?a=1&b=%20", method="POST", body=b"xyz", headers={
        "Content-Type": "text/plain", "X-Two": "one", "X_Spoof": "dropped",
        "Cookie": "a=1", "x-two": "two"})
    assert environ["REQUEST_METHOD"] == "POST"
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("", "/environ")
    assert environ["QUERY_STRING"] == "a=1&b=%20"
    assert (environ["CONTENT_TYPE"], environ["CONTENT_LENGTH"]) == ("text/plain", "3")
    assert "HTTP_CONTENT_TYPE" not in environ and "HTTP_CONTENT_LENGTH" not in environ
    assert environ["HTTP_X_TWO"] == "one, two"
    assert "HTTP_X_SPOOF" not in environ  # an underscore in a name is dropped
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", str(port))
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["REMOTE_ADDR"] == "127.0.0.1" and environ["REMOTE_PORT"].isdigit()
    assert environ["wsgi.version"] == [1, 0] and environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.multiprocess"] is True and environ["wsgi.multithread"] is False
    assert environ["wsgi.input_terminated"] is True
    no_validator_complaint(program)


def test_path_info_is_decoded_as_latin_1(validated: tuple[Program, int]) -> None:
    _, port = validated
    status, _, body = get(port, "/caf%C3%A9%20x")
    assert status == 404
    assert json.loads(body)["missing"] == "/caf\u00c3\u00a9 x"  # bytes as latin-1, per PEP 3333


def test_a_body_with_content_length_and_a_chunked_one(validated: tuple[Program, int]) -> None:
    program, port = validated
    body = bytes(range(256)) * 4096  # 1 MiB
    answer = get_json(port, "/echo", method="POST", body=body)
    assert answer == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest(),
                      "head": body[:20].decode("latin-1")}
    lines = [b"line %d\n" % index for index in range(2000)]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("POST", "/echo", body=iter(lines), encode_chunked=True)
    assert json.loads(conn.getresponse().read())["length"] == len(b"".join(lines))
    conn.close()
    assert get_json(port, "/pieces", method="POST", body=b"x" * 30)["sizes"] == [7, 7, 7, 7, 2]
    no_validator_complaint(program)


def test_wsgi_input_streams_while_the_body_arrives(validated: tuple[Program, int]) -> None:
    _, port = validated
    with RawClient(raw(port)) as client:
        client.send(request_bytes("POST", "/interactive", headers=[
            ("Host", "t"), ("Transfer-Encoding", "chunked")]), b"9\r\nline one\n\r\n")
        head = client.read_head()
        assert head.status == 200 and head.header("Transfer-Encoding") == "chunked"
        assert client.read_until(b"first: line one\n")  # answered before the body ended
        client.send(b"5\r\nabcde\r\n0\r\n\r\n")
        assert client.read_until(b"0\r\n\r\n").endswith(b"rest: 5\n\r\n0\r\n\r\n")


def test_streamed_written_and_replaced_responses(validated: tuple[Program, int]) -> None:
    program, port = validated
    before = get_json(port, "/closed")["closed"]
    status, headers, body = get(port, "/stream?count=4")
    assert (status, body) == (200, b"piece 0\npiece 1\npiece 2\npiece 3\n")
    assert headers["Transfer-Encoding"] == "chunked"  # no length given: each piece streamed
    assert get_json(port, "/closed")["closed"] == before + 1  # close() was called
    assert get(port, "/write")[2] == b"written directly\n"
    status, _, body = get(port, "/exc-info")
    assert (status, body) == (503, b"replaced by exc_info\n")
    no_validator_complaint(program)


def test_errors_give_500_or_a_reset_and_content_length_is_enforced(
        validated: tuple[Program, int]) -> None:
    program, port = validated
    status, _, body = get(port, "/error")
    assert (status, body) == (500, b"500 Internal Server Error\n")
    program.wait_for_line(rb"RuntimeError: this WSGI application fails on purpose")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("GET", "/late-error")
    response = conn.getresponse()
    assert response.status == 200
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        response.read()  # the head went out: the client must notice the failure
    conn.close()
    with RawClient(raw(port)) as client:  # cut at Content-Length, connection reusable
        client.send(request_bytes(target="/too-long"), request_bytes(target="/closed"))
        assert client.read_response().body == b"012"
        assert b'"closed"' in client.read_response().body
    program.wait_for_line(rb"more than its Content-Length of 3; the rest is cut off")


def test_file_wrapper_goes_out_with_sendfile() -> None:
    with server("--wsgi", f"{WSGI_APPS}:app", "--workers", "1") as (_program, port):
        status, headers, body = get(port, "/file?size=3000000")
        expected = bytes(range(256)) * (3000000 // 256) + bytes(range(3000000 % 256))
        assert status == 200 and body == expected
        assert headers["Content-Length"] == "3000000"  # known size: no chunking, sendfile
        status, headers, body = get(port, "/file?size=1000", method="HEAD")
        assert (status, headers["Content-Length"], body) == (200, "1000", b"")
        with RawClient(raw(port)) as client:  # keep-alive after a sendfile response
            client.send(request_bytes(target="/file?size=10"), request_bytes(target="/closed"))
            assert client.read_response().body == bytes(range(10))
            assert b'"closed"' in client.read_response().body


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_uploads_and_downloads(validated: tuple[Program, int], tmp_path: object) -> None:
    _, port = validated
    data = bytes(range(256)) * 2000
    result = subprocess.run(
        ["curl", "-sS", "--max-time", "30", "--data-binary", "@-", "-H",
         "Content-Type: application/octet-stream", f"http://127.0.0.1:{port}/echo"],
        input=data, capture_output=True, timeout=60, check=True)
    assert json.loads(result.stdout)["sha256"] == hashlib.sha256(data).hexdigest()


def test_the_flask_example_end_to_end() -> None:
    """docs/examples/deploy/flask_app.py, as the deployment page runs it."""
    pytest.importorskip("flask")
    with server("--wsgi", "flask_app:app", "--workers", "1", cwd=DEPLOY) as (_program, port):
        hello = get_json(port, "/")
        assert hello == {"hello": "127.0.0.1", "scheme": "http",
                         "self": f"http://127.0.0.1:{port}/"}
        payload = b"\x00\x01flask" * 300000
        upload = get_json(port, "/upload", method="POST", body=payload,
                          headers={"Content-Type": "application/octet-stream"})
        assert upload == {"bytes": len(payload), "sha256": hashlib.sha256(payload).hexdigest()}
        assert get_json(port, "/items/12") == {"number": 12, "square": 144}
        status, _, _ = get(port, "/nowhere")
        assert status == 404
        assert get_json(port, "/", headers={"X-Forwarded-For": "192.0.2.9",
                                            "X-Forwarded-Proto": "https"})["hello"] == "192.0.2.9"


def test_the_plain_wsgi_example() -> None:
    """docs/examples/deploy/wsgi_app.py, as the deployment page runs it."""
    with server("--wsgi", "wsgi_app:app", "--workers", "1", cwd=DEPLOY) as (_program, port):
        assert get(port, "/")[2] == b"hello 127.0.0.1 over http\n"
        assert get(port, "/count", method="POST", body=b"a\nb\nc\n")[2] == b"3 lines\n"
        status, _headers, body = get(port, "/clock")
        assert status == 200 and body.count(b"tick") == 3


def test_wsgi_callback_refuses_what_is_not_callable() -> None:
    with pytest.raises(TypeError, match="must be callable"):
        wsgi_callback("not an application")  # type: ignore[arg-type]


@pytest.mark.parametrize("code", [204, 205, 304])
def test_the_body_of_a_status_without_content_is_dropped(
        validated: tuple[Program, int], code: int) -> None:
    """What the application returns for a 204, 205 or 304 never reaches the wire."""
    program, port = validated
    with RawClient(raw(port)) as client:
        client.send(request_bytes("GET", f"/no-content?status={code}", headers=[("Host", "x")]),
                    request_bytes("GET", "/closed", headers=[("Host", "x")]))
        head = client.read_head()
        assert head.status == code
        lengths = [value for name, value in head.headers if name.lower() == "content-length"]
        assert lengths == (["0"] if code == 205 else [])
        assert client.read_response().status == 200  # nothing of the dropped body before it
    no_validator_complaint(program)
