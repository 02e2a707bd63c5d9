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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme
from support import Program, example

from layer1_sockets import tcpconnect

TIMEOUT = 20.0


@contextmanager
def connect(port: int) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    with sock:
        yield sock


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
            sock.sendall(b"hello\n")
            assert receive_exactly(sock, 6) == b"hello\n"
            started = time.monotonic()
            assert receive_until_eof(sock) == b"ERROR idle timeout\n"
            assert time.monotonic() - started >= 0.4
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
            big = b"".join(b"line %06d\n" % n for n in range(20_000))
            sender = Sender(tls, big)
            assert receive_exactly(tls, len(big)) == big
            assert sender.join() is None
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
