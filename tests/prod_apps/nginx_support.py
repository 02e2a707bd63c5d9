"""A real nginx for the tests, as a non-root user would run it: everything in one folder.

`find_nginx` finds the binary (installing the Debian package when it is
missing and this is root); `nginx_front` writes a main configuration
around a site file (pid file, error log and temporary files in the
test's folder, ``daemon off``), starts nginx on a free loopback port and
yields (program, port). A port taken between the probe and nginx's bind
is retried with another. nginx is stopped with ``SIGTERM`` so that its
master reaps its worker; `support.running` kills the group afterwards
whatever happened.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from support import Program, free_port, running

STARTED = re.compile(rb"start worker process")


def find_nginx() -> str | None:
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


def main_config(folder: Path, site: str) -> Path:
    """Write ``site.conf`` and a main ``nginx.conf`` that includes it; return the latter."""
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


@contextmanager
def nginx_front(binary: str, folder: Path,
                site: Callable[[int], str]) -> Iterator[tuple[Program, int]]:
    """Run nginx with the site `site(port)` on a free port; yield (program, port)."""
    for _ in range(3):  # a port taken between the probe and nginx's bind: try another
        port = free_port()
        config = main_config(folder, site(port))
        with running([binary, "-e", "stderr", "-p", str(folder), "-c", str(config),
                      "-g", "daemon off;"]) as nginx:
            try:
                nginx.wait_for_line(STARTED, timeout=30)
            except EOFError:
                if b"Address already in use" in nginx.output().encode():
                    continue
                raise
            try:
                yield nginx, port
            finally:
                stop(nginx)
            return
    raise RuntimeError("nginx found no free port")


def stop(nginx: Program) -> None:
    """Stop nginx so that its master reaps its worker (the finaliser kills all anyway)."""
    nginx.stop(signal.SIGTERM, timeout=20)
