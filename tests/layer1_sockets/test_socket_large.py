"""256 MiB through one connection with flat memory, every kind, both styles.

The writer (a thread) sends 1 MiB chunks numbered in their first 8 bytes;
the reader checks every chunk, so a lost, duplicated or reordered byte
fails the test. Memory is measured as this process's peak resident size
(``VmHWM``), reset just before the transfer by writing 5 to
``/proc/self/clear_refs``; it must grow by far less than the transfer.
The figures are printed (run with ``-s`` to see them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sockets_support import Background, connected, wait_readable, wait_writable

from layer1_sockets import BufferedSocket, timeref

CHUNK = 1 << 20
CHUNKS = 256  # 256 MiB
GROWTH_LIMIT = 32 << 20
BASE = os.urandom(CHUNK)


def status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise LookupError(field)


def reset_peak() -> int:
    """Reset the peak resident size to the current one; return it in bytes."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError as error:
        pytest.skip(f"cannot reset the peak resident size here: {error}")
    return status_kib("VmHWM") * 1024


def chunk(number: int) -> bytes:
    return number.to_bytes(8, "big") + BASE[8:]


def write_blocking(sock: BufferedSocket) -> None:
    for number in range(CHUNKS):
        sock.write(chunk(number))
    sock.finish()


def write_nonblocking(sock: BufferedSocket) -> None:
    for number in range(CHUNKS):
        queued = sock.write_nb(chunk(number))
        while queued > CHUNK:  # keep at most about one chunk queued
            wait_writable(sock)
            queued = sock.write_nb()
    while sock.flush_nb():
        wait_writable(sock)
    sock.finish()


def read_blocking(sock: BufferedSocket) -> int:
    number = 0
    while piece := sock.read(CHUNK):
        assert piece[:8] == number.to_bytes(8, "big") and piece[8:] == BASE[8:], number
        number += 1
    return number


def read_nonblocking(sock: BufferedSocket) -> int:
    number, parts, have = 0, [], 0
    while True:
        piece = sock.read_nb(CHUNK - have)
        if piece is None:
            wait_readable(sock)
            continue
        if not piece:
            assert have == 0, "the last chunk was cut short"
            return number
        parts.append(piece)
        have += len(piece)
        if have == CHUNK:
            whole = b"".join(parts)
            assert whole[:8] == number.to_bytes(8, "big") and whole[8:] == BASE[8:], number
            number, parts, have = number + 1, [], 0


@pytest.mark.parametrize("style", ["blocking", "nonblocking"])
def test_256_mib_with_flat_memory(kind: str, style: str, tmp_path: Path) -> None:
    writer_for, reader_for = ((write_blocking, read_blocking) if style == "blocking"
                              else (write_nonblocking, read_nonblocking))
    with connected(kind, tmp_path) as (client, server):
        before = reset_peak()
        start = timeref()
        writer = Background(lambda: writer_for(client))
        received = reader_for(server)
        writer.result(timeout=120)
        seconds = timeref(start)
        growth = status_kib("VmHWM") * 1024 - before
    assert received == CHUNKS
    print(f"\n{kind} {style}: 256 MiB in {seconds:.2f} s = {CHUNKS / seconds:.0f} MiB/s, "
          f"peak RSS growth {growth / 2**20:.1f} MiB")
    assert growth < GROWTH_LIMIT


def test_drain_of_256_mib_keeps_memory_flat(tmp_path: Path) -> None:
    with connected("tcp4", tmp_path) as (client, server):
        before = reset_peak()
        writer = Background(lambda: write_blocking(client))
        assert server.drain() == CHUNKS * CHUNK
        writer.result(timeout=120)
        growth = status_kib("VmHWM") * 1024 - before
    assert growth < GROWTH_LIMIT
