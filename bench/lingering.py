"""What the lingering close costs a server when the client's end takes a round trip.

On loopback a client's FIN follows the server's within microseconds, so
the lingering close (half-close, wait for the client's end, close) costs
nothing measurable. On a real network the client's end comes a round trip
later. This script makes the clients keep that delay: each one sends
``GET /`` with ``Connection: close``, reads the whole response, waits
``--delay`` milliseconds (the round trip), then closes. A server whose
worker waits for that end serves at most ``workers / delay`` connections a
second; one whose master waits for it serves as fast as the clients come.

    python3 bench/lingering.py --repo DIR [--workers 2] [--clients 16]
        [--delay 20] [--seconds 5]

It starts ``python -m layer3_http --static`` from the checkout ``DIR`` on
127.0.0.1 (so two versions can be compared in one run), runs the clients
for ``--seconds`` (bounded), stops the server, and prints connections per
second and the worst time to an answer. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REQUEST = b"GET /index.html HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"


def start(repo: Path, folder: str, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    process = subprocess.Popen(
        [sys.executable, "-m", "layer3_http", "--static", folder, "--listen", "127.0.0.1:0",
         "--workers", str(workers)], cwd=repo, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(repo)})
    assert process.stdout is not None
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        match = re.search(rb"listening on (?:http://127\.0\.0\.1:|port )(\d+)", line)
        if match:
            threading.Thread(target=process.stdout.read, daemon=True).start()  # keep draining
            return process, int(match.group(1))
    process.kill()
    raise RuntimeError("the server did not start")


def client(port: int, delay: float, until: float, results: list[float]) -> None:
    while time.monotonic() < until:
        began = time.monotonic()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(REQUEST)
            data = b""
            while b"\r\n\r\n" not in data:
                data += sock.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(re.search(rb"Content-Length: (\d+)", head, re.I).group(1))  # type: ignore[union-attr]
            while len(body) < length:
                body += sock.recv(65536)
            results.append(time.monotonic() - began)
            time.sleep(delay)  # the round trip before the client's end reaches the server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--delay", type=float, default=20.0, help="milliseconds")
    parser.add_argument("--seconds", type=float, default=5.0)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "index.html").write_bytes(b"hello\n" * 100)
        process, port = start(arguments.repo.resolve(), folder, arguments.workers)
        try:
            results: list[float] = []
            until = time.monotonic() + min(arguments.seconds, 60.0)
            threads = [threading.Thread(target=client, args=(
                port, arguments.delay / 1000, until, results)) for _ in range(arguments.clients)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(10)
    rate = len(results) / arguments.seconds
    print(f"{arguments.repo}: {rate:.0f} connections/s, worst answer "
          f"{max(results) * 1000:.1f} ms ({arguments.clients} clients, {arguments.workers} "
          f"workers, client's end {arguments.delay:g} ms after the response)")


if __name__ == "__main__":
    main()
