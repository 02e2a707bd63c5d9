"""Request smuggling and framing: a corpus of raw requests replayed against a running server.

The corpus (``smuggling/*.txt``) holds raw requests written from RFC 9112 and
RFC 9110: Content-Length and Transfer-Encoding in every shape, chunk-size
garbage and overflow, chunk extensions, trailers, bare CR and LF, obs-fold,
NUL and control characters, whitespace before the colon, bad methods,
targets and versions, the Host rules, oversized lines and heads, and
pipelines with requests hidden in bodies. Format, one case per block::

    === name-of-the-case
    POST /front HTTP/1.1\\r\\n
    Host: x\\r\\n
    @repeat 3 X: y\\r\\n
    \\r\\n
    ---
    answers: ["200 /front", "400"]
    bodies: ["hello"]
    rule: "RFC 9112 6.3 item 5"

Input lines use the escapes of ``corpus_support.unescape`` (``\\r``,
``\\n``, ``\\t``, ``\\s``, ``\\\\``, ``\\xHH``); the file's own line breaks
are not part of the input. ``@repeat N TEXT`` stands for TEXT (escapes
allowed) N times. ``answers`` lists the responses in order, each
``STATUS [METHOD] [TARGET]``: a 2xx answer names the target the handler saw
(and the method, when it is not the one the answer's route implies);
``HEAD`` means the response has no body. ``bodies`` (optional) are the
request bodies the handler received, one per 2xx answer. ``rule`` names the
RFC rule (or the design decision) behind the expectation.

Every case is sent to one running server (``tests/hostile_apps/recorder.py``)
four ways: whole, line by line (cut after each LF), byte by byte
(TCP_NODELAY, one ``send`` per byte) and in three seeded random cuttings.
After the last byte the client half-closes, reads to the end, and checks:

* exactly the expected answers arrive, in order, then the server closes
  without a reset; every answer other than 2xx says ``Connection: close``;
* the handler saw exactly the requests answered 2xx (it writes a
  ``RECORDED`` line for each; a sentinel request on a new connection marks
  the end of the case's lines);
* the hidden-request rule: no answer and no handler call ever concerns a
  target containing ``/hidden``, the request that a lenient parser, or one
  reading the framing differently, would find inside a body.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import socket
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from corpus_support import random_pieces, unescape
from http_support import Server, http_server

SMUGGLING = Path(__file__).parent / "smuggling"
RECORDER = Path(__file__).resolve().parent.parent / "hostile_apps" / "recorder.py"
MODES = ("whole", "lines", "bytes", "random")
RANDOM_CUTTINGS = 3
TIMEOUT = 20.0
HIDDEN = "/hidden"
RECORDED = re.compile(rb"^RECORDED (\d+) (\S+) (\S+) (\d+)$")
SERVER_OPTIONS = ("--workers", "2", "--request-header-size-limit", "16384",
                  "--request-body-size-limit", "1000", "--drain-size-limit", "64",
                  "--drain-timeout", "5", "--idle-timeout", "10",
                  "--request-header-timeout", "10", "--stall-timeout", "10")


@dataclass(frozen=True)
class Answer:
    """One expected response: its status and, for a 2xx, what the handler saw."""

    status: int
    method: str | None
    target: str | None

    @classmethod
    def parse(cls, text: str) -> Answer:
        status, *rest = text.split(" ")
        method = rest[0] if len(rest) == 2 else None
        target = rest[-1] if rest else None
        return cls(int(status), method, target)

    @property
    def head_only(self) -> bool:
        return self.method == "HEAD"


@dataclass(frozen=True)
class Case:
    """One corpus case."""

    name: str
    data: bytes
    answers: tuple[Answer, ...]
    bodies: tuple[str, ...] | None
    rule: str
    where: str


def _input_line(line: str, where: str) -> bytes:
    if line.startswith("@repeat "):
        _, count, text = line.split(" ", 2)
        return unescape(text, where) * int(count)
    if line.startswith("@"):
        raise ValueError(f"{where}: unknown directive {line!r}")
    return unescape(line, where)


def _case(name: str, data: bytes, expect: dict[str, str], where: str) -> Case:
    values = {key: json.loads(value) for key, value in expect.items()}
    unknown = set(values) - {"answers", "bodies", "rule"}
    if unknown or "answers" not in values or "rule" not in values:
        raise ValueError(f"{where}: needs answers and rule, got {sorted(values)}")
    bodies = values.get("bodies")
    return Case(name, data, tuple(Answer.parse(text) for text in values["answers"]),
                None if bodies is None else tuple(bodies), values["rule"], where)


def load_file(path: Path) -> list[Case]:
    """Read every case of one corpus file."""
    cases: list[Case] = []
    name, start, section = "", 0, "outside"
    data = bytearray()
    expect: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
        where = f"{path.name}:{number}"
        if line.startswith("=== "):
            if section != "outside":
                cases.append(_case(name, bytes(data), expect, f"{path.name}:{start}"))
            name, start, section, data, expect = line[4:].strip(), number, "input", bytearray(), {}
        elif section == "input":
            if line == "---":
                section = "expect"
            else:
                data += _input_line(line, where)
        elif line.strip() and not line.startswith("#"):
            if section != "expect":
                raise ValueError(f"{where}: text outside a case")
            if line[0] == " " and expect:
                expect[list(expect)[-1]] += line
            else:
                key, _, value = line.partition(":")
                expect[key.strip()] = value
    if section != "outside":
        cases.append(_case(name, bytes(data), expect, f"{path.name}:{start}"))
    return cases


def load_corpus() -> list[Case]:
    """Every case of every corpus file, names unique across files."""
    cases = [case for path in sorted(SMUGGLING.glob("*.txt")) for case in load_file(path)]
    names = [case.name for case in cases]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate case names: {duplicates}")
    return cases


CORPUS = load_corpus()


def cuttings(case: Case, mode: str) -> list[list[bytes]]:
    """The ways `mode` cuts the case's bytes; each cutting is sent on its own connection."""
    if mode == "whole":
        return [[case.data]]
    if mode == "lines":
        return [case.data.splitlines(keepends=True)]
    if mode == "bytes":
        return [[case.data[index : index + 1] for index in range(len(case.data))]]
    rng = random.Random(zlib.crc32(case.name.encode()))
    return [random_pieces(case.data, rng) for _ in range(RANDOM_CUTTINGS)]


