"""The static file server end to end: ``python -m layer3_http --static DIR``.

A folder made in a temporary directory is served over TCP (and, for the
``sendfile`` path, a Unix socket); a secret file lies next to it, outside,
and a symbolic link inside points at it. Clients are raw sockets (so that
``..`` and odd escapes reach the server exactly as written), ``http.client``
and curl.
"""

from __future__ import annotations

import doctest
import http.client
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
from http_support import RawClient, Response, Server, http_server, request_bytes
from prod_apps.prod_support import get
from support import running

from layer3_http import _static

BIG = bytes(range(256)) * 12288  # 3 MiB: sent with sendfile
CURL = "/usr/bin/curl" if os.path.exists("/usr/bin/curl") else None


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("static")
    (top / "secret.txt").write_text("top secret\n")
    root = top / "site"
    root.mkdir()
    (root / "index.html").write_text("<h1>home</h1>\n")
    (root / "style.css").write_text("h1 { color: red }\n")
    (root / "a b.txt").write_text("spaced\n")
    (root / "big.bin").write_bytes(BIG)
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_text("<p>sub</p>\n")
    (root / "empty").mkdir()
    os.symlink(top / "secret.txt", root / "leak.txt")
    os.symlink(root / "style.css", root / "alias.css")
    return root


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[Server]:
    with http_server("--static", str(site), app="") as running_:
        yield running_


def fetch(server: Server, target: str, method: str = "GET",
          headers: tuple[tuple[str, str], ...] = ()) -> Response:
    with server.raw() as client:
        client.send(request_bytes(method, target, headers=[("Host", "t"), *headers]))
        return client.read_response(head_request=method == "HEAD")


def test_index_of_the_root(server: Server) -> None:
    response = fetch(server, "/")
    assert response.status == 200 and response.body == b"<h1>home</h1>\n"
    assert response.header("Content-Type") == "text/html; charset=utf-8"


@pytest.mark.parametrize(("target", "kind", "body"), [
    ("/style.css", "text/css; charset=utf-8", b"h1 { color: red }\n"),
    ("/style.css?v=2", "text/css; charset=utf-8", b"h1 { color: red }\n"),
    ("/a%20b.txt", "text/plain; charset=utf-8", b"spaced\n"),
    ("/alias.css", "text/css; charset=utf-8", b"h1 { color: red }\n"),
    ("/sub/", "text/html; charset=utf-8", b"<p>sub</p>\n"),
])
def test_files_with_their_types(server: Server, target: str, kind: str, body: bytes) -> None:
    response = fetch(server, target)
    assert (response.status, response.header("Content-Type"), response.body) == (200, kind, body)
    assert response.header("Accept-Ranges") == "bytes"


def test_folder_without_slash_is_redirected(server: Server) -> None:
    response = fetch(server, "/sub?x=1")
    assert response.status == 301 and response.header("Location") == "/sub/?x=1"


@pytest.mark.parametrize("target", ["/missing.txt", "/empty/", "/sub/missing"])
def test_missing_files_are_404(server: Server, target: str) -> None:
    assert fetch(server, target).status == 404


ESCAPES = ["/../secret.txt", "/%2e%2e/secret.txt", "/sub/%2E%2E/%2e%2e/secret.txt",
           "/..%2fsecret.txt", "/sub%2f..%2f..%2fsecret.txt", "/%2e%2e%5csecret.txt",
           "/leak.txt", "/./../secret.txt"]


@pytest.mark.parametrize("target", ESCAPES)
def test_no_path_escapes_the_folder(server: Server, target: str) -> None:
    response = fetch(server, target)
    assert response.status == 404
    assert b"secret" not in response.body


@pytest.mark.parametrize("target", ["/index.html%00.txt", "/%ff%fe"])
def test_nul_and_bad_escapes_are_400(server: Server, target: str) -> None:
    response = fetch(server, target)
    assert response.status == 400 and b"secret" not in response.body


def test_head_sends_the_headers_only(server: Server) -> None:
    with server.raw() as client:
        client.send(request_bytes("HEAD", "/big.bin"), request_bytes("GET", "/style.css"))
        head = client.read_response(head_request=True)
        assert head.status == 200 and head.header("Content-Length") == str(len(BIG))
        assert client.read_response().body == b"h1 { color: red }\n"


def test_large_file_over_tcp(server: Server) -> None:
    response = fetch(server, "/big.bin")
    assert response.header("Content-Type") == "application/octet-stream"
    assert response.body == BIG


def test_large_file_over_a_unix_socket(site: Path, tmp_path: Path) -> None:
    path = tmp_path / "static.sock"
    argv = [sys.executable, "-m", "layer3_http", "--static", str(site), "--listen", f"unix:{path}"]
    with running(argv) as program:
        program.wait_for_line(rb"listening on unix:")
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(20)
            sock.connect(str(path))
            client = RawClient(sock)
            client.send(request_bytes(target="/big.bin"), request_bytes(target="/style.css"))
            assert client.read_response().body == BIG
            assert client.read_response().status == 200  # keep-alive after sendfile


