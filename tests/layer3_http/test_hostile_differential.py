"""Differential testing: our request parser against h11, on generated requests.

Hypothesis builds HTTP/1.x requests from the RFC 9112 grammar and, now and
then, breaks one rule on purpose. Each break carries a *deviation* tag. The
same bytes go to our parser (`HeadParser`, then `body_decoder`) and to h11
(a test-only dependency, an independent implementation of the same RFCs).
Each side ends in one of three outcomes: accepted (the whole request,
body included, was read), rejected (a protocol error), or incomplete (it
waits for more bytes).

The rules checked:

* both accept: they agree on the method, the target, the version, every
  header field other than the framing ones (name as sent, value), the body,
  and the bytes left after the request (the start of the next request; an
  agreement here is what rules out smuggling between the two);
* h11 accepts and we do not: the request carries a deviation listed in
  `WE_REFUSE`, which names the RFC rule that allows us to refuse it;
* we accept and h11 does not: the request carries a deviation listed in
  `WE_ACCEPT`, which names the RFC rule that allows us to accept it.

A few thousand examples run with the default suite; the `nightly` marker
runs 10^5 (``pytest -m nightly tests/layer3_http/test_hostile_differential.py``).
"""

from __future__ import annotations

import functools
import random
import string
from dataclasses import dataclass, field
from typing import TypeVar

import h11
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from layer3_http.protocol import ClientError, HeadParser, body_decoder

T = TypeVar("T")
DEFAULT_EXAMPLES = 3000
NIGHTLY_EXAMPLES = 100_000

WE_REFUSE: dict[str, str] = {
    "bare-lf": "RFC 9112 2.2: a recipient MAY accept a bare LF as a line end; it need not",
    "obs-fold": "RFC 9112 5.2: a server MUST either reject obs-fold with 400 or replace it",
    "field-control": "RFC 9110 5.5: field values are VCHAR, obs-text, SP and HTAB; "
                     "other CTLs are invalid and may be refused",
    "host-invalid": "RFC 9112 3.2: a Host field with an invalid value MUST get 400",
    "target-fragment": "RFC 9112 3.2: a request-target has no fragment (3: SHOULD 400)",
    "target-form": "RFC 9112 3.2: the target must be origin-, absolute-, authority- "
                   "or asterisk-form (3: SHOULD 400)",
    "target-asterisk": "RFC 9112 3.2.4: asterisk-form is only for OPTIONS",
    "target-userinfo": "RFC 9110 4.2.4: userinfo in an http(s) URI SHOULD be an error",
    "target-scheme": "RFC 9110 7.4: a server may refuse a target URI it does not serve",
    "version-other": "RFC 9110 15.6.6 (505) and DESIGN.md ('Other versions: 505'); "
                     "RFC 9110 2.5 only SHOULDs serving 1.x as 1.1",
    "connect": "RFC 9110 15.6.2: an origin server SHOULD answer 501 to a method it "
               "does not implement (CONNECT is for proxies)",
    "expect-unknown": "RFC 9110 10.1.1: a server MAY answer 417 to an unknown expectation",
    "te-and-cl": "RFC 9112 6.1: a server MAY reject a request with both "
                 "Transfer-Encoding and Content-Length",
    "te-http10": "RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 MUST be treated as faulty",
    "chunk-extension": "RFC 9112 7.1.1: chunk-ext grammar (name token, value token "
                       "or quoted-string)",
    "chunk-size-space": "RFC 9112 7.1.1: whitespace after a chunk size is allowed only "
                        "before ';'",
    "chunk-size-long": "RFC 9112 7.1: recipients MUST prevent overflow; more than 16 "
                       "hex digits are refused",
    "cl-repeated": "RFC 9110 8.6: identical repeated Content-Length values MUST either "
                   "be rejected as invalid or replaced by one; we reject them",
}
WE_ACCEPT: dict[str, str] = {
    "leading-empty-lines": "RFC 9112 2.2: a server SHOULD ignore at least one empty "
                           "line before the request line",
    "te-empty-items": "RFC 9110 5.6.1: a recipient MUST accept and ignore empty list "
                      "elements",
    "chunk-extension-space": "RFC 9112 7.1.1: chunk-ext = *( BWS \";\" BWS chunk-ext-name "
                             "[ BWS \"=\" BWS chunk-ext-val ] )",
}
FRAMING = ("content-length", "transfer-encoding")

# -- the generator -------------------------------------------------------------------------

