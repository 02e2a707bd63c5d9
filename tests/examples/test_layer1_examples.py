"""Drive every part 1 step program and exercise solution with a real client.

Each test starts the program exactly as a reader would (``python
docs/examples/layer1/...``), talks to it over loopback, asserts what the
client receives, and checks that SIGTERM stops it with exit code 0.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from support import EXAMPLES, ROOT, Program, connect, example

from layer1_sockets import tcpconnect

TIMEOUT = 20.0


def receive_until_eof(sock: socket.socket) -> bytes:
    parts = []
    while chunk := sock.recv(65536):
        parts.append(chunk)
    return b"".join(parts)


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(min(65536, size - len(data)))
        assert chunk, f"EOF after {len(data)} of {size} bytes"
        data += chunk
    return bytes(data)


def send_in_background(sock: socket.socket, data: bytes) -> threading.Thread:
    """Send data from a thread, so the test can read the echo meanwhile."""
    thread = threading.Thread(target=sock.sendall, args=(data,), daemon=True)
    thread.start()
    return thread


def assert_stops_on_sigterm(program: Program) -> None:
    assert program.stop() == 0, program.output()


# --- step 1: raw socket echo -------------------------------------------------


def test_step01_echo() -> None:
    payload = os.urandom(256 * 1024)
    with example("layer1/step01_echo.py") as (program, port):
        with connect(port) as sock:
            sender = send_in_background(sock, payload)
            echoed = receive_exactly(sock, len(payload))
            sender.join(TIMEOUT)
            sock.shutdown(socket.SHUT_WR)
            assert receive_until_eof(sock) == b""
        program.wait_for_line(rb"client gone")
        sizes = [int(m.group(1)) for m in
                 (re.match(rb"recv returned (\d+) bytes", line) for line in program.lines) if m]
        assert_stops_on_sigterm(program)
    assert echoed == payload
    # One sendall on the client became many recv calls on the server:
    # the byte stream has no message boundaries.
    assert sum(sizes) == len(payload)
    assert len(sizes) >= len(payload) // 4096
    assert max(sizes) <= 4096


def test_step01_echo_serves_clients_one_after_another() -> None:
    with example("layer1/step01_echo.py") as (program, port):
        for word in (b"first", b"second"):
            with connect(port) as sock:
                sock.sendall(word)
                assert receive_exactly(sock, len(word)) == word
        program.wait_for_line(rb"client gone", start=0)
        assert_stops_on_sigterm(program)
    assert sum(b"connected" in line for line in program.lines) == 2


# --- step 2: lines, by hand and with BufferedSocket ---------------------------

LINE_SERVERS = ["layer1/step02_line_reader.py", "layer1/step02_buffered.py"]


def converse(port: int, *pieces: bytes) -> bytes:
    """Send pieces, half-close, return everything the server answered."""
    with connect(port) as sock:
        for piece in pieces:
            sock.sendall(piece)
        sock.shutdown(socket.SHUT_WR)
        return receive_until_eof(sock)


@pytest.mark.parametrize("program_path", LINE_SERVERS)
def test_step02_lines(program_path: str) -> None:
    with example(program_path) as (program, port):
        assert converse(port, b"hello\n", b"world\n") == b"HELLO\nWORLD\n"
        # Three lines in one segment: the reader must keep what follows a newline.
        assert converse(port, b"a\nb\nc\n") == b"A\nB\nC\n"
        # Byte by byte, and a clean end without any line at all.
        assert converse(port, *(bytes([b]) for b in b"one\ntwo\n")) == b"ONE\nTWO\n"
        assert converse(port) == b""
        assert_stops_on_sigterm(program)


@pytest.mark.parametrize("program_path", LINE_SERVERS)
def test_step02_a_line_split_across_reads(program_path: str) -> None:
    with example(program_path) as (program, port):
        with connect(port) as sock:
            sock.sendall(b"hello\nwor")
            # The answer to the first line proves the server has read "wor" or
            # not yet; either way "ld\n" arrives in a later read.
            assert receive_exactly(sock, 6) == b"HELLO\n"
            sock.sendall(b"ld\n")
            assert receive_exactly(sock, 6) == b"WORLD\n"
        assert_stops_on_sigterm(program)


@pytest.mark.parametrize("program_path", LINE_SERVERS)
def test_step02_limits_and_eof(program_path: str) -> None:
    longest = b"y" * 63 + b"\n"  # exactly MAXLEN bytes, newline included
    with example(program_path) as (program, port):
        assert converse(port, longest) == longest.upper()
        assert converse(port, b"z" * 64 + b"\nok\n") == b"ERROR line too long\nOK\n"
        assert converse(port, b"x" * 100_000 + b"\nstill here\n") == (
            b"ERROR line too long\nSTILL HERE\n")
        assert converse(port, b"first\n", b"tail") == (
            b"FIRST\nERROR no newline at end of input\n")
        # A long line cut off by EOF: refused, and the connection ends cleanly.
        assert converse(port, b"w" * 200) == b"ERROR line too long\n"
        assert_stops_on_sigterm(program)


# --- step 3: non-blocking calls, poll, wait functions --------------------------


class Sender:
    """Send from a thread; remember how it ended (None: every byte went out)."""

    def __init__(self, sock: socket.socket, data: bytes, half_close: bool = False) -> None:
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(sock, data, half_close),
                                        daemon=True)
        self._thread.start()

    def _run(self, sock: socket.socket, data: bytes, half_close: bool) -> None:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError as error:
            self.error = error
        finally:
            self.done.set()

    def join(self) -> BaseException | None:
        assert self.done.wait(TIMEOUT), "the sender is stuck"
        return self.error


def test_step03_poll_serves_clients_side_by_side() -> None:
    with example("layer1/step03_poll.py") as (program, port):
        with connect(port) as first, connect(port) as second:
            program.wait_for_line(rb"clients: 2")
            # Interleaved: neither client waits for the other to finish.
            first.sendall(b"one\n")
            second.sendall(b"two\n")
            assert receive_exactly(second, 4) == b"two\n"
            assert receive_exactly(first, 4) == b"one\n"
            # Three lines in one segment; the server takes one line per round,
            # so the last two sit in the buffer: poll() must count them as ready.
            second.sendall(b"a\nb\nc\n")
            assert receive_exactly(second, 6) == b"a\nb\nc\n"
            first.shutdown(socket.SHUT_WR)
            assert receive_until_eof(first) == b""
            program.wait_for_line(rb"clients: 1")
            # A partial line is echoed as it comes: read_nb returns what is there.
            second.sendall(b"no newline yet")
            assert receive_exactly(second, 14) == b"no newline yet"
        assert_stops_on_sigterm(program)


def test_step03_poll_a_client_that_does_not_read_only_slows_itself() -> None:
    payload = os.urandom(4 * 1024 * 1024)
    with example("layer1/step03_poll.py") as (program, port):
        with connect(port) as greedy, connect(port) as polite:
            program.wait_for_line(rb"clients: 2")
            sender = Sender(greedy, payload)  # blocks once the server stops reading
            for n in range(20):
                line = b"ping %d\n" % n
                polite.sendall(line)
                assert receive_exactly(polite, len(line)) == line
            # Now the greedy client reads: every byte comes back, in order.
            assert receive_exactly(greedy, len(payload)) == payload
            assert sender.join() is None
        assert_stops_on_sigterm(program)


def test_step03_poll_survives_a_client_reset() -> None:
    with example("layer1/step03_poll.py") as (program, port):
        rude = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        rude.sendall(b"x\n")
        program.wait_for_line(rb"clients: 1")
        rude.close()  # linger 0: RST
        with connect(port) as sock:
            sock.sendall(b"still serving\n")
            assert receive_exactly(sock, 14) == b"still serving\n"
        assert_stops_on_sigterm(program)


def test_step03_idle_times_out_a_silent_client() -> None:
    with example("layer1/step03_idle.py", "--idle", "0.5") as (program, port):
        with connect(port) as sock:
            started = time.monotonic()  # before the server can start its wait
            sock.sendall(b"hello\n")
            assert receive_exactly(sock, 6) == b"hello\n"
            assert receive_until_eof(sock) == b"ERROR idle timeout\n"
            assert time.monotonic() - started >= 0.5
        program.wait_for_line(rb"idle client dropped")
        # The next client is served as usual.
        assert converse(port, b"next\n") == b"next\n"
        assert_stops_on_sigterm(program)


def test_step03_idle_keeps_a_talking_client() -> None:
    with example("layer1/step03_idle.py", "--idle", "5") as (program, port):
        with connect(port) as sock:
            for n in range(10):
                line = b"line %d\n" % n
                sock.sendall(line)
                assert receive_exactly(sock, len(line)) == line
            sock.shutdown(socket.SHUT_WR)
            assert receive_until_eof(sock) == b""
        assert_stops_on_sigterm(program)
    assert not any(b"idle client dropped" in line for line in program.lines)


# --- step 4: finish, drain, close, reset -------------------------------------

BIG_UPLOAD = b"SIZE 4194304\n" + bytes(4 * 1024 * 1024)


def test_step04_accepts_an_upload() -> None:
    body = os.urandom(50_000)
    with example("layer1/step04_ending.py") as (program, port):
        answer = converse(port, b"SIZE 50000\n", body)
        assert answer == b"OK 50000 bytes sha256=%s\n" % hashlib.sha256(body).hexdigest().encode()
        assert converse(port, b"SIZE 0\n") == (
            b"OK 0 bytes sha256=%s\n" % hashlib.sha256(b"").hexdigest().encode())
        assert converse(port, b"SIZE 10\nhello") == b"ERROR upload cut short\n"
        assert_stops_on_sigterm(program)


def test_step04_refuses_politely_with_finish_and_drain() -> None:
    with example("layer1/step04_ending.py") as (program, port):
        with connect(port) as sock:
            sender = Sender(sock, BIG_UPLOAD, half_close=True)
            # The refusal arrives, then a clean EOF (the server's FIN), while
            # the client is still sending: nothing is reset, nothing lost.
            assert receive_until_eof(sock) == b"ERROR too large\n"
            assert sender.join() is None
        program.wait_for_line(rb"drained 4194304 bytes")
        assert_stops_on_sigterm(program)


def test_step04_careless_close_turns_into_a_reset() -> None:
    # 16 MiB cannot hide in the kernels' buffers: the client is still sending
    # when the server closes, so a reset is certain. It comes at once (unread
    # input at close) or in answer to the next segment (input after close).
    upload = b"SIZE 16777216\n" + bytes(16 * 1024 * 1024)
    with example("layer1/step04_ending.py", "--careless") as (program, port):
        with connect(port) as sock:
            sender = Sender(sock, upload, half_close=True)
            try:
                receive_until_eof(sock)
            except ConnectionResetError:
                pass
            assert isinstance(sender.join(), (ConnectionResetError, BrokenPipeError))
        assert_stops_on_sigterm(program)


def test_step04_resets_a_client_that_speaks_nonsense() -> None:
    with example("layer1/step04_ending.py") as (program, port):
        with connect(port) as sock:
            sock.sendall(b"HELLO\n")
            with pytest.raises(ConnectionResetError):
                receive_until_eof(sock)
        program.wait_for_line(rb"not an upload: reset")
        assert converse(port, b"SIZE 2\nhi").startswith(b"OK 2 bytes")
        assert_stops_on_sigterm(program)


# --- step 5: TLS ----------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    certfile: Path
    keyfile: Path
    cafile: Path

    def server_args(self) -> tuple[str, ...]:
        return ("--certfile", str(self.certfile), "--keyfile", str(self.keyfile))

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cafile))


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    folder = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    issued = ca.issue_cert("localhost", "127.0.0.1")
    paths = Certificates(folder / "cert.pem", folder / "key.pem", folder / "ca.pem")
    paths.certfile.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(paths.keyfile))
    ca.cert_pem.write_to_path(str(paths.cafile))
    return paths


def test_step05_tls_echo_with_a_stdlib_client(certificates: Certificates) -> None:
    context = certificates.client_context()
    with example("layer1/step05_tls.py", *certificates.server_args()) as (program, port):
        with connect(port) as raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() in ("TLSv1.2", "TLSv1.3")
            # Three lines in one TLS record: after the first, the other two
            # wait in a buffer, and poll() must see them.
            tls.sendall(b"a\nb\nc\n")
            assert receive_exactly(tls, 6) == b"a\nb\nc\n"
            # 240 000 bytes of lines, 16 KiB at a time (one SSL socket must not
            # be used from two threads, so sending and reading take turns).
            big = b"".join(b"line %06d\n" % n for n in range(20_000))
            for start in range(0, len(big), 16384):
                piece = big[start:start + 16384]
                tls.sendall(piece)
                assert receive_exactly(tls, len(piece)) == piece
        assert_stops_on_sigterm(program)


def test_step05_tls_echo_with_a_layer1_client(certificates: Certificates) -> None:
    context = certificates.client_context()
    with example("layer1/step05_tls.py", *certificates.server_args()) as (program, port):
        with tcpconnect("127.0.0.1", port) as conn:
            conn.starttls(context, server_hostname="localhost")
            assert conn.tls
            conn.flush(b"over TLS\n", b"and again\n")
            assert conn.read(terminator=b"\n") == b"over TLS\n"
            assert conn.read(terminator=b"\n") == b"and again\n"
            conn.finish()  # close_notify, then FIN: the server sees EOF and ends too
            assert conn.read() == b""
        program.wait_for_line(rb"clients: 0")
        assert_stops_on_sigterm(program)


def test_step05_tls_refuses_plain_text_and_goes_on(certificates: Certificates) -> None:
    context = certificates.client_context()
    with example("layer1/step05_tls.py", *certificates.server_args()) as (program, port):
        with connect(port) as plain:
            plain.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                answer = receive_until_eof(plain)
            except ConnectionResetError:
                answer = b""
            assert b"GET" not in answer  # no echo: the handshake failed
        program.wait_for_line(rb"handshake failed")
        with connect(port) as raw, context.wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"fine\n")
            assert receive_exactly(tls, 5) == b"fine\n"
        assert_stops_on_sigterm(program)


def test_step05_tls_needs_a_trusted_certificate(certificates: Certificates) -> None:
    stranger = trustme.CA()  # a CA that did not sign the server's certificate
    untrusting = ssl.create_default_context(cadata=stranger.cert_pem.bytes().decode())
    with example("layer1/step05_tls.py", *certificates.server_args()) as (program, port):
        with connect(port) as raw, pytest.raises(ssl.SSLCertVerificationError):
            untrusting.wrap_socket(raw, server_hostname="localhost")
        program.wait_for_line(rb"handshake failed")
        assert_stops_on_sigterm(program)



def run_to_end(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run a client program to completion (killed and reaped on timeout)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT, check=False)


def test_tls_client_talks_to_step05(certificates: Certificates) -> None:
    client = str(EXAMPLES / "layer1/tls_client.py")
    with example("layer1/step05_tls.py", *certificates.server_args()) as (program, port):
        done = run_to_end(client, str(port), "--cafile", str(certificates.cafile),
                          "hello over TLS", "second line")
        assert (done.returncode, done.stdout) == (0, "hello over TLS\nsecond line\n")
        # The certificate is for localhost: any other name must be refused.
        wrong = run_to_end(client, str(port), "--cafile", str(certificates.cafile),
                           "--name", "example.org", "x")
        assert wrong.returncode == 1
        assert "certificate verify failed" in wrong.stderr
        assert wrong.stdout == ""
        assert_stops_on_sigterm(program)


# --- every one-client-at-a-time server survives a client's reset ----------------


def reset_after(port: int, data: bytes) -> None:
    """Connect, send data, and abort the connection with RST (SO_LINGER 0)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.sendall(data)
    sock.close()


