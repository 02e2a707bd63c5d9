"""Hidden tests for part 1's exercises (not in the hand-out; run by tools/grade.py)."""

from __future__ import annotations

import os
import socket
import ssl
import struct
import time
from pathlib import Path

import pytest
import trustme
from hidden_support import (
    connect,
    converse,
    read_line,
    receive_exactly,
    receive_until_eof,
    stops_cleanly,
)
from support import example

from layer1_sockets import tcpconnect


def test_ex1_exactly_the_limit_is_reversed_and_clients_follow_one_another() -> None:
    message = os.urandom(1024 * 1024)
    with example("layer1/solutions/ex1_reverse.py") as (program, port):
        assert converse(port, message) == message[::-1]
        assert converse(port, *(bytes([b]) for b in b"stressed")) == b"desserts"
        assert converse(port, b"\x00\n\xff") == b"\xff\n\x00"
        stops_cleanly(program)


def test_ex1_a_client_that_resets_does_not_stop_the_server() -> None:
    with example("layer1/solutions/ex1_reverse.py") as (program, port):
        sock = connect(port)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(b"half")
        sock.close()
        assert converse(port, b"live") == b"evil"
        stops_cleanly(program)


def test_ex2_the_empty_frame_and_the_largest_length() -> None:
    payload = os.urandom(1_000_000)
    with example("layer1/solutions/ex2_frames.py") as (program, port):
        assert converse(port, b"0\n2\nab0\n") == b"0\n2\nba0\n"
        assert converse(port, b"1000000\n", payload) == b"1000000\n" + payload[::-1]
        assert converse(port, b"2000000\n") == b"ERROR bad length\n"
        stops_cleanly(program)


def test_ex2_more_malformed_lengths() -> None:
    with example("layer1/solutions/ex2_frames.py") as (program, port):
        for head in (b"+5\n", b" 5\n", b"5 \n", b"0x5\n", b"\n", b"abc\n"):
            # nothing follows the bad length, so closing cannot turn into a reset
            assert converse(port, head) == b"ERROR bad length\n", head
        stops_cleanly(program)


def test_ex3_numbers_are_never_reused_and_long_lines_stay_whole() -> None:
    with example("layer1/solutions/ex3_chat.py") as (program, port):
        with connect(port) as one, connect(port) as two:
            program.wait_for_line(rb"members: 2$")
            two.close()
            program.wait_for_line(rb"member 2 left; members: 1$")
            with connect(port) as three:
                program.wait_for_line(rb"members: 2$", start=len(program.lines) - 1)
                line = b"y" * 900 + b"\n"
                for index in range(0, len(line), 7):  # in small pieces
                    one.sendall(line[index:index + 7])
                assert receive_exactly(three, 3 + len(line)) == b"1: " + line
                three.sendall(b"hello\n")
                assert receive_exactly(one, 9) == b"3: hello\n"
        stops_cleanly(program)


def test_ex4_every_line_gets_its_own_deadline() -> None:
    with example("layer1/solutions/ex4_deadline.py", "--seconds", "0.5") as (program, port):
        with connect(port) as sock:
            started = time.monotonic()
            while time.monotonic() - started < 1.5:  # three deadlines' worth, bounded
                sock.sendall(b"quick\n")
                assert read_line(sock) == b"quick\n"
        stops_cleanly(program)


def test_ex4_a_silent_client_is_dropped_too() -> None:
    with example("layer1/solutions/ex4_deadline.py", "--seconds", "0.5") as (program, port):
        with connect(port) as sock:
            assert receive_until_eof(sock) == b"ERROR too slow\n"
        program.wait_for_line(rb"slow client dropped")
        stops_cleanly(program)


def test_ex5_quit_first_and_quit_sent_alone() -> None:
    with example("layer1/solutions/ex5_quit.py") as (program, port):
        assert converse(port, b"QUIT\nafter\n") == b"BYE\n"
        with connect(port) as sock:  # QUIT, and the client keeps its side open
            sock.sendall(b"one\nQUIT\n")
            assert receive_exactly(sock, 8) == b"ONE\nBYE\n"
            sock.shutdown(socket.SHUT_WR)
            assert receive_until_eof(sock) == b""  # a clean EOF, no reset
        stops_cleanly(program)


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], ssl.SSLContext]:
    ca = trustme.CA()
    folder: Path = tmp_path_factory.mktemp("tls")
    issued = ca.issue_cert("localhost", "127.0.0.1")
    (folder / "cert.pem").write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(folder / "key.pem"))
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    client = ssl.create_default_context(cafile=str(folder / "ca.pem"))
    return ["--certfile", str(folder / "cert.pem"), "--keyfile", str(folder / "key.pem")], client


def test_ex6_starttls_at_once_and_a_plain_client_served_to_the_end(
        authority: tuple[list[str], ssl.SSLContext]) -> None:
    args, context = authority
    with example("layer1/solutions/ex6_starttls.py", *args) as (program, port):
        with tcpconnect("127.0.0.1", port) as conn:
            assert conn.flush(b"STARTTLS\n").read(64, b"\n") == b"READY\n"
            conn.starttls(context, server_hostname="localhost")
            assert conn.flush(b"mixed Case\n").read(64, b"\n") == b"MIXED CASE\n"
            conn.finish()
            assert conn.read() == b""
        assert converse(port, b"never\n", b"encrypted\n") == b"NEVER\nENCRYPTED\n"
        stops_cleanly(program)


def test_ex3_a_half_line_of_a_member_who_leaves_is_never_sent() -> None:
    with example("layer1/solutions/ex3_chat.py") as (program, port):
        with connect(port) as one, connect(port) as two, connect(port) as three:
            program.wait_for_line(rb"members: 3$")
            one.sendall(b"half a li")
            one.close()
            program.wait_for_line(rb"member 1 left; members: 2$")
            two.sendall(b"next\n")
            assert receive_exactly(three, 8) == b"2: next\n"  # nothing of member 1 before it
        stops_cleanly(program)


def test_ex5_quit_in_pieces_and_lines_before_it_in_one_segment() -> None:
    with example("layer1/solutions/ex5_quit.py") as (program, port):
        assert converse(port, b"a\nb\nQU", b"IT\n") == b"A\nB\nBYE\n"
        stops_cleanly(program)


def test_ex6_lines_sent_with_starttls_are_answered_in_order(
        authority: tuple[list[str], ssl.SSLContext]) -> None:
    args, context = authority
    with example("layer1/solutions/ex6_starttls.py", *args) as (program, port):
        with tcpconnect("127.0.0.1", port) as conn:
            conn.flush(b"one\ntwo\nSTARTTLS\n")  # pipelined: plain answers first
            assert conn.read(64, b"\n") == b"ONE\n"
            assert conn.read(64, b"\n") == b"TWO\n"
            assert conn.read(64, b"\n") == b"READY\n"
            conn.starttls(context, server_hostname="localhost")
            assert conn.flush(b"three\n").read(64, b"\n") == b"THREE\n"
        stops_cleanly(program)