TCHAR = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
PCHAR = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@%"
VALUE_CHARS = "".join(chr(code) for code in (*range(0x21, 0x7F), *range(0x80, 0x100))) + " \t"
CONTROLS = "".join(chr(code) for code in (*range(0x01, 0x09), *range(0x0E, 0x20), 0x7F))
NEITHER_ACCEPTS = ("method-not-token", "version-malformed", "host-missing", "host-twice",
                   "field-name-bad", "space-before-colon", "field-nul", "cl-disagree",
                   "cl-not-digits", "cl-huge", "te-unsupported", "chunk-data-end",
                   "chunk-size-bad", "leading-empty-lines-many", "bare-cr")
"""Deviations neither parser accepts (one that accepts fails the test: no rule excuses it)."""
DEVIATIONS = sorted({*WE_REFUSE, *WE_ACCEPT, *NEITHER_ACCEPTS})


@dataclass
class Plan:
    """The deviations chosen for one request, and those actually put in."""

    chosen: frozenset[str]
    applied: set[str] = field(default_factory=set)

    def wants(self, deviation: str) -> bool:
        """Whether to put `deviation` in (and note that it was)."""
        if deviation in self.chosen:
            self.applied.add(deviation)
            return True
        return False


BOOLEANS = st.booleans()


@functools.cache
def integers(low: int, high: int) -> st.SearchStrategy[int]:
    return st.integers(low, high)


@functools.cache
def tokens(min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    return st.text(TCHAR, min_size=min_size, max_size=max_size)


@functools.cache
def _choices(values: tuple[T, ...]) -> st.SearchStrategy[T]:
    return st.sampled_from(values)


def pick(draw: st.DrawFn, *values: T) -> T:
    """Draw one of `values` (the strategy is built once per set of values)."""
    strategy: st.SearchStrategy[T] = _choices(values)
    return draw(strategy)


METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS", "HEAD", "get",
                           "X-CUSTOM"]) | tokens()
SEGMENTS = st.lists(st.text(PCHAR, max_size=8), min_size=1, max_size=3)
SPECIAL_FIELDS = ("host", "expect", *FRAMING)  # drawn on purpose only, never by chance
FIELD_NAMES = st.sampled_from(["Accept", "Cookie", "X-Test", "Connection"]) | tokens().filter(
    lambda name: name.lower() not in SPECIAL_FIELDS)
FIELD_VALUES = st.text(VALUE_CHARS, max_size=20)
BODIES = st.binary(max_size=30)
SEEDS = st.integers(0, 1 << 16)
CHOSEN = st.sets(st.sampled_from(DEVIATIONS), max_size=2)


def shuffled(draw: st.DrawFn, items: list[T]) -> list[T]:
    """The items in a drawn order (seed 0, the shrink target, keeps them as they are)."""
    seed = draw(SEEDS)
    items = list(items)
    if seed:
        random.Random(seed).shuffle(items)
    return items


def insert(draw: st.DrawFn, text: str, what: str) -> str:
    position = draw(integers(0, len(text)))
    character: str = pick(draw, *what)
    return text[:position] + character + text[position:]


@st.composite
def request_lines(draw: st.DrawFn, plan: Plan) -> tuple[bytes, str]:
    """The request line; returns it and the version."""
    method = draw(METHODS)
    if plan.wants("connect"):
        method = "CONNECT"
    elif plan.wants("method-not-token"):
        method = insert(draw, method, "@/()<>\"\x00\x7f\xe9")
    if method == "CONNECT":  # a drawn token can spell it too
        plan.applied.add("connect")
    segments = draw(SEGMENTS)
    target = "/" + "/".join(segments) + pick(draw, "", "?", "?a=1&b")
    asterisk = draw(BOOLEANS) if method == "OPTIONS" else plan.wants("target-asterisk")
    if asterisk:
        target = "*"
    elif plan.wants("target-form"):
        target = target.lstrip("/") or "a"
    elif plan.wants("target-fragment"):
        target += "#part"
    elif draw(integers(0, 5)) == 0 or {"target-scheme", "target-userinfo"} & plan.chosen:
        scheme = "ftp" if plan.wants("target-scheme") else pick(draw, "http", "https", "HTTP")
        user = "user@" if plan.wants("target-userinfo") else ""
        target = f"{scheme}://{user}{pick(draw, 'a', 'b.example', 'c:8080')}{target}"
    version = pick(draw, "HTTP/1.1", "HTTP/1.1", "HTTP/1.0")
    if plan.wants("version-other"):
        version = pick(draw, "HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/3.0")
    elif plan.wants("version-malformed"):
        version = pick(draw, "HTTP/1.10", "http/1.1", "HTTP/1", "HTTP/01.1")
    return f"{method} {target} {version}".encode("latin-1"), version


