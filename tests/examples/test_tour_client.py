"""The line client of the examples (``docs/examples/tour/client.py``) against real servers.

It stands in for ``nc -N``: it sends its argument or its standard input,
half-closes, and prints what comes back until the server closes. The
servers are part 1's step programs (TCP) and a small Unix-socket server in
this file; every wait is on an event (a line printed, EOF), and every
process is stopped and reaped.
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import threading
from pathlib import Path

from support import EXAMPLES, example, kill_group

CLIENT = str(EXAMPLES / "tour" / "client.py")
TIMEOUT = 20.0


def client(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, CLIENT, *args], input=stdin,
                          capture_output=True, timeout=TIMEOUT, check=False)


def test_stdin_is_sent_then_half_closed_and_the_whole_answer_printed() -> None:
    lines = b"hello\nwho are you?\n" + b"0" * 80 + b"\nshort again\nno newline at the end"
    with example("layer1/step02_buffered.py") as (server, port):
        result = client(str(port), stdin=lines)
        server.stop()
    assert result.returncode == 0, result.stderr
    # the last answer needs the half-close: the server saw EOF in the middle of a line
    assert result.stdout == (b"HELLO\nWHO ARE YOU?\nERROR line too long\nSHORT AGAIN\n"
                             b"ERROR no newline at end of input\n")


def test_an_argument_is_sent_with_a_newline_or_without_one() -> None:
    with example("layer1/step02_buffered.py") as (server, port):
        assert client(str(port), "one line").stdout == b"ONE LINE\n"
        assert client(str(port), "-n", "cut").stdout == b"ERROR no newline at end of input\n"
        server.stop()


def test_typed_lines_are_answered_one_by_one_before_the_input_ends() -> None:
    """Interactive use: each line goes out when written, each answer is printed at once."""
    with example("layer1/step02_buffered.py") as (server, port):
        proc = subprocess.Popen([sys.executable, CLIENT, str(port)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, start_new_session=True)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            for word in (b"first", b"second"):
                proc.stdin.write(word + b"\n")
                proc.stdin.flush()  # the input stays open: only this line has been sent
                assert read_line(proc.stdout.fileno()) == word.upper() + b"\n"
            proc.stdin.close()  # Ctrl-D: the client half-closes, the server ends, it exits
            assert proc.wait(TIMEOUT) == 0
            assert proc.stdout.read() == b""
        finally:
            kill_group(proc.pid)
            proc.wait(TIMEOUT)
            proc.stdout.close()
        server.stop()


def read_line(fd: int) -> bytes:
    """Read one line from a pipe, byte by byte, waiting at most TIMEOUT for each byte."""
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            assert selector.select(TIMEOUT), f"no complete line within {TIMEOUT} s: {line!r}"
            byte = os.read(fd, 1)
            assert byte, f"EOF after {line!r}"
            line += byte
    return line


def test_a_refused_connection_is_exit_status_1() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound but not listening: connect is refused
        result = client(str(port), "hello")
    assert result.returncode == 1
    assert b"refused" in result.stderr.lower()


def test_a_unix_socket_server_reads_to_eof_and_answers(tmp_path: Path) -> None:
    path = str(tmp_path / "reverse.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(TIMEOUT)

    def reverse_once() -> None:  # answers only after EOF, as part 1's exercise 1 does
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(TIMEOUT)
            received = b""
            while data := conn.recv(4096):
                received += data
            conn.sendall(received[::-1])

    server = threading.Thread(target=reverse_once)
    server.start()
    try:
        result = client("--unix", path, "-n", "stressed")
    finally:
        server.join(TIMEOUT)
        listener.close()
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"desserts"