@pytest.mark.parametrize(("program_path", "probe", "answer"), [
    ("layer1/step01_echo.py", b"ping\n", b"ping\n"),
    ("layer1/step02_line_reader.py", b"ping\n", b"PING\n"),
    ("layer1/step02_buffered.py", b"ping\n", b"PING\n"),
    ("layer1/step03_idle.py", b"ping\n", b"ping\n"),
    ("layer1/solutions/ex5_quit.py", b"ping\n", b"PING\n"),
])
def test_a_client_reset_does_not_stop_the_server(program_path: str, probe: bytes,
                                                 answer: bytes) -> None:
    with example(program_path) as (program, port):
        for _ in range(3):
            reset_after(port, b"half a li")
        assert converse(port, probe) == answer
        assert_stops_on_sigterm(program)
    assert "Traceback" not in program.output()


# --- exercise solutions --------------------------------------------------------


def test_ex1_reverse_answers_after_eof() -> None:
    message = os.urandom(300_000)
    with example("layer1/solutions/ex1_reverse.py") as (program, port):
        assert converse(port, message[:1000], message[1000:]) == message[::-1]
        assert converse(port) == b""
        assert converse(port, bytes(1024 * 1024 + 1)) == b"ERROR too large\n"
        assert_stops_on_sigterm(program)


