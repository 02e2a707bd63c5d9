"""A second hostile round, end to end: seven attacks on a server run with its defaults.

Each test starts the server the way an operator would
(``python -m layer3_http --static DIR --workers 2``, default limits and
timeouts; a few tests need an application, ``tests/hostile_apps/recorder.py``
or ``tests/prod_apps/http_app.py``) and proves one defence with a real
client on a real socket:

* a form body the handler does not read is drained within
  ``drain_size_limit`` and ``drain_timeout`` after the response (or the
  connection closes), never read to its end at one byte per
  ``stall_timeout``; and ``100 Continue`` is sent only for a body the
  handler reads;
* an urlencoded flood of empty fields is refused (413) after its
  10,001st field, and the worker's peak resident size (``VmHWM`` in
  ``/proc/PID/status``) hardly moves;
* behind a trusted proxy, only the header the proxy sets
  (``X-Forwarded-For`` by default, as nginx does) names the client; a
  client's own ``Forwarded`` is ignored;
* a redirect to a folder's slash is path-absolute: ``//name`` never
  becomes ``Location: //name/`` (another host, to a browser);
* a ``Range`` with numbers of thousands of digits is 416 or the whole
  file, never 500;
* ``Content-Length: 5, 5`` and two ``Content-Length`` lines are 400;
* dotfiles (``/.env``, ``/.git/config``) are 404 unless
  ``--static-dotfiles`` allows them.

Every wait is bounded by a socket timeout; the body senders run in a
thread that the test joins with a timeout.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_support import RawClient, Response, Server, http_server, request_bytes
from prod_apps.prod_support import HTTP_APP, get_json
from prod_apps.prod_support import server as prod_server

HOSTILE = Path(__file__).resolve().parent.parent / "hostile_apps"
RECORDER = HOSTILE / "recorder.py"
FILE = bytes(range(256)) * 16  # 4096 bytes
MiB = 1024 * 1024
STALL_DEFAULT = 30.0  # the default stall_timeout: a test that waits this long has failed
WAIT = 10.0  # drain_timeout (2 s) plus a generous margin, well under STALL_DEFAULT


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    top = tmp_path_factory.mktemp("round2")
    (top / "index.html").write_text("<h1>top</h1>\n")
    (top / "file.bin").write_bytes(FILE)
    (top / "name").mkdir()
    (top / "name" / "index.html").write_text("<h1>name</h1>\n")
    (top / "name" / ".hidden").write_text("hidden\n")
    (top / ".env").write_text("SECRET=1\n")
    (top / ".git").mkdir()
    (top / ".git" / "config").write_text("[core]\n")
    return top


@pytest.fixture(scope="module")
def static(site: Path) -> Iterator[Server]:
    with http_server("--static", str(site), "--workers", "2", app="") as running_:
        yield running_


def exchange(server: Server, data: bytes, timeout: float = WAIT) -> tuple[Response, RawClient]:
    """Send `data`, read one response (1xx skipped); the client stays open."""
    client = server.raw(timeout=timeout)
    client.send(data)
    return client.read_response(), client


def get(server: Server, target: str, *headers: tuple[str, str]) -> Response:
    response, client = exchange(server, request_bytes("GET", target,
                                                      headers=[("Host", "t"), *headers]))
    client.sock.close()
    return response


# -- 2. a form body the handler does not read ------------------------------------------------

FORMS = ["application/x-www-form-urlencoded", "multipart/form-data; boundary=b"]


@pytest.mark.parametrize("content_type", FORMS)
def test_an_unread_form_body_is_drained_in_time_not_read_to_its_end(
        static: Server, content_type: str) -> None:
    # 2 MB: past held_body_limit (1 MiB), so the worker answers before the body is there
    head = request_bytes("POST", "/file.bin", headers=[
        ("Host", "t"), ("Content-Type", content_type), ("Content-Length", "2000000")])
    response, client = exchange(static, head + b"a=1&b=")  # then nothing more: a stalled body
    with client:
        assert response.status == 405
        started = time.monotonic()
        try:
            closed = client.closed_by_server()
        except TimeoutError:
            pytest.fail(f"the server still reads the body after {WAIT} s "
                        f"(stall_timeout {STALL_DEFAULT} s per byte)")
        assert closed
        assert time.monotonic() - started < WAIT


@pytest.mark.parametrize("content_type", FORMS)
def test_no_100_continue_for_a_form_body_nobody_reads(static: Server, content_type: str) -> None:
    head = request_bytes("POST", "/file.bin", headers=[
        ("Host", "t"), ("Content-Type", content_type), ("Content-Length", "10"),
        ("Expect", "100-continue")])
    with static.raw(timeout=WAIT) as client:
        client.send(head)
        first = client.read_head()
        assert first.status == 405, first.raw_head  # no "100 Continue" before it
        assert first.header("Connection") == "close"


def test_a_large_unread_form_body_closes_the_connection(static: Server) -> None:
    body = b"a=" + b"x" * (2 * MiB)  # past drain_size_limit (1 MiB)
    head = request_bytes("POST", "/file.bin", headers=[
        ("Host", "t"), ("Content-Type", FORMS[0]), ("Content-Length", str(len(body)))])
    with static.raw(timeout=WAIT) as client:
        sender = threading.Thread(target=send_quietly, args=(client.sock, head + body))
        sender.start()
        try:
            assert client.read_response().status == 405
            try:
                assert client.closed_by_server()
            except TimeoutError:
                pytest.fail("the server reads an unread form body past drain_size_limit")
        finally:
            client.sock.shutdown(socket.SHUT_RDWR)
            sender.join(WAIT)
        assert not sender.is_alive()


def send_quietly(sock: socket.socket, data: bytes) -> None:
    """Send `data`; the server may close first (that is what some tests expect)."""
    try:
        sock.sendall(data)
    except OSError:
        pass


# -- 3. an urlencoded flood --------------------------------------------------------------------


def peak_resident(pid: int) -> int:
    """A process's peak resident size in bytes (``VmHWM``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def test_an_urlencoded_flood_is_refused_early_with_bounded_memory() -> None:
    body = b"&a" * (8 * MiB)  # 16 MiB, 8 million fields; the limit is 10000
    with http_server("--workers", "1", app=RECORDER) as server:
        worker = get_json(server.port, "/hello", method="POST", body=b"")["pid"]
        before = peak_resident(worker)
        head = request_bytes("POST", "/form", headers=[
            ("Host", "t"), ("Content-Type", FORMS[0]), ("Content-Length", str(len(body)))])
        with server.raw(timeout=30) as client:
            sender = threading.Thread(target=send_quietly, args=(client.sock, head + body))
            sender.start()
            try:
                response = client.read_response()
            finally:
                client.sock.shutdown(socket.SHUT_RDWR)
                sender.join(30)
        assert response.status == 413, response.body
        growth = peak_resident(worker) - before
        print(f"\nworker VmHWM grew by {growth / MiB:.1f} MiB for a {len(body) / MiB:.0f} MiB "
              "flood")
        assert growth < 8 * MiB, growth


