"""Without sockets: the docstring examples of the production modules, and corner cases.

`wsgi_environ` and the request's origin are checked on a `Request` built
over a socket pair, so every field of the environ can be compared with
what PEP 3333 says.
"""

from __future__ import annotations

import doctest
import importlib
import io
import socket
import ssl

import pytest
import trustme

from layer1_sockets import BufferedSocket
from layer3_http import FileWrapper, Options, Request, tls_context, wsgi_environ
from layer3_http._wire import Wire
from layer3_http.protocol import HeadParser

MODULES = ["_accesslog", "_options", "_proxy", "_wsgi"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(f"layer3_http.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def make_request(head: bytes, body: bytes = b"",
                 **options: object) -> tuple[Request, socket.socket]:
    ours, theirs = socket.socketpair()
    theirs.sendall(body)
    parsed = HeadParser().feed(head)
    assert parsed is not None
    request = Request(Wire(BufferedSocket(ours), Options(**options)), parsed, Options(**options))
    return request, theirs


def test_environ_of_an_absolute_form_target_on_a_unix_socket() -> None:
    request, peer = make_request(
        b"GET http://example.org:8080/a%2Fb/c?x=1 HTTP/1.1\r\nHost: example.org:8080\r\n"
        b"Cookie: a=1\r\nCookie: b=2\r\n\r\n")
    environ = wsgi_environ(request)
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("example.org", "8080")
    assert environ["PATH_INFO"] == "/a/b/c"  # decoded: %2F is a slash too, as in CGI
    assert environ["REQUEST_URI"] == "http://example.org:8080/a%2Fb/c?x=1"  # as sent
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert "REMOTE_ADDR" not in environ  # a Unix socket peer without a trusted proxy header
    assert environ["wsgi.url_scheme"] == "http"
    assert environ["wsgi.input"].read() == b""
    peer.close()


def test_script_name_is_taken_off_path_info() -> None:
    request, peer = make_request(b"GET /app/page HTTP/1.1\r\nHost: h\r\n\r\n")
    environ = wsgi_environ(request, script_name="/app")
    assert (environ["SCRIPT_NAME"], environ["PATH_INFO"]) == ("/app", "/page")
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("h", "80")
    peer.close()


def test_http_1_0_without_host_and_options_star() -> None:
    request, peer = make_request(b"OPTIONS * HTTP/1.1\r\nHost: [::1]:81\r\n\r\n")
    environ = wsgi_environ(request)
    assert (environ["PATH_INFO"], environ["RAW_URI"]) == ("", "*")
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("::1", "81")
    peer.close()
    request, peer = make_request(b"GET / HTTP/1.0\r\n\r\n")
    assert wsgi_environ(request)["SERVER_NAME"] == "localhost"  # no Host, no TCP address
    peer.close()


def test_open_body_reads_as_it_arrives_and_after_request_body() -> None:
    request, peer = make_request(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", b"hello\nworld")
    stream = request.open_body()
    assert stream.readline() == b"hello\n"
    assert stream.read() == b"world" and stream.read() == b""
    peer.close()
    request, peer = make_request(
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n", b"abc")
    assert request.body == b"abc"
    assert request.open_body().read() == b"abc"  # after .body: a file over the kept bytes
    peer.close()


def test_file_wrapper_iterates_and_knows_its_span() -> None:
    wrapper = FileWrapper(io.BytesIO(b"x" * 10), block_size=4)
    assert wrapper.span() is None  # no descriptor: iterated instead of sendfile
    assert list(wrapper) == [b"xxxx", b"xxxx", b"xx"]
    wrapper.close()


def test_tls_context_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="client_certs must be one of"):
        tls_context("cert.pem", client_certs="sometimes")
    with pytest.raises(ValueError, match=r"tls must be an ssl\.SSLContext"):
        Options(tls="cert.pem")
    assert Options(tls=ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)).tls is not None


def test_starttls_gives_up_on_a_silent_client_after_its_timeout() -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    ours, theirs = socket.socketpair()
    with BufferedSocket(ours) as server_side:
        with pytest.raises(TimeoutError, match=r"took longer than 0\.2 s"):
            server_side.starttls(context, server_side=True, timeout=0.2)
        with pytest.raises(TimeoutError):
            server_side.read_nb()  # unusable afterwards, as after a failed handshake
    theirs.close()