def test_ex2_frames() -> None:
    with example("layer1/solutions/ex2_frames.py") as (program, port):
        assert converse(port, b"5\nhello3\nabc0\n") == b"5\nolleh3\ncba0\n"
        # A frame whose payload contains newlines and digits, sent byte by byte.
        frame = b"11\n12\n45\n78\n9x"
        assert converse(port, *(bytes([b]) for b in frame)) == b"11\nx9\n87\n54\n21"
        big = os.urandom(1024 * 1024)
        assert converse(port, b"%d\n" % len(big), big) == b"%d\n" % len(big) + big[::-1]
        assert converse(port, b"5\nhel") == b"ERROR frame cut short\n"
        assert converse(port, b"3\nabc-1\n") == b"3\ncbaERROR bad length\n"
        assert converse(port, b"1048577\n") == b"ERROR bad length\n"
        assert converse(port, b"007\n") == b"ERROR bad length\n"
        assert converse(port, b"9" * 50 + b"\n") == b"ERROR bad length\n"
        assert_stops_on_sigterm(program)


def wait_for_members(program: Program, count: int, start: int = 0) -> None:
    program.wait_for_line(rb"members: %d$" % count, start=start)


def test_ex3_chat_broadcasts_to_the_others() -> None:
    with example("layer1/solutions/ex3_chat.py") as (program, port):
        with connect(port) as one, connect(port) as two, connect(port) as three:
            wait_for_members(program, 3)
            one.sendall(b"hi ")  # half a line first: it must not go out alone
            one.sendall(b"all\n")
            assert receive_exactly(two, 10) == b"1: hi all\n"
            assert receive_exactly(three, 10) == b"1: hi all\n"
            two.sendall(b"yo\nand more\n")
            # The first thing "one" receives is from "two": nobody hears themselves.
            assert receive_exactly(one, 18) == b"2: yo\n2: and more\n"
            assert receive_exactly(three, 18) == b"2: yo\n2: and more\n"
            three.close()
            program.wait_for_line(rb"member 3 left; members: 2")
            one.sendall(b"bye\n")
            assert receive_exactly(two, 7) == b"1: bye\n"
        assert_stops_on_sigterm(program)