# -- the wire -------------------------------------------------------------------------


@dataclass
class Response:
    """A response as parsed from the bytes the server sent."""

    status: int
    headers: dict[str, str]
    body: bytes


def send_all(port: int, pieces: list[bytes]) -> tuple[bytes, bool]:
    """Send the pieces, half-close, read to the end; return what came and whether it reset."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for piece in pieces:
                if piece:
                    sock.sendall(piece)
            sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server gave up on the rest: what it answered is still to be read
        received = bytearray()
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            return bytes(received), True
        return bytes(received), False


def _take_chunked(data: bytes) -> tuple[bytes, bytes]:
    body = bytearray()
    while True:
        line, _, data = data.partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        if size == 0:
            _, _, data = data.partition(b"\r\n")
            return bytes(body), data
        body += data[:size]
        data = data[size + 2 :]


def parse_responses(data: bytes, head_only: list[bool]) -> list[Response]:
    """Cut the bytes into responses (1xx skipped); `head_only[i]` says response i has no body."""
    responses: list[Response] = []
    while data:
        head, found, data = data.partition(b"\r\n\r\n")
        assert found, f"an incomplete response head: {head!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        version, code = status_line.split(" ")[:2]
        assert version == "HTTP/1.1", status_line
        headers = {name.lower(): value for name, _, value in
                   (line.partition(": ") for line in lines)}
        status = int(code)
        if 100 <= status < 200:
            continue
        body = b""
        if len(responses) < len(head_only) and head_only[len(responses)]:
            pass
        elif headers.get("transfer-encoding") == "chunked":
            body, data = _take_chunked(data)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            body, data = data[:length], data[length:]
        else:
            body, data = data, b""
        responses.append(Response(status, headers, body))
    return responses


# -- the server and the handler's record ---------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with http_server(*SERVER_OPTIONS, app=RECORDER) as running_:
        yield running_


_sentinels = itertools.count()


def handler_saw(server: Server, mark: int) -> list[tuple[str, str]]:
    """(method, target) of each request the handler recorded since `mark`.

    A sentinel request on a new connection is recorded after every request
    of connections that have already ended, so the lines up to it are
    complete.
    """
    target = f"/sentinel-{next(_sentinels)}"
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        while sock.recv(65536):
            pass
    server.program.wait_for_line(rf"^RECORDED \d+ GET {target} ".encode(), TIMEOUT, mark)
    seen: list[tuple[str, str]] = []
    for line in server.program.lines[mark:]:
        match = RECORDED.match(line)
        if match is None:
            continue
        method, where = match[2].decode("latin-1"), match[3].decode("latin-1")
        if where == target:
            return seen
        seen.append((method, where))
    raise AssertionError("the sentinel line vanished")  # pragma: no cover


def describe(case: Case, pieces: list[bytes]) -> str:
    return f"{case.name} ({case.where}; {case.rule}); sent in {len(pieces)} piece(s)"


def check_answers(case: Case, responses: list[Response], context: str) -> None:
    statuses = [response.status for response in responses]
    assert statuses == [answer.status for answer in case.answers], context
    bodies = []
    for answer, response in zip(case.answers, responses, strict=True):
        if not 200 <= answer.status < 300:
            assert response.headers.get("connection") == "close", context
            continue
        if answer.head_only:
            continue
        echoed = json.loads(response.body)
        assert HIDDEN not in echoed["target"], context
        if answer.target is not None:
            assert echoed["target"] == answer.target, context
        if answer.method is not None:
            assert echoed["method"] == answer.method, context
        if "body" in echoed:
            bodies.append(echoed["body"])
    if case.bodies is not None:
        assert bodies == list(case.bodies), context


def check_record(case: Case, seen: list[tuple[str, str]], context: str) -> None:
    assert not [target for _, target in seen if HIDDEN in target], context
    expected = [answer for answer in case.answers if 200 <= answer.status < 300]
    assert len(seen) == len(expected), (context, seen)
    for (method, target), answer in zip(seen, expected, strict=True):
        if answer.target is not None:
            assert target == answer.target, (context, seen)
        if answer.method is not None:
            assert method == answer.method, (context, seen)


# -- the tests ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_corpus_replayed_against_the_server(server: Server, case: Case, mode: str) -> None:
    for pieces in cuttings(case, mode):
        context = describe(case, pieces)
        server.program.drain_output()
        mark = len(server.program.lines)
        received, reset = send_all(server.port, pieces)
        responses = parse_responses(received, [answer.head_only for answer in case.answers])
        assert not reset, (context, received)
        check_answers(case, responses, context)
        check_record(case, handler_saw(server, mark), context)


def test_no_worker_was_lost_to_hostile_input(server: Server) -> None:
    assert server.worker_exits() == []


def test_corpus_size_and_coverage() -> None:
    assert len(CORPUS) >= 150
    assert all(case.rule.startswith(("RFC", "DESIGN")) for case in CORPUS)
    hidden = [case for case in CORPUS if HIDDEN.encode() in case.data]
    assert len(hidden) >= 40
    statuses = {answer.status for case in CORPUS for answer in case.answers}
    assert {200, 400, 413, 414, 417, 431, 501, 505} <= statuses


def test_the_loader_reads_directives_and_continuations(tmp_path: Path) -> None:
    path = tmp_path / "one.txt"
    path.write_text("# a comment\n=== one\n@repeat 3 a\\r\nb\\s\n---\n"
                    'answers: ["200 /x",\n "400"]\nrule: "RFC 9112"\n')
    (case,) = load_file(path)
    assert case.data == b"a\ra\ra\rb "
    assert case.answers == (Answer(200, None, "/x"), Answer(400, None, None))
    path.write_text("=== two\n@unknown\n---\nanswers: []\nrule: \"RFC\"\n")
    with pytest.raises(ValueError, match="unknown directive"):
        load_file(path)