@st.composite
def field_lines(draw: st.DrawFn, plan: Plan) -> list[bytes]:
    """Host and other fields, with at most one deviation in one of them."""
    host = pick(draw, "a", "b.example:8080", "[::1]", "", "[::1]:80", "c:")
    if plan.wants("host-invalid"):
        host = pick(draw, "a b", "u@h", "h/p", "h:8a", "[::1")
    lines = [] if plan.wants("host-missing") else [f"Host: {host}"]
    if plan.wants("host-twice"):
        lines.append("Host: other")
    for _ in range(draw(integers(0, 4))):
        name, value = draw(FIELD_NAMES), draw(FIELD_VALUES)
        lines.append(f"{name}:{pick(draw, '', ' ', chr(9))}{value}")
    if plan.wants("expect-unknown"):
        lines.append(pick(draw, "Expect: teapot", "Expect: 100-continue, x"))
    lines = shuffled(draw, lines)
    if lines:
        index = draw(integers(0, len(lines) - 1))
        name, colon, value = lines[index].partition(":")
        if plan.wants("field-control"):
            value = insert(draw, value + "v", CONTROLS)
        elif plan.wants("field-nul"):
            value = insert(draw, value, "\x00")
        elif plan.wants("bare-cr"):
            value = insert(draw, value + "v", "\r") + "v"
        elif plan.wants("field-name-bad"):
            name = insert(draw, name, "@/()\x00\xe9")
        elif plan.wants("space-before-colon"):
            name += pick(draw, " ", "\t")
        elif plan.wants("obs-fold"):
            value += "\r\n" + pick(draw, " ", "\t") + "folded"
        lines[index] = name + colon + value
    return [line.encode("latin-1") for line in lines]


def chunk_size_line(draw: st.DrawFn, plan: Plan, size: int) -> bytes:
    digits = f"{size:x}".upper() if draw(BOOLEANS) else f"{size:x}"
    if plan.wants("chunk-size-long"):
        digits = digits.rjust(draw(integers(17, 20)), "0")
    elif plan.wants("chunk-size-bad"):
        digits = pick(draw, "0x", "-", "+", " ") + digits
    line = digits.encode()
    if draw(integers(0, 4)) == 0:
        space = b" " if plan.wants("chunk-extension-space") else b""
        value = pick(draw, b"", b"=v", b'="q s"', b"=tok")
        line += space + b";" + space + draw(tokens(1, 5)).encode() + value
    if plan.wants("chunk-extension"):
        line += pick(draw, b";", b";a=", b"; a b", b';a="open', b";a=b c")
    if plan.wants("chunk-size-space"):
        line += pick(draw, b" ", b"\t")
    return line


def chunked_body(draw: st.DrawFn, plan: Plan, body: bytes) -> bytes:
    chunks = []
    position = 0
    while position < len(body):
        size = draw(integers(1, len(body) - position))
        end = b"\r\n" if not plan.wants("chunk-data-end") else pick(draw, b"", b"\n")
        chunks.append(chunk_size_line(draw, plan, size) + b"\r\n" +
                      body[position : position + size] + end)
        position += size
    trailers = pick(draw, b"", b"", b"X-T: 1\r\n", b"A: b\r\nC:\r\n")
    return b"".join(chunks) + pick(draw, b"0", b"000") + b"\r\n" + trailers + b"\r\n"