def test_ex3_chat_drops_a_member_who_stops_reading() -> None:
    line = b"x" * 1000 + b"\n"
    with example("layer1/solutions/ex3_chat.py") as (program, port):
        with connect(port) as talker, socket.socket() as sleeper:
            sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sleeper.connect(("127.0.0.1", port))
            wait_for_members(program, 2)
            # Bounded: at most 64 MiB, far beyond MAX_QUEUED plus kernel buffers.
            for _ in range(64 * 1024):
                talker.sendall(line)
                if b"too slow" in program.output().encode():
                    break
                program.drain_output()
            program.wait_for_line(rb"member 2 too slow; members: 1")
            with connect(port) as newcomer:
                wait_for_members(program, 2, start=len(program.lines) - 1)
                talker.sendall(b"still here\n")
                # Lines the talker sent earlier may still be on their way.
                received = receive_until_suffix(newcomer, b"1: still here\n")
                assert set(received.splitlines(keepends=True)) <= {b"1: " + line,
                                                                  b"1: still here\n"}
        assert_stops_on_sigterm(program)


def receive_until_suffix(sock: socket.socket, suffix: bytes, limit: int = 1 << 26) -> bytes:
    data = bytearray()
    while not data.endswith(suffix):
        chunk = sock.recv(65536)
        assert chunk and len(data) < limit, f"EOF or too much before {suffix!r}"
        data += chunk
    return bytes(data)


