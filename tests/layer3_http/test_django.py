"""Django end to end: the project of ``tests/django_app`` under ``python -m layer3_http --wsgi``.

The command lines are those of ``tests/django_app/serve.sh``, which the
deployment page shows: collectstatic into a scratch folder, the project on
one server, its static files on a second one (``--static``), each on port
0 here. A real client (`http.client`) gets a page, gets a form, reads the
``csrftoken`` cookie and the hidden field and posts them back (without
them Django answers 403), uploads a few MiB as multipart with the token,
and fetches the stylesheet the page names from the static server.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prod_apps.prod_support import TIMEOUT
from support import ROOT, Program, running

pytest.importorskip("django")

TESTS = ROOT / "tests"
PROJECT = TESTS / "django_app"
SCRIPT = PROJECT / "serve.sh"
UPLOAD_SIZE = 3 * 1024 * 1024 + 17  # past Django's 2.5 MiB: the upload goes to a file


def script_section(name: str) -> list[list[str]]:
    """The command lines of a named section of serve.sh, as argv lists."""
    text = SCRIPT.read_text(encoding="utf-8")
    section = re.search(rf"\[start:{name}\]\n(.*?)\n# --8<-- \[end:{name}\]", text, re.S)
    assert section, f"serve.sh has no section {name}"
    return [shlex.split(line.removesuffix("&").strip()) for line in section[1].splitlines()]


def runnable(argv: list[str], public: Path) -> list[str]:
    """An argv of serve.sh as the test runs it: this Python, port 0, the scratch folder."""
    replaced = {"python": sys.executable, "$DJANGO_PUBLIC": str(public)}
    return [replaced.get(part, re.sub(r"^127\.0\.0\.1:\d+$", "127.0.0.1:0", part))
            for part in argv]


@dataclass(frozen=True)
class Django:
    app: Program
    app_port: int
    static_port: int
    public: Path


@pytest.fixture(scope="module")
def django_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Django]:
    scratch = tmp_path_factory.mktemp("django")
    public, uploads = scratch / "public", scratch / "uploads"
    uploads.mkdir()
    env = {"DJANGO_SETTINGS_MODULE": "django_app.settings", "DJANGO_PUBLIC": str(public),
           "DJANGO_UPLOADS": str(uploads)}
    [collect] = script_section("collectstatic")
    subprocess.run(runnable(collect, public), cwd=TESTS, env={**os.environ, **env},
                   check=True, capture_output=True, timeout=60)
    serve_app, serve_static = (runnable(argv, public) for argv in script_section("serve"))
    with running(serve_app, cwd=TESTS, env=env) as app, \
            running(serve_static, cwd=TESTS, env=env) as static:
        yield Django(app, app.wait_for_port(), static.wait_for_port(), public)


def fetch(port: int, method: str, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def csrf(port: int) -> tuple[str, str]:
    """GET the form: the csrftoken cookie and the form's hidden token."""
    status, headers, body = fetch(port, "GET", "/form/")
    assert status == 200, body
    cookie = re.search(r"csrftoken=([^;]+)", headers["set-cookie"])
    field = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    assert cookie and field
    return cookie[1], field[1].decode()


def test_a_view_answers_from_a_worker(django_servers: Django) -> None:
    status, headers, body = fetch(django_servers.app_port, "GET", "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    worker = re.search(rb"hello from Django, worker (\d+)", body)
    assert worker and int(worker[1]) != django_servers.app.pid


def test_debug_is_off_and_only_the_named_hosts_are_served(django_servers: Django) -> None:
    status, _, body = fetch(django_servers.app_port, "GET", "/missing/")
    assert status == 404 and b"Traceback" not in body and b"URLconf" not in body
    status, _, _ = fetch(django_servers.app_port, "GET", "/", headers={"Host": "evil.example"})
    assert status == 400  # DisallowedHost


def test_a_form_posted_with_its_csrf_token_is_accepted(django_servers: Django) -> None:
    cookie, token = csrf(django_servers.app_port)
    status, _, body = fetch(django_servers.app_port, "POST", "/form/",
                            body=f"csrfmiddlewaretoken={token}&name=Ada%20L".encode(),
                            headers={"Cookie": f"csrftoken={cookie}",
                                     "Content-Type": "application/x-www-form-urlencoded"})
    assert (status, body) == (200, b"hello, Ada L\n")


def test_a_form_posted_without_the_token_is_403(django_servers: Django) -> None:
    cookie, _ = csrf(django_servers.app_port)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    status, _, _ = fetch(django_servers.app_port, "POST", "/form/", body=b"name=Ada",
                         headers=form)
    assert status == 403  # no cookie, no field
    status, _, _ = fetch(django_servers.app_port, "POST", "/form/", body=b"name=Ada",
                         headers={**form, "Cookie": f"csrftoken={cookie}"})
    assert status == 403  # the cookie alone is not enough


def multipart(fields: dict[str, str], name: str, filename: str, content: bytes
              ) -> tuple[bytes, str]:
    boundary = "----layer3-django-" + hashlib.sha256(content).hexdigest()[:16]
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
             .encode() for key, value in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}";'
                 f' filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                 .encode() + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), boundary


def test_a_multipart_upload_of_a_few_mib_arrives_whole(django_servers: Django) -> None:
    cookie, token = csrf(django_servers.app_port)
    content = hashlib.shake_256(b"layer3").digest(UPLOAD_SIZE)
    body, boundary = multipart({"csrfmiddlewaretoken": token}, "file", "data.bin", content)
    status, headers, answer = fetch(
        django_servers.app_port, "POST", "/upload/", body=body,
        headers={"Cookie": f"csrftoken={cookie}",
                 "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200, answer[:500]
    assert headers["content-type"] == "application/json"
    assert json.loads(answer) == {"name": "data.bin", "size": UPLOAD_SIZE,
                                  "sha256": hashlib.sha256(content).hexdigest()}


def test_the_static_files_are_collected_and_served_by_the_static_server(
        django_servers: Django) -> None:
    _, _, page = fetch(django_servers.app_port, "GET", "/")
    stylesheet = re.search(rb'<link rel="stylesheet" href="([^"]+)"', page)
    assert stylesheet and stylesheet[1] == b"/static/django_app/site.css"
    status, headers, body = fetch(django_servers.static_port, "GET", stylesheet[1].decode())
    assert status == 200 and headers["content-type"].startswith("text/css")
    assert body == (PROJECT / "static" / "django_app" / "site.css").read_bytes()
    assert (django_servers.public / "static" / "django_app" / "site.css").is_file()
    status, _, _ = fetch(django_servers.app_port, "GET", "/static/django_app/site.css")
    assert status == 404  # DEBUG off: Django itself does not serve them


def test_the_script_commands_are_the_documented_ones() -> None:
    page = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    for section in ("collectstatic", "serve"):
        assert f'--8<-- "tests/django_app/serve.sh:{section}"' in page
    [collect] = script_section("collectstatic")
    app, static = script_section("serve")
    assert collect == ["python", "-m", "django", "collectstatic", "--noinput"]
    assert app[:5] == ["python", "-m", "layer3_http", "--wsgi", "django_app.wsgi:application"]
    assert static[:4] == ["python", "-m", "layer3_http", "--static"]
