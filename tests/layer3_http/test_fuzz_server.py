"""A mutation fuzzer against the whole running server, over real sockets.

The parsers have their own property tests; this one fuzzes what sits
around them too: the master's holding and dispatch, the hand-over to a
worker, the connection loop, the body decoders behind a real handler,
error answers and the lingering close. The seeds are every raw request of
the parser corpus (``corpus/``: heads as they are, chunked and multipart
bodies behind a matching head) and of the smuggling corpus
(``smuggling/``). Each input is a seed with one to four mutations (bit
flips, random bytes, inserted protocol tokens, deleted, repeated or
swapped spans and lines, numbers replaced, two seeds spliced, a cut), at
most 64 KiB, drawn from a seeded `random.Random`, so a failure names the
seed and the index that replay it.

One server for the module (``tests/layer3_http/apps/fuzz_app.py``, which
reads every body, 2 workers, timeouts of a second or less). Each input is
sent on a fresh connection, which then half-closes; the server must, within
`BOUND` seconds:

* answer with zero or more well-formed HTTP/1.1 responses (status line,
  header fields by the RFC 9110 grammar, one framing: ``Content-Length``
  exactly matched, or ``chunked`` correctly coded, or the end of the
  connection; nothing after a ``Connection: close`` answer), then
* close the connection cleanly (no reset);

and no worker may die: the master's log has no "was killed" or "exited
with status" line and the workers' PIDs are the ones it started with.

The short form (1,000 inputs, a few seconds) runs in the default suite; the
nightly form (``-m nightly``) runs 10^5.
"""

from __future__ import annotations

import os
import random
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from corpus_support import load, unescape
from http_support import APPS, Server, http_server

SMUGGLING = Path(__file__).parent / "smuggling"
CORPUS = Path(__file__).parent / "corpus"
FUZZ_APP = APPS / "fuzz_app.py"
BOUND = 8.0
MAX_INPUT = 64 * 1024
THREADS = 4
SHORT_COUNT = 1000
NIGHTLY_COUNT = 100_000
SEED = int(os.environ.get("FUZZ_SEED", "20261208"))
SERVER_OPTIONS = ("--workers", "2", "--idle-timeout", "1", "--request-header-timeout", "1",
                  "--stall-timeout", "1", "--drain-timeout", "0.5", "--response-timeout", "10",
                  "--request-header-size-limit", "16384", "--request-body-size-limit", "65536",
                  "--drain-size-limit", "4096")
DEATH = re.compile(rb"worker \d+ (?:was killed|exited with status)")
STATUS_LINE = re.compile(rb"HTTP/1\.1 ([1-5][0-9][0-9]) [\t\x20-\x7e\x80-\xff]*\r\n")
FIELD = re.compile(rb"([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*"
                   rb"([\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?"
                   rb"[ \t]*")
TOKENS = (
    b"\r\n", b"\n", b"\r", b" ", b"\t", b":", b";", b",", b"\x00", b"\x7f", b"\xff", b"\"",
    b"0", b"1", b"-1", b"+5", b"0x10", b"ffffffffffffffff", b"99999999999999999999",
    b"Content-Length: 5\r\n", b"Content-Length: 0\r\n", b"Content-Length: 5, 5\r\n",
    b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: gzip, chunked\r\n",
    b"Expect: 100-continue\r\n", b"Host: x\r\n", b"Connection: close\r\n",
    b"Connection: keep-alive\r\n", b"0\r\n\r\n", b"5\r\nhello\r\n", b"5;a=b\r\nhello\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
    b"HTTP/1.0", b"HTTP/1.1", b"HTTP/2.0", b"%00", b"%2e%2e/", b"//", b"?", b"#", b"*",
    b"Range: bytes=0-\r\n", b"Cookie: a=b; c\r\n", b"Trailer: x\r\n",
    b"Content-Type: multipart/form-data; boundary=XyZ\r\n",
    b"Content-Type: application/x-www-form-urlencoded\r\n", b"--XyZ\r\n", b"--XyZ--\r\n",
    b"Content-Disposition: form-data; name=\"a\"\r\n",
)


def _raw_inputs(path: Path) -> list[bytes]:
    """The raw inputs of a smuggling corpus file (``@repeat N TEXT`` expanded)."""
    inputs: list[bytes] = []
    data: bytearray | None = None
    for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
        if line.startswith("=== "):
            data = bytearray()
        elif data is not None and line == "---":
            inputs.append(bytes(data))
            data = None
        elif data is not None:
            where = f"{path.name}:{number}"
            if line.startswith("@repeat "):
                _, count, text = line.split(" ", 2)
                data += unescape(text, where) * int(count)
            else:
                data += unescape(line, where)
    return inputs