def drip_until_answer(sock: socket.socket, limit: float) -> tuple[bytes, float]:
    """Send a byte each time 0.05 s pass without an answer; return the answer and time."""
    started = time.monotonic()
    sock.settimeout(0.05)
    try:
        while time.monotonic() - started < limit:
            try:
                answer = sock.recv(1024)
                return answer, time.monotonic() - started
            except TimeoutError:
                sock.sendall(b"z")
        return b"", time.monotonic() - started
    finally:
        sock.settimeout(TIMEOUT)


def test_ex4_deadline_stops_a_slow_drip() -> None:
    with example("layer1/solutions/ex4_deadline.py", "--seconds", "1") as (program, port):
        with connect(port) as sock:
            sock.sendall(b"quick\n")
            assert receive_exactly(sock, 6) == b"quick\n"
            answer, elapsed = drip_until_answer(sock, limit=15.0)
            assert answer.startswith(b"ERROR too slow\n")
            # Not at once, and long before any idle timeout could matter (the
            # drip never leaves the connection silent for more than 0.05 s).
            assert 0.5 <= elapsed < 10.0
        program.wait_for_line(rb"slow client dropped")
        assert_stops_on_sigterm(program)


def test_step03_idle_is_kept_alive_by_a_slow_drip() -> None:
    # The limitation that exercise 4 fixes: an idle timeout limits silence only.
    with example("layer1/step03_idle.py", "--idle", "1") as (program, port):
        with connect(port) as sock:
            answer, elapsed = drip_until_answer(sock, limit=2.5)
            assert answer == b""  # 2.5 idle periods of dripping, and no timeout
            assert elapsed >= 2.5
            sock.sendall(b"\n")
            echo = receive_until_suffix(sock, b"\n")
            assert echo.strip(b"z") == b"\n" and len(echo) > 20
        assert_stops_on_sigterm(program)