@st.composite
def framings(draw: st.DrawFn, plan: Plan, version: str) -> tuple[list[bytes], bytes]:
    """The framing fields and the body as sent."""
    body = draw(BODIES)
    kind = pick(draw, "none", "length", "chunked")
    if plan.chosen & {"te-and-cl", "te-http10", "te-empty-items", "te-unsupported"} or any(
            name.startswith("chunk") for name in plan.chosen):
        kind = "chunked"
    if kind == "length" or plan.chosen & {"cl-huge", "cl-disagree", "cl-not-digits",
                                          "cl-repeated"}:
        value = str(len(body)).rjust(pick(draw, 1, 1, 3), "0").encode()
        if plan.wants("cl-huge"):
            value = b"1" + b"0" * draw(integers(18, 19))
        elif plan.wants("cl-not-digits"):
            value = pick(draw, b"+", b"-", b"0x") + value
        lines = [b"Content-Length: " + value]
        if plan.wants("cl-disagree"):
            lines.append(b"Content-Length: 1" + value)
        elif plan.wants("cl-repeated"):
            if draw(BOOLEANS):
                lines.append(pick(draw, b"Content-Length: ", b"Content-Length:  ") + value)
            else:
                lines[0] += pick(draw, b", ", b",") + value
        return lines, body
    if kind == "chunked":
        coding = pick(draw, b"chunked", b"Chunked", b"CHUNKED")
        if plan.wants("te-unsupported"):
            coding = pick(draw, b"gzip, chunked", b"chunked, gzip", b"identity")
        elif plan.wants("te-empty-items"):
            coding = b", " + coding
        lines = [b"Transfer-Encoding: " + coding]
        if version == "HTTP/1.0":
            plan.applied.add("te-http10")
        if plan.wants("te-and-cl"):
            lines.append(b"Content-Length: " + str(len(body)).encode())
        return lines, chunked_body(draw, plan, body)
    return [], b""


@st.composite
def requests(draw: st.DrawFn) -> tuple[bytes, frozenset[str]]:
    """One request, sometimes with one or two rules broken, and its deviations.

    Bytes after the request (the start of a next one) come with a quarter of
    the requests, so the two parsers must also agree where a request ends.
    """
    chosen = draw(CHOSEN) if draw(BOOLEANS) else set()
    plan = Plan(frozenset(chosen))
    empty_lines = 0
    if plan.wants("leading-empty-lines"):
        empty_lines = draw(integers(1, 4))
    elif plan.wants("leading-empty-lines-many"):
        empty_lines = 5
    request_line, version = draw(request_lines(plan))
    fields = draw(field_lines(plan))
    framing_fields, body = draw(framings(plan, version))
    lines = [request_line, *shuffled(draw, fields + framing_fields)]
    ends = [b"\r\n"] * len(lines)
    if plan.wants("bare-lf"):
        ends[draw(integers(0, len(lines) - 1))] = b"\n"
    head = b"".join(line + end for line, end in zip(lines, ends, strict=True))
    data = b"\r\n" * empty_lines + head + b"\r\n" + body
    if draw(integers(0, 3)) == 0:
        data += b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"[: draw(integers(1, 33))]
    return data, frozenset(plan.applied)


# -- the two parsers -------------------------------------------------------------------------


@dataclass(frozen=True)
class Parsed:
    """What a parser made of the bytes."""

    outcome: str  # "accepted", "rejected" or "incomplete"
    method: str = ""
    target: str = ""
    version: str = ""
    fields: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    rest: bytes = b""
    error: str = ""


def ours(data: bytes) -> Parsed:
    """Parse with `HeadParser`, then the `body_decoder` the head asks for."""
    parser = HeadParser()
    try:
        head = parser.feed(data)
        if head is None:
            return Parsed("incomplete")
        decoder = body_decoder(head, body_size_limit=1 << 62)
        pieces, rest = [], parser.leftover
        if not decoder.done:
            pieces = decoder.feed(rest)
            rest = decoder.leftover
    except ClientError as error:
        return Parsed("rejected", error=str(error))
    if not decoder.done:
        return Parsed("incomplete")
    fields = tuple((name, value) for name, value in head.headers if name.lower() not in FRAMING)
    return Parsed("accepted", head.method, head.target, "HTTP/{}.{}".format(*head.version),
                  fields, b"".join(pieces), rest)


def theirs(data: bytes) -> Parsed:
    """Parse with h11, as a server would."""
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=1 << 20)
    connection.receive_data(data)
    body = bytearray()
    request = None
    try:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                return Parsed("incomplete")
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
    except h11.RemoteProtocolError as error:
        return Parsed("rejected", error=str(error))
    assert request is not None
    fields = tuple((name.decode("latin-1"), value.decode("latin-1"))
                   for name, value in request.headers.raw_items()
                   if name.decode("latin-1").lower() not in FRAMING)
    return Parsed("accepted", request.method.decode("latin-1"), request.target.decode("latin-1"),
                  "HTTP/" + request.http_version.decode("latin-1"), fields, bytes(body),
                  connection.trailing_data[0])


# -- the comparison ------------------------------------------------------------------------


