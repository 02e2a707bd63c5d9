"""A real nginx in front of our server over a Unix socket, with the deployment page's config.

``docs/examples/deploy/nginx.conf`` is included as written, only its
socket path and listen address moved into the test's folder and onto
loopback. nginx runs in the foreground (``daemon off``) with its pid file,
error log and temporary files in ``tmp_path``; it is installed with
apt-get when missing, and the tests are skipped only where that fails.

Checked through it: keep-alive on both sides (the client's connection to
nginx, and nginx's upstream connection to our worker, which sees several
requests on one connection), uploads (Content-Length and chunked), and
the client address: nginx's ``X-Forwarded-For`` from a Unix socket peer is
trusted by default, a client's own forged entry is not.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from prod_apps.prod_support import DEPLOY, WSGI_APPS, command
from support import Program, free_port, running

STARTED = re.compile(rb"start worker process")


def _install() -> str | None:
    """Find nginx, installing the Debian package if needed; `None` if impossible."""
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "nginx"]
    for steps in ([install], [["apt-get", "update"], install]):
        try:
            if all(subprocess.run(step, env=env, capture_output=True, timeout=600).returncode == 0
                   for step in steps):
                break
        except (OSError, subprocess.TimeoutExpired):
            return None
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else shutil.which("nginx")


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    found = _install()
    if found is None:
        pytest.skip("nginx is not installed and cannot be installed here")
    return found


def nginx_config(folder: Path, port: int, upstream: Path) -> Path:
    site = (DEPLOY / "nginx.conf").read_text()
    assert "server unix:/run/moonbridge/app.sock;" in site and "listen 80;" in site
    site = site.replace("/run/moonbridge/app.sock", str(upstream))
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    (folder / "site.conf").write_text(site)
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = folder / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\npid {folder / 'nginx.pid'};\nerror_log stderr notice;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n    access_log off;\n{temp}\n    include {folder / 'site.conf'};\n}}\n")
    return main


@pytest.fixture(scope="module")
def front(nginx_binary: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Our server on a Unix socket and nginx in front of it; yield nginx's port."""
    folder = tmp_path_factory.mktemp("nginx")
    upstream = folder / "app.sock"
    ours = command("--wsgi", f"{WSGI_APPS}:validated", "--workers", "1",
                   "--listen", f"unix:{upstream}")
    with running(ours) as backend:
        backend.wait_for_line(f"listening on unix:{upstream}".encode())
        for _ in range(3):  # a port taken between the probe and nginx's bind: try another
            port = free_port()
            config = nginx_config(folder, port, upstream)
            with running([nginx_binary, "-e", "stderr", "-p", str(folder), "-c", str(config),
                          "-g", "daemon off;"]) as nginx:
                try:
                    nginx.wait_for_line(STARTED, timeout=30)
                except EOFError:
                    if b"Address already in use" in nginx.output().encode():
                        continue
                    raise
                try:
                    yield port
                finally:
                    stop(nginx)
                return
        pytest.fail("nginx found no free port")


def stop(nginx: Program) -> None:
    """Stop nginx so that its master reaps its worker (the finaliser kills all anyway)."""
    nginx.stop(signal.SIGTERM, timeout=20)


def client(port: int) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=20,
                                      source_address=("127.0.0.2", 0))


def ask(conn: http.client.HTTPConnection, path: str, **kwargs: object) -> dict[str, object]:
    conn.request(kwargs.pop("method", "GET"), path, **kwargs)  # type: ignore[arg-type]
    response = conn.getresponse()
    body = response.read()
    assert response.status == 200, (response.status, body)
    return dict(json.loads(body))


def test_keep_alive_on_both_sides(front: int) -> None:
    conn = client(front)
    first = ask(conn, "/who")
    client_socket = conn.sock
    answers = [ask(conn, "/who") for _ in range(3)]
    assert conn.sock is client_socket  # the client's connection to nginx was kept
    conn.close()
    assert {answer["pid"] for answer in [first, *answers]} == {first["pid"]}
    numbers = [int(str(answer["nth"])) for answer in [first, *answers]]
    assert numbers == sorted(numbers) and numbers[-1] >= 4  # one upstream connection, reused


def test_the_forwarded_client_address(front: int) -> None:
    conn = client(front)
    answer = ask(conn, "/who")
    assert (answer["client"], answer["scheme"]) == ("127.0.0.2", "http")
    assert str(answer["host"]).startswith("127.0.0.1")  # proxy_set_header Host $host
    forged = ask(conn, "/who", headers={"X-Forwarded-For": "6.6.6.6"})
    assert forged["client"] == "127.0.0.2"  # nginx appends the real peer; the forgery is ignored
    conn.close()


def test_uploads_through_nginx(front: int) -> None:
    conn = client(front)
    body = os.urandom(1 << 16) * 128  # 8 MiB
    answer = ask(conn, "/echo", method="POST", body=body)
    assert answer["length"] == len(body)
    assert answer["sha256"] == hashlib.sha256(body).hexdigest()
    lines = [b"line %d\n" % index for index in range(50000)]
    answer = ask(conn, "/echo", method="POST", body=iter(lines), encode_chunked=True)
    assert answer["sha256"] == hashlib.sha256(b"".join(lines)).hexdigest()
    assert ask(conn, "/who")["client"] == "127.0.0.2"  # the connection is still good
    conn.close()