def test_ex5_quit_answers_everything_before_it() -> None:
    junk = b"junk after quit\n" * 65536  # 1 MiB the client sends after QUIT
    with example("layer1/solutions/ex5_quit.py") as (program, port):
        with connect(port) as sock:
            sender = Sender(sock, b"a\nb\nQUIT\n" + junk, half_close=True)
            assert receive_until_eof(sock) == b"A\nB\nBYE\n"
            assert sender.join() is None
        program.wait_for_line(rb"drained %d bytes" % len(junk))
        assert converse(port, b"quit\n", b"QUIT\r\n") == b"QUIT\nBYE\n"
        assert_stops_on_sigterm(program)


def test_ex6_starttls_switches_mid_conversation(certificates: Certificates) -> None:
    context = certificates.client_context()
    with example("layer1/solutions/ex6_starttls.py", *certificates.server_args()) as (
            program, port):
        with tcpconnect("127.0.0.1", port) as conn:
            assert conn.flush(b"plain\n").read(64, b"\n") == b"PLAIN\n"
            assert conn.flush(b"STARTTLS\n").read(64, b"\n") == b"READY\n"
            conn.starttls(context, server_hostname="localhost")
            program.wait_for_line(rb"switched to TLS")
            assert conn.flush(b"secret\n").read(64, b"\n") == b"SECRET\n"
            assert conn.flush(b"STARTTLS\n").read(64, b"\n") == b"ERROR already encrypted\n"
            conn.finish()
            assert conn.read() == b""
        # A client that asks for TLS and then speaks plain text is dropped.
        with connect(port) as sock:
            sock.sendall(b"STARTTLS\n")
            assert receive_exactly(sock, 6) == b"READY\n"
            sock.sendall(b"not a client hello\n")
            program.wait_for_line(rb"client failed")
        assert converse(port, b"next\n") == b"NEXT\n"
        assert_stops_on_sigterm(program)
