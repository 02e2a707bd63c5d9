"""HTTPS: ``--certfile``/``--keyfile`` terminate TLS in the worker; ``--ca-certs`` for clients.

Certificates are made at test time (`trustme`); real clients talk to the
server: `http.client` with a context that trusts the test CA, and curl
with ``--cacert`` when it is installed. The TLS layer is layer 1's
`starttls` on the connection a worker was given.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
import trustme
from prod_apps.prod_support import HTTP_APP, command, get_json, raw, server
from support import running

from layer2_prefork import ExitCode


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    paths = {"ca": folder / "ca.pem", "cert": folder / "cert.pem", "key": folder / "key.pem",
             "client": folder / "client.pem", "client_ca": folder / "client_ca.pem"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(str(paths["cert"]), append=True)
    leaf.private_key_pem.write_to_path(str(paths["key"]))
    client_ca = trustme.CA()
    client_ca.cert_pem.write_to_path(str(paths["client_ca"]))
    client = client_ca.issue_cert("client.example", common_name="client.example")
    client.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    return paths


def client_context(files: dict[str, Path], certificate: bool = False) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(files["ca"]))
    if certificate:
        context.load_cert_chain(str(files["client"]))
    return context


def test_https_with_keep_alive_and_the_https_scheme(files: dict[str, Path]) -> None:
    with server(str(HTTP_APP), "--certfile", str(files["cert"]), "--keyfile", str(files["key"]),
                "--workers", "1") as (_, port):
        conn = http.client.HTTPSConnection("localhost", port, timeout=20,
                                           context=client_context(files))
        answers = []
        for _ in range(3):
            conn.request("GET", "/who")
            answers.append(get_json_response(conn))
        conn.close()
        assert [answer["scheme"] for answer in answers] == ["https"] * 3
        assert [answer["nth"] for answer in answers] == [1, 2, 3]  # one kept-alive TLS connection
        assert answers[0]["subject"] is None
        conn = http.client.HTTPSConnection("localhost", port, timeout=20,
                                           context=client_context(files))
        body = bytes(range(256)) * 8192  # 2 MiB through TLS both ways
        conn.request("POST", "/echo", body=body)
        response = conn.getresponse()
        assert response.status == 200 and response.read() == body
        conn.close()


def get_json_response(conn: http.client.HTTPConnection) -> dict[str, object]:
    response = conn.getresponse()
    assert response.status == 200
    return dict(json.loads(response.read()))


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_cacert(files: dict[str, Path]) -> None:
    with server(str(HTTP_APP), "--certfile", str(files["cert"]), "--keyfile",
                str(files["key"])) as (_, port):
        result = subprocess.run(
            ["curl", "-sS", "--max-time", "30", "--cacert", str(files["ca"]), "--resolve",
             f"localhost:{port}:127.0.0.1", f"https://localhost:{port}/who"],
            capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert b'"scheme": "https"' in result.stdout
        refused = subprocess.run(["curl", "-sS", "--max-time", "30", "--resolve",
                                  f"localhost:{port}:127.0.0.1", f"https://localhost:{port}/"],
                                 capture_output=True, timeout=60)
        assert refused.returncode == 60  # curl does not trust the test CA by itself


def test_client_certificates_required(files: dict[str, Path]) -> None:
    with server(str(HTTP_APP), "--certfile", str(files["cert"]), "--keyfile", str(files["key"]),
                "--ca-certs", str(files["client_ca"]), "--workers", "1") as (program, port):
        answer = get_json(port, "/who", context=client_context(files, certificate=True))
        assert answer["subject"]["commonName"] == "client.example"
        with pytest.raises((ssl.SSLError, ConnectionResetError, BrokenPipeError)):
            get_json(port, "/who", context=client_context(files))
        program.wait_for_line(rb"TLS handshake failed")
        assert get_json(port, "/who", context=client_context(files, certificate=True))["pid"]


def test_client_certificates_optional(files: dict[str, Path]) -> None:
    with server(str(HTTP_APP), "--certfile", str(files["cert"]), "--keyfile", str(files["key"]),
                "--ca-certs", str(files["client_ca"]), "--client-certs", "optional") as (_, port):
        assert get_json(port, "/who", context=client_context(files))["subject"] is None
        answer = get_json(port, "/who", context=client_context(files, certificate=True))
        assert answer["subject"]["commonName"] == "client.example"


def test_plain_http_and_silent_clients_fail_the_handshake_only(files: dict[str, Path]) -> None:
    with server(str(HTTP_APP), "--certfile", str(files["cert"]), "--keyfile", str(files["key"]),
                "--workers", "1", "--request-header-timeout", "1") as (program, port):
        with raw(port) as plain:
            plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                assert b"HTTP/1.1" not in plain.recv(1000)  # a TLS alert, or nothing
            except ConnectionResetError:
                pass
        program.wait_for_line(rb"TLS handshake failed")
        with raw(port) as silent:  # says nothing: cut off after the header timeout
            program.wait_for_line(rb"TLS handshake failed: the TLS handshake took longer than 1")
            try:
                assert silent.recv(100) == b""
            except ConnectionResetError:
                pass
        assert get_json(port, "/who", context=client_context(files))["scheme"] == "https"


def test_certificate_mistakes(files: dict[str, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    for arguments, code, says in [
        (("--certfile", str(bad)), ExitCode.STARTUP_ERROR, rb"cannot load the TLS certificate"),
        (("--certfile", str(tmp_path / "missing.pem")), ExitCode.STARTUP_ERROR,
         rb"cannot load the TLS certificate"),
        (("--keyfile", str(files["key"])), ExitCode.COMMAND_LINE, rb"need --certfile"),
    ]:
        with running(command(str(HTTP_APP), "--listen", "127.0.0.1:0", *arguments)) as program:
            program.wait_for_line(says)
            assert program.proc.wait(30) == code


def test_the_certificate_is_loaded_before_the_workers_fork(files: dict[str, Path]) -> None:
    with server(str(HTTP_APP), "--certfile", str(files["cert"]), "--keyfile", str(files["key"]),
                "--workers", "2") as (program, port):
        program.wait_for_line(rb"forked worker")
        pids = {get_json(port, "/who", context=client_context(files))["pid"] for _ in range(6)}
        assert pids  # served by workers that inherited the loaded context
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            context = client_context(files)
            with context.wrap_socket(sock, server_hostname="localhost") as tls:
                assert tls.selected_alpn_protocol() in (None, "http/1.1")
                assert tls.version() in ("TLSv1.2", "TLSv1.3")
