"""The deployment page's script, ``docs/examples/deploy/serve_app.py``, run as a reader would.

Plain HTTP first (access log lines on stdout, trusted proxy headers, a
graceful stop on SIGTERM), then HTTPS with a certificate made at test time.
"""

from __future__ import annotations

import signal
import ssl
import sys
from pathlib import Path

import trustme
from prod_apps.prod_support import DEPLOY, get
from support import running

SCRIPT = DEPLOY / "serve_app.py"


def test_serve_app_plain() -> None:
    with running([sys.executable, str(SCRIPT)], cwd=DEPLOY) as program:
        port = program.wait_for_port()
        assert get(port, "/")[2] == b"hello 127.0.0.1 over http\n"
        status, _, body = get(port, "/", headers={"X-Forwarded-For": "192.0.2.5",
                                                  "User-Agent": "reader/1"})
        assert (status, body) == (200, b"hello 192.0.2.5 over http\n")
        program.wait_for_line(
            rb'^192\.0\.2\.5 - - \[.*\] "GET / HTTP/1\.1" 200 \d+ "-" "reader/1"$')
        assert program.stop(signal.SIGTERM) == 0


def test_serve_app_https(tmp_path: Path) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    for blob in leaf.cert_chain_pems:
        blob.write_to_path(str(cert), append=True)
    leaf.private_key_pem.write_to_path(str(key))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    argv = [sys.executable, str(SCRIPT), "--certfile", str(cert), "--keyfile", str(key)]
    with running(argv, cwd=DEPLOY) as program:
        port = program.wait_for_port()
        assert get(port, "/", context=context)[2] == b"hello 127.0.0.1 over https\n"
        assert program.stop(signal.SIGTERM) == 0