def validators(server: Server) -> tuple[str, str]:
    response = fetch(server, "/style.css")
    etag, modified = response.header("ETag"), response.header("Last-Modified")
    assert etag is not None and etag.startswith('"') and modified is not None
    return etag, modified


def test_if_none_match_gives_304(server: Server) -> None:
    etag, _ = validators(server)
    response = fetch(server, "/style.css", headers=(("If-None-Match", f'"other", {etag}'),))
    assert response.status == 304 and response.body == b""
    assert response.header("ETag") == etag and response.header("Content-Length") is None
    assert fetch(server, "/style.css", headers=(("If-None-Match", '"other"'),)).status == 200


def test_if_modified_since_gives_304(server: Server) -> None:
    _, modified = validators(server)
    assert fetch(server, "/style.css", headers=(("If-Modified-Since", modified),)).status == 304
    old = formatdate(0, usegmt=True)
    assert fetch(server, "/style.css", headers=(("If-Modified-Since", old),)).status == 200


@pytest.mark.parametrize(("spec", "start", "end"), [
    ("bytes=0-9", 0, 10), ("bytes=100-", 100, len(BIG)), ("bytes=-5", len(BIG) - 5, len(BIG)),
    ("bytes=1000-999999999", 1000, len(BIG)),
])
def test_single_byte_range_gives_206(server: Server, spec: str, start: int, end: int) -> None:
    response = fetch(server, "/big.bin", headers=(("Range", spec),))
    assert response.status == 206
    assert response.header("Content-Range") == f"bytes {start}-{end - 1}/{len(BIG)}"
    assert response.body == BIG[start:end]


@pytest.mark.parametrize(("digits", "value"), [
    ("0", 0), ("000", 0), ("42", 42), ("0" * 5000 + "7", 7), ("9" * 18, 10**18 - 1),
    ("1" + "0" * 18, _static._PAST_ANY_END), ("1" + "0" * 4400, _static._PAST_ANY_END),
])
def test_range_positions_never_convert_more_than_18_digits(digits: str, value: int) -> None:
    assert _static._position(digits) == value


def test_docstring_examples() -> None:
    result = doctest.testmod(_static)
    assert result.attempted > 0 and result.failed == 0


def test_range_past_the_end_gives_416(server: Server) -> None:
    response = fetch(server, "/big.bin", headers=(("Range", f"bytes={len(BIG)}-"),))
    assert response.status == 416
    assert response.header("Content-Range") == f"bytes */{len(BIG)}"


@pytest.mark.parametrize("headers", [
    (("Range", "bytes=0-1,5-6"),),
    (("Range", "bytes=0-1"), ("If-Range", '"stale"')),
    (("Range", "items=0-1"),),
])
def test_other_ranges_give_the_whole_file(server: Server,
                                          headers: tuple[tuple[str, str], ...]) -> None:
    response = fetch(server, "/style.css", headers=headers)
    assert response.status == 200 and response.body == b"h1 { color: red }\n"


def test_if_range_with_the_current_etag_gives_206(server: Server) -> None:
    etag, _ = validators(server)
    response = fetch(server, "/style.css", headers=(("Range", "bytes=0-1"), ("If-Range", etag)))
    assert response.status == 206 and response.body == b"h1"


def test_other_methods_get_405(server: Server) -> None:
    status, headers, _ = get(server.port, "/style.css", method="POST", body=b"x=1")
    assert status == 405 and headers["Allow"] == "GET, HEAD"


def test_http_client_keep_alive_over_several_files(server: Server) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
    try:
        for target, body in (("/style.css", b"h1 { color: red }\n"), ("/big.bin", BIG),
                             ("/", b"<h1>home</h1>\n")):
            conn.request("GET", target)
            assert conn.getresponse().read() == body
    finally:
        conn.close()


@pytest.mark.skipif(CURL is None, reason="curl is not installed at /usr/bin/curl")
def test_curl_download_and_resume(server: Server, tmp_path: Path) -> None:
    out = tmp_path / "big.bin"
    out.write_bytes(BIG[:1000])
    subprocess.run([CURL or "curl", "-sS", "--max-time", "20", "-C", "-", "-o", str(out),
                    f"http://127.0.0.1:{server.port}/big.bin"], check=True, timeout=30)
    assert out.read_bytes() == BIG


def test_static_root_must_be_a_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    result = subprocess.run([sys.executable, "-m", "layer3_http", "--static", str(missing)],
                            capture_output=True, timeout=30,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    assert result.returncode == 1 and b"not a folder" in result.stderr
