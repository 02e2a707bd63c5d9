"""Huge multipart uploads keep the worker's memory flat.

The client generates a multipart/form-data body on the fly (one reused
1 MiB block, never the whole body in memory) and sends it over a raw
socket. The handler (``/upload`` in ``apps/testapp.py``) streams the file
field to disk with `stream_post_param` and reports its own peak resident
size (``VmHWM`` from ``/proc/self/status``) before and after the upload.
The peak may not grow by more than 16 MiB over a 1 GiB upload (a few
seconds on loopback; ``-s`` prints the figures).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_support import Server, http_server, request_bytes

MiB = 1024 * 1024
BOUNDARY = "upload-boundary-7d3f"
BLOCK = bytes(range(256)) * 4096  # 1 MiB; holds no CR LF, so never a delimiter


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with http_server("--workers", "1", "--request-body-size-limit", str(2048 * MiB)) as running_:
        yield running_


def upload(server: Server, folder: Path, size_mib: int) -> tuple[dict[str, object], float]:
    """Send a ``size_mib`` MiB file field (and a text field); return the report and seconds."""
    opening = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n"
               f"big one\r\n--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
               f"filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    closing = f"\r\n--{BOUNDARY}--\r\n".encode()
    length = len(opening) + size_mib * MiB + len(closing)
    head = request_bytes("POST", f"/upload?dir={folder}", headers=[
        ("Host", "t"), ("Content-Length", str(length)),
        ("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")])
    start = time.monotonic()
    with server.raw(timeout=60) as client:
        client.send(head, opening)
        for _ in range(size_mib):
            client.sock.sendall(BLOCK)
        client.sock.sendall(closing)
        response = client.read_response()
    seconds = time.monotonic() - start
    assert response.status == 200, response.body
    return json.loads(response.body), seconds


def check_upload(server: Server, folder: Path, size_mib: int) -> None:
    report, seconds = upload(server, folder, size_mib)
    saved = folder / "upload.bin"
    try:
        assert report["bytes"] == size_mib * MiB == saved.stat().st_size
        assert report["calls"] == ["first", "more", "end"]
        assert report["fields"] == {"title": "big one"}
        with open(saved, "rb") as file:
            assert file.read(MiB) == BLOCK
            file.seek(-MiB, os.SEEK_END)
            assert file.read() == BLOCK
    finally:
        saved.unlink()
    before, after = report["before"], report["after"]
    assert isinstance(before, dict) and isinstance(after, dict)
    growth = after["VmHWM"] - before["VmHWM"]
    print(f"\nupload of {size_mib} MiB: {seconds:.1f} s, {size_mib / seconds:.0f} MiB/s; "
          f"worker VmHWM {before['VmHWM'] / MiB:.1f} -> {after['VmHWM'] / MiB:.1f} MiB, "
          f"VmRSS after {after['VmRSS'] / MiB:.1f} MiB")
    assert growth < 16 * MiB, (before, after)


def test_upload_of_1_gib_keeps_the_worker_memory_flat(server: Server, tmp_path: Path) -> None:
    check_upload(server, tmp_path, 1024)
