"""What it costs a worker to tell the master its state: a scoreboard slot or a message.

The master sizes its pools from each worker's state (idle, busy). Workers
that accept for themselves can tell it in two ways:

* write their slot of the shared scoreboard (`layer2_prefork._scoreboard`):
  two `struct.pack_into` per request, no system call, the master reads the
  slots when its loop runs;
* send a message on each change (the `I` message of the original model,
  plus one for "busy"): a `send` per change in the worker, and a wake-up,
  a `recv` and a decode in the master.

This script measures both on this machine, in one run, in the worker and in
the master, and prints microseconds per request. Standard library only:

    python3 bench/scoreboard.py [--requests N]
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from layer2_prefork._protocol import TO_MASTER, Decoder, Kind, encode
from layer2_prefork._scoreboard import Scoreboard, Writer


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def scoreboard(requests: int) -> tuple[float, float]:
    """Worker side: busy and idle per request; master side: one read of 16 slots per 50 ms."""
    board = Scoreboard(16)
    writer = Writer(board, board.claim())
    started = cpu()
    for _ in range(requests):
        now = time.monotonic()
        writer.busy(0, now, accepted=True)
        writer.idle(now)
    worker = (cpu() - started) / requests
    reads = 1000
    started = cpu()
    for _ in range(reads):
        for slot in range(16):
            board.read(slot)
    per_read = (cpu() - started) / reads
    return worker * 1e6, per_read * 1e6


def messages(requests: int) -> tuple[float, float]:
    """A worker process sends two messages per request; the master reads them as they come."""
    master_end, worker_end = socket.socketpair()
    frame = encode(Kind.GOODBYE)  # any six-byte frame the master accepts
    pid = os.fork()
    if pid == 0:
        master_end.close()
        for _ in range(requests):
            worker_end.send(frame)  # busy
            worker_end.send(frame)  # idle
        worker_end.close()
        os._exit(0)
    worker_end.close()
    decoder = Decoder(TO_MASTER)
    started = cpu()
    count = 0
    while True:
        data = master_end.recv(65536)
        if not data:
            break
        decoder.feed(data)
        while decoder.next_message() is not None:
            count += 1
    master = (cpu() - started) / requests
    os.waitpid(pid, 0)
    worker = children_cpu() / requests
    assert count == 2 * requests, count
    return worker * 1e6, master * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    requests = parser.parse_args().requests
    board_worker, board_read = scoreboard(requests)
    message_worker, message_master = messages(requests)
    print(f"scoreboard: worker {board_worker:.2f} us CPU per request; master "
          f"{board_read:.2f} us per reading of 16 slots (20 readings a second)")
    print(f"messages:   worker {message_worker:.2f} us CPU per request; master "
          f"{message_master:.2f} us per request (at best: messages read in batches)")
    print(f"ratio (worker CPU, messages / scoreboard): {message_worker / board_worker:.1f}")


if __name__ == "__main__":
    main()