# -- 4. who the client is, behind a proxy -----------------------------------------------------


def test_a_clients_own_forwarded_header_is_ignored_behind_nginx() -> None:
    # nginx appends its peer to X-Forwarded-For and passes the client's Forwarded through.
    spoofed = {"Forwarded": "for=127.0.0.1;proto=https", "X-Forwarded-For": "192.0.2.7"}
    with prod_server(str(HTTP_APP), "--workers", "1") as (_, port):
        who = get_json(port, "/who", headers=spoofed)
        assert (who["client"], who["scheme"]) == ("192.0.2.7", "http")
        alone = get_json(port, "/who", headers={"Forwarded": "for=192.0.2.99"})
        assert alone["client"] == "127.0.0.1"


def test_forwarded_counts_when_the_proxy_is_said_to_set_it() -> None:
    spoofed = {"Forwarded": "for=192.0.2.8;proto=https", "X-Forwarded-For": "192.0.2.7"}
    with prod_server(str(HTTP_APP), "--workers", "1", "--forwarded-header",
                     "Forwarded") as (_, port):
        who = get_json(port, "/who", headers=spoofed)
        assert (who["client"], who["scheme"]) == ("192.0.2.8", "https")


# -- 5. an open redirect ----------------------------------------------------------------------


@pytest.mark.parametrize(("target", "location"), [
    ("//name", "/name/"), ("///name?x=1", "/name/?x=1"), ("/name", "/name/")])
def test_a_folder_redirect_is_path_absolute(static: Server, target: str, location: str) -> None:
    response = get(static, target)
    assert response.status == 301
    assert response.header("Location") == location


# -- 6. huge numbers in Range -----------------------------------------------------------------

HUGE = "1" + "0" * 4400


@pytest.mark.parametrize(("spec", "status", "body"), [
    (f"bytes={HUGE}-", 416, b""),
    (f"bytes={HUGE}-{HUGE}", 416, b""),
    (f"bytes=0-{HUGE}", 206, FILE),
    (f"bytes=-{HUGE}", 206, FILE),
    (f"bytes={'0' * 5000}1-{'0' * 5000}2", 206, FILE[1:3]),
])
def test_huge_range_numbers_are_416_or_the_file_never_500(
        static: Server, spec: str, status: int, body: bytes) -> None:
    response = get(static, "/file.bin", ("Range", spec))
    assert response.status == status, response.body[:200]
    if status == 206:
        assert response.body == body
    else:
        assert response.header("Content-Range") == f"bytes */{len(FILE)}"


# -- 7. Content-Length lists and repeats ------------------------------------------------------


@pytest.mark.parametrize("lengths", [["5, 5"], ["5", "5"], ["5,"], ["5 ,5"]])
def test_a_list_or_repeated_content_length_is_400(lengths: list[str]) -> None:
    headers = [("Host", "t"), *(("Content-Length", value) for value in lengths)]
    with http_server("--workers", "1", app=RECORDER) as server:
        response, client = exchange(server, request_bytes("POST", "/front", headers=headers,
                                                          body=b"hello"))
        with client:
            assert response.status == 400
            assert response.header("Connection") == "close"
            assert client.closed_by_server()
        server.program.drain_output()
        assert not [line for line in server.program.lines if b"RECORDED" in line]


# -- 8. dotfiles ------------------------------------------------------------------------------

DOTFILES = ["/.env", "/.git/config", "/%2Eenv", "/name/.hidden", "/.git/", "/.git"]


@pytest.mark.parametrize("target", DOTFILES)
def test_dotfiles_are_404_by_default(static: Server, target: str) -> None:
    assert get(static, target).status == 404


def test_static_dotfiles_serves_them(site: Path) -> None:
    with http_server("--static", str(site), "--workers", "1", "--static-dotfiles",
                     app="") as server:
        assert (get(server, "/.env").status, get(server, "/.env").body) == (200, b"SECRET=1\n")
        assert get(server, "/.git/config").body == b"[core]\n"
        assert get(server, "/name/.hidden").status == 200
        assert get(server, "/name/..").status == 404  # dot segments stay refused