def compare(data: bytes, deviations: frozenset[str]) -> tuple[str, str]:
    """Parse `data` both ways; fail unless the outcomes agree or a named rule explains why not.

    Returns:
        The two outcomes, ours first.
    """
    mine, other = ours(data), theirs(data)
    context = f"{data!r}, deviations {sorted(deviations)}, ours {mine}, h11 {other}"
    if mine.outcome == "accepted" and other.outcome == "accepted":
        assert mine == other, context
    elif other.outcome == "accepted":
        assert deviations & WE_REFUSE.keys(), f"we refuse what h11 accepts: {context}"
    elif mine.outcome == "accepted":
        assert deviations & WE_ACCEPT.keys(), f"we accept what h11 refuses: {context}"
    return mine.outcome, other.outcome


@settings(max_examples=DEFAULT_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(requests())
def test_we_agree_with_h11_or_name_the_rule(request: tuple[bytes, frozenset[str]]) -> None:
    mine, other = compare(*request)
    event(f"ours {mine}, h11 {other}")  # the mix shows with --hypothesis-show-statistics


@pytest.mark.nightly
@pytest.mark.timeout(3600)
@settings(max_examples=NIGHTLY_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(requests())
def test_we_agree_with_h11_or_name_the_rule_nightly(request: tuple[bytes, frozenset[str]]) -> None:
    mine, other = compare(*request)
    event(f"ours {mine}, h11 {other}")


# -- each rule is a real disagreement, and the comparison can fail -----------------------------

CHUNKED_HEAD = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
DISAGREEMENTS: dict[str, bytes] = {
    "bare-lf": b"GET / HTTP/1.1\nHost: a\r\n\r\n",
    "obs-fold": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n",
    "field-control": b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
    "host-invalid": b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    "target-fragment": b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n",
    "target-form": b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    "target-asterisk": b"GET * HTTP/1.1\r\nHost: a\r\n\r\n",
    "target-userinfo": b"GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    "target-scheme": b"GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
    "version-other": b"GET / HTTP/1.2\r\nHost: a\r\n\r\n",
    "connect": b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
    "expect-unknown": b"GET / HTTP/1.1\r\nHost: a\r\nExpect: teapot\r\n\r\n",
    "te-and-cl": CHUNKED_HEAD[:-2] + b"Content-Length: 5\r\n\r\n0\r\n\r\n",
    "te-http10": b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunk-extension": CHUNKED_HEAD + b"1;\r\na\r\n0\r\n\r\n",
    "chunk-size-space": CHUNKED_HEAD + b"1 \r\na\r\n0\r\n\r\n",
    "chunk-size-long": CHUNKED_HEAD + b"00000000000000001\r\na\r\n0\r\n\r\n",
    "leading-empty-lines": b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "te-empty-items": CHUNKED_HEAD.replace(b": chunked", b": , chunked") + b"0\r\n\r\n",
    "chunk-extension-space": CHUNKED_HEAD + b"1 ;a\r\na\r\n0\r\n\r\n",
    "cl-repeated": b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                   b"Content-Length: 1\r\n\r\na",
}


def test_every_rule_has_an_example() -> None:
    assert DISAGREEMENTS.keys() == WE_REFUSE.keys() | WE_ACCEPT.keys()


@pytest.mark.parametrize("deviation", sorted(DISAGREEMENTS))
def test_each_rule_names_a_real_disagreement(deviation: str) -> None:
    data = DISAGREEMENTS[deviation]
    expected = ("rejected", "accepted") if deviation in WE_REFUSE else ("accepted", "rejected")
    assert compare(data, frozenset({deviation})) == expected
    with pytest.raises(AssertionError, match="h11"):
        compare(data, frozenset())  # the same bytes without the excuse fail the comparison


def test_agreement_means_equal_values() -> None:
    data = b"POST /a?b HTTP/1.1\r\nHost: h\r\nX-A:  1 \r\nContent-Length: 2\r\n\r\nhiGET"
    mine, other = ours(data), theirs(data)
    assert mine == other
    assert (mine.method, mine.target, mine.fields, mine.body, mine.rest) == (
        "POST", "/a?b", (("Host", "h"), ("X-A", "1")), b"hi", b"GET")


FOUND_BY_THE_NIGHTLY_RUN = [
    # An empty Expect is an empty list: no expectation, nothing to refuse (it got 417).
    b"GET / HTTP/1.1\r\nHost: a\r\nEXPECT:\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nExpect: ,\r\n\r\n",
]


@pytest.mark.parametrize("data", FOUND_BY_THE_NIGHTLY_RUN)
def test_what_the_long_run_found_stays_fixed(data: bytes) -> None:
    assert compare(data, frozenset()) == ("accepted", "accepted")