def seeds() -> list[bytes]:
    """Every raw request of both corpora, bodies given a matching head."""
    found = [case.data for name in ("heads_valid.txt", "heads_invalid.txt")
             for case in load(name)]
    for case in load("chunked.txt"):
        found.append(b"POST /chunked HTTP/1.1\r\nHost: x\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + case.data)
    for case in load("multipart.txt"):
        kind = case.expect.get("content_type", "multipart/form-data; boundary=XyZ")
        found.append(f"POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: {kind}\r\n"
                     f"Content-Length: {len(case.data)}\r\n\r\n".encode("latin-1") + case.data)
    for path in sorted(SMUGGLING.glob("*.txt")):
        found.extend(_raw_inputs(path))
    return [seed for seed in found if seed]


def _span(rng: random.Random, data: bytes) -> tuple[int, int]:
    start = rng.randrange(len(data) + 1)
    return start, min(len(data), start + rng.randint(1, 16))


def mutate(rng: random.Random, data: bytes, pool: list[bytes]) -> bytes:
    """One random mutation of `data` (see the module's docstring)."""
    kind = rng.randrange(10)
    if not data:
        return rng.choice(TOKENS)
    position = rng.randrange(len(data))
    if kind == 0:
        return data[:position] + bytes([data[position] ^ (1 << rng.randrange(8))]) \
            + data[position + 1:]
    if kind == 1:
        return data[:position] + bytes([rng.randrange(256)]) + data[position + 1:]
    if kind == 2:
        return data[:position] + rng.choice(TOKENS) + data[position:]
    if kind == 3:
        start, end = _span(rng, data)
        return data[:start] + data[end:]
    if kind == 4:
        start, end = _span(rng, data)
        return data[:start] + data[start:end] * rng.choice((2, 3, 100, 1000)) + data[start:]
    if kind == 5:
        numbers = list(re.finditer(rb"[0-9a-fA-F]+", data))
        if numbers:
            match = rng.choice(numbers)
            replacement = rng.choice((b"0", b"1", b"5", b"10", b"ffff", b"4294967296",
                                      b"99999999999999999999", b"-1", b""))
            return data[:match.start()] + replacement + data[match.end():]
        return data
    if kind == 6:
        other = rng.choice(pool)
        return data[:position] + other[rng.randrange(len(other) + 1):]
    lines = data.split(b"\r\n")
    index = rng.randrange(len(lines))
    if kind == 7:
        lines.insert(index, lines[rng.randrange(len(lines))])
    elif kind == 8:
        del lines[index]
    else:
        return data[:position]
    return b"\r\n".join(lines)


def generate(count: int, seed: int = SEED) -> Iterator[tuple[int, bytes]]:
    """`count` mutated inputs, with their index (reproducible from `seed`)."""
    pool = seeds()
    rng = random.Random(seed)
    for index in range(count):
        data = rng.choice(pool)
        for _ in range(rng.choice((1, 1, 1, 2, 2, 3, 4))):
            data = mutate(rng, data, pool)
        yield index, data[:MAX_INPUT]


def _chunked_end(data: bytes, start: int) -> int | None:
    """Where a well-formed chunked body starting at `start` ends (trailers included)."""
    position = start
    while True:
        line_end = data.find(b"\r\n", position)
        if line_end < 0 or not re.fullmatch(rb"[0-9a-fA-F]{1,16}", data[position:line_end]):
            return None
        size = int(data[position:line_end], 16)
        position = line_end + 2
        if size == 0:
            while True:  # trailer fields, then the empty line
                line_end = data.find(b"\r\n", position)
                if line_end < 0:
                    return None
                if line_end == position:
                    return position + 2
                if not FIELD.fullmatch(data[position:line_end]):
                    return None
                position = line_end + 2
        if data[position + size:position + size + 2] != b"\r\n":
            return None
        position += size + 2


def check_answers(data: bytes, sent: bytes) -> str | None:
    """None if `data` is zero or more well-formed responses; else what is wrong."""
    position = 0
    may_be_head = b"HEAD" in sent
    while position < len(data):
        status = STATUS_LINE.match(data, position)
        if status is None:
            return f"no status line at byte {position}"
        head_end = data.find(b"\r\n\r\n", status.start())
        if head_end < 0:
            return "a head without its empty line"
        fields: dict[str, list[str]] = {}
        for line in data[status.end():head_end + 2].split(b"\r\n")[:-1]:
            match = FIELD.fullmatch(line)
            if match is None:
                return f"a malformed header field {line[:80]!r}"
            value = (match.group(2) or b"").decode("latin-1")
            fields.setdefault(match.group(1).decode().lower(), []).append(value)
        code = int(status.group(1))
        position = head_end + 4
        lengths = fields.get("content-length", [])
        chunked = fields.get("transfer-encoding", [])
        closes = "close" in ",".join(fields.get("connection", [])).lower()
        if len(lengths) > 1 or (lengths and chunked):
            return f"two framings in a {code} answer: {fields}"
        if code == 101 or (100 <= code < 200 and (lengths or chunked)):
            return f"a {code} answer with a body or a switch"
        if 100 <= code < 200 or code in (204, 304):
            continue
        if chunked:
            if chunked != ["chunked"]:
                return f"Transfer-Encoding {chunked}"
            end = _chunked_end(data, position)
            if end is None:
                return "a malformed chunked body"
            position = end
        elif lengths:
            if not lengths[0].isdigit():
                return f"Content-Length {lengths[0]!r}"
            end = position + int(lengths[0])
            if end <= len(data) and (end == len(data) or data.startswith(b"HTTP/1.1 ", end)):
                position = end
            elif not (may_be_head and (position == len(data)
                                       or data.startswith(b"HTTP/1.1 ", position))):
                return f"a body that does not match its Content-Length {lengths[0]}"
        else:
            position = len(data)  # framed by the end of the connection
        if closes and position != len(data):
            return "bytes after a Connection: close answer"
    return None


@dataclass(frozen=True)
class Failure:
    index: int
    data: bytes
    problem: str

    def __str__(self) -> str:
        return f"input {self.index} (FUZZ_SEED={SEED}): {self.problem}; sent {self.data[:600]!r}"


def send(port: int, index: int, data: bytes) -> Failure | None:
    """Send one input on a new connection, half-close, read to the end; check it."""
    received = bytearray()
    deadline = time.monotonic() + BOUND
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as sock:
            try:
                sock.sendall(data)
                sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server refused early and closed: what it said is read below
            while True:
                sock.settimeout(max(0.01, deadline - time.monotonic()))
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
    except TimeoutError:
        return Failure(index, data, f"not closed within {BOUND} s; got {bytes(received[:200])!r}")
    except ConnectionResetError:
        return Failure(index, data, f"reset after {bytes(received[:200])!r}")
    problem = check_answers(bytes(received), data)
    return None if problem is None else Failure(
        index, data, f"{problem}; got {bytes(received[:300])!r}")


def workers(server: Server) -> set[int]:
    with open(f"/proc/{server.program.pid}/task/{server.program.pid}/children") as file:
        return {int(pid) for pid in file.read().split()}


@dataclass
class Fuzzed:
    """The module's server and its log file (a file: a log pipe nobody reads would fill)."""

    server: Server
    log: Path

    def deaths(self) -> list[bytes]:
        return [line for line in self.log.read_bytes().splitlines() if DEATH.search(line)]


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    log = tmp_path_factory.mktemp("fuzz") / "server.log"
    with http_server(*SERVER_OPTIONS, "--logfile", str(log), app=FUZZ_APP) as server:
        deadline = time.monotonic() + 20
        while len(workers(server)) < 2 and time.monotonic() < deadline:
            server.program.drain_output(0.1)
        yield Fuzzed(server, log)


def fuzz(fuzzed: Fuzzed, count: int) -> None:
    """Run `count` inputs against the server; assert all answered well and no worker died."""
    server = fuzzed.server
    before = workers(server)
    assert len(before) == 2
    failures: list[Failure] = []
    with ThreadPoolExecutor(THREADS) as pool:
        for failure in pool.map(lambda item: send(server.port, *item), generate(count)):
            if failure is not None:
                failures.append(failure)
    assert b"forked worker" in fuzzed.log.read_bytes()  # the log is the master's
    assert fuzzed.deaths() == []
    assert workers(server) == before
    assert failures == [], "\n".join(map(str, failures[:5]))


def test_the_seeds_cover_both_corpora() -> None:
    found = seeds()
    assert len(found) > 400
    assert any(b"Transfer-Encoding: chunked" in seed for seed in found)
    assert any(b"multipart/form-data" in seed for seed in found)


def test_generation_is_reproducible() -> None:
    assert list(generate(50, seed=7)) == list(generate(50, seed=7))
    assert list(generate(50, seed=7)) != list(generate(50, seed=8))


@pytest.mark.parametrize(("answer", "problem"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", None),
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"2\r\nok\r\n0\r\n\r\n", None),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok", "does not match"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nok", "does not match"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nok",
     "two framings"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokk0\r\n\r\n", "chunked"),
    (b"HTTP/1.1 400 Bad\r\nConnection: close\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\n"
     b"Content-Length: 0\r\n\r\n", "after a Connection: close"),
    (b"HTTP/1.1 200 OK\r\nBad Field: x\r\nContent-Length: 0\r\n\r\n", "malformed header"),
    (b"HTTP/1.0 200 OK\r\n\r\n", "no status line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", "without its empty line"),
])
def test_the_answer_checker_catches_malformed_answers(answer: bytes, problem: str | None) -> None:
    found = check_answers(answer, b"GET / HTTP/1.1\r\n\r\n")
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_whole_server_fuzz_short(fuzzed: Fuzzed) -> None:
    fuzz(fuzzed, SHORT_COUNT)


@pytest.mark.nightly
@pytest.mark.timeout(3 * 3600)
def test_whole_server_fuzz_nightly(fuzzed: Fuzzed) -> None:
    fuzz(fuzzed, NIGHTLY_COUNT)
