"""Drive part 2's parking chapter: step 7 and exercise 7, with real clients.

``docs/examples/layer2/step07_parking.py`` answers each line with its
worker's PID and parks the connection between lines. The tests start it
as a reader would (directly, or under ``python -m layer2_prefork -d`` when
they need the control messages from the log), talk to it over loopback,
and assert what the clients see: more clients than workers are all
answered, pipelined lines stay in one worker, a connection moves from
worker to worker, silent and slow clients cost no worker, a graceful stop
closes parked connections cleanly; and, with parking off, the old
behaviour: a third client of two workers waits. To know which worker
answers, a test stops the other one (SIGSTOP): idle workers take their
own work, and a stopped one takes none. Every wait is on an event
(a line, a log line, a readable socket); after the stop the program's
process group must be empty.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress

from support import EXAMPLES, Program, connect, example, read_line, running

TIMEOUT = 20.0
STEP = "layer2/step07_parking.py"
ANSWER = re.compile(rb"^worker (\d+): (.*)\n$", re.S)
FORKED = rb"pool 0: forked worker (\d+)$"


# --- helpers ----------------------------------------------------------------------


def answer(sock: socket.socket) -> tuple[int, bytes]:
    """Read one answer: the worker's PID and the line it echoed."""
    line = read_line(sock)
    match = ANSWER.match(line)
    assert match, line
    return int(match.group(1)), match.group(2)


def ask(sock: socket.socket, line: bytes) -> int:
    """Send a line, check its echo, return the PID of the worker that answered."""
    sock.sendall(line + b"\n")
    pid, echoed = answer(sock)
    assert echoed == line
    return pid


def readable_within(sock: socket.socket, seconds: float) -> bool:
    return bool(select.select([sock], [], [], seconds)[0])


def closed_cleanly(sock: socket.socket) -> bool:
    """Whether the peer ended the connection with a FIN (waits up to TIMEOUT)."""
    return sock.recv(4096) == b""


def mark(program: Program) -> int:
    """The index of the next output line: wait for lines from here on."""
    program.drain_output()
    return len(program.lines)


def wait_index(program: Program, pattern: bytes, start: int = 0) -> int:
    """Wait for a line matching pattern from start; return the index after it."""
    regex = re.compile(pattern)
    program.wait_for_line(regex, TIMEOUT, start)
    return next(index + 1 for index in range(start, len(program.lines))
                if regex.search(program.lines[index]))


def workers(program: Program, count: int = 2) -> list[int]:
    """The PIDs of the first count workers the master forked."""
    pids: list[int] = []
    index = 0
    while len(pids) < count:
        index = wait_index(program, FORKED, index)
        match = re.search(FORKED, program.lines[index - 1])
        assert match
        pids.append(int(match.group(1)))
    return pids


def group_is_empty(program: Program) -> bool:
    try:
        os.killpg(program.pid, 0)
    except ProcessLookupError:
        return True
    return False


def assert_stops_cleanly(program: Program) -> None:
    assert program.stop(signal.SIGTERM, TIMEOUT) == 0, program.output()
    assert group_is_empty(program), f"processes left in the group of {program.pid}"


@contextmanager
def debug_run(relative: str, *args: str) -> Iterator[tuple[Program, int, list[int]]]:
    """Run an example under ``python -m layer2_prefork -d``; yield it with its two workers.

    Yields the program, its port, and the PIDs of the two workers in the
    order they were forked. (Idle workers take their own work, so which one
    answers is up to them; a test that needs to know stops the other.)
    """
    argv = [sys.executable, "-m", "layer2_prefork", "-d", str(EXAMPLES / relative), *args]
    with running(argv) as program:
        port = program.wait_for_port()
        yield program, port, workers(program)


def parked_by(program: Program, pid: int, start: int) -> None:
    """Wait until worker pid handed a connection back (the master logged its PARK)."""
    wait_index(program, rb"pool 0 worker %d: PARK$" % pid, start)


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """Stop a worker (SIGSTOP) for a while: it takes no work until it runs again."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with suppress(ProcessLookupError):  # (the master kills one stopped for a second)
            os.kill(pid, signal.SIGCONT)


# --- step 7 ---------------------------------------------------------------------


def test_step07_ten_clients_on_two_workers_are_all_answered_twice() -> None:
    with example(STEP) as (program, port), ExitStack() as stack:
        pool = set(workers(program))
        clients = [stack.enter_context(connect(port)) for _ in range(10)]
        for round_ in (b"first", b"second"):
            for n, sock in enumerate(clients):
                sock.sendall(b"%s line of client %d\n" % (round_, n))
            for n, sock in enumerate(clients):  # all ten, though two workers serve
                pid, echoed = answer(sock)
                assert echoed == b"%s line of client %d" % (round_, n)
                assert pid in pool
        assert_stops_cleanly(program)  # with the ten connections still open
        for sock in clients:
            assert closed_cleanly(sock)
    assert len(re.findall(FORKED, program.output().encode(), re.M)) == 2  # no worker died


def test_step07_without_parking_a_third_client_waits() -> None:
    with example(STEP, "--no-park") as (program, port):
        with connect(port) as first, connect(port) as second, connect(port) as third:
            workers(program)
            served = {ask(first, b"one"), ask(second, b"two")}
            assert len(served) == 2  # each connection holds its worker
            third.sendall(b"three\n")
            assert not readable_within(third, 0.5)  # both workers are pinned by idle clients
            first.close()
            pid, echoed = answer(third)  # served by the worker the first client freed
            assert echoed == b"three" and pid in served
        assert_stops_cleanly(program)


def test_step07_pipelined_lines_are_answered_by_one_worker() -> None:
    with debug_run(STEP) as (program, port, _), connect(port) as sock:
        start = mark(program)
        sock.sendall(b"one\ntwo\n")  # both lines in one segment: served together
        (first, one), (again, two) = answer(sock), answer(sock)
        assert (one, two) == (b"one", b"two") and first == again
        parked_by(program, first, start)  # not parked between them: never with bytes read
        start = mark(program)
        sock.sendall(b"three\nfour\n")  # again, on the parked connection
        (second, three), (again, four) = answer(sock), answer(sock)
        assert (three, four) == (b"three", b"four") and second == again
        parked_by(program, second, start)
        assert_stops_cleanly(program)
    parks = re.findall(rb"worker \d+: PARK$", program.output().encode(), re.M)
    assert len(parks) == 2


def test_step07_a_connection_moves_between_workers_over_pauses() -> None:
    with debug_run(STEP) as (program, port, pool), connect(port) as sock:
        start = mark(program)
        pid = ask(sock, b"line 0")
        for n in range(1, 5):
            parked_by(program, pid, start)  # the pause: the connection is in the master
            with stopped(pid):  # the worker that parked it cannot take it back
                start = mark(program)
                other = ask(sock, b"line %d" % n)
                assert other != pid and other in pool  # it moved to the other worker
            pid = other
        assert_stops_cleanly(program)


def test_step07_a_client_that_answers_within_the_linger_keeps_its_worker() -> None:
    with example(STEP, "--linger", "30") as (program, port), \
            connect(port) as busy, connect(port) as other, connect(port) as late:
        pool = workers(program)
        pids = {ask(busy, b"quick %d" % n) for n in range(5)}
        assert len(pids) == 1  # every next line came within the linger: no move
        assert ask(other, b"hello") not in pids  # the other worker lingers too now
        began = time.monotonic()
        # Both workers linger up to 30 s; the master tells them (W) that a
        # connection waits, and one of them parks at once.
        assert ask(late, b"me too") in pool
        assert time.monotonic() - began < TIMEOUT / 2
        assert_stops_cleanly(program)  # a stop cuts the linger short too


def test_step07_silent_and_slow_clients_cost_no_worker() -> None:
    with example(STEP) as (program, port), ExitStack() as stack:
        workers(program)
        silent = [stack.enter_context(connect(port)) for _ in range(4)]
        slow = [stack.enter_context(connect(port)) for _ in range(4)]
        for sock in slow:
            sock.sendall(b"hal")  # a line begun, not finished
        with connect(port) as normal:  # twice as many held clients as workers
            ask(normal, b"not kept waiting")
        for n, sock in enumerate(slow):
            sock.sendall(b"f a line %d\n" % n)
            assert answer(sock)[1] == b"half a line %d" % n
        for n, sock in enumerate(silent):
            ask(sock, b"at last %d" % n)
        assert_stops_cleanly(program)


def test_step07_a_graceful_stop_closes_parked_connections_cleanly() -> None:
    with debug_run(STEP) as (program, port, _), connect(port) as parked, \
            connect(port) as typing:
        start = mark(program)
        pid = ask(parked, b"then quiet")
        parked_by(program, pid, start)
        typing.sendall(b"under ")  # held in the master, a line under way
        start = mark(program)
        program.proc.send_signal(signal.SIGTERM)
        wait_index(program, rb"graceful stop \(SIGTERM\)", start)
        assert closed_cleanly(parked)  # a FIN, not a reset: nothing was lost
        typing.sendall(b"way\n")  # a request under way is still served
        assert answer(typing)[1] == b"under way"
        typing.close()
        assert program.proc.wait(TIMEOUT) == 0, program.output()
        program.drain_output(0.05)
        assert group_is_empty(program)


# --- exercise 7 -----------------------------------------------------------------


def test_ex7_deadlines_close_silent_and_slow_clients_in_the_master() -> None:
    solution = "layer2/solutions/ex7_deadlines.py"
    options = ("--idle", "0.5", "--line-timeout", "0.5")
    with example(solution, *options) as (program, port), ExitStack() as stack:
        workers(program)
        began = time.monotonic()
        silent = [stack.enter_context(connect(port)) for _ in range(3)]
        slow = [stack.enter_context(connect(port)) for _ in range(3)]
        for sock in slow:
            sock.sendall(b"never fini")
        with connect(port) as normal:  # held clients do not pin the two workers
            ask(normal, b"served at once")
        answered = stack.enter_context(connect(port))
        ask(answered, b"one line, then quiet")  # parked, then silent
        for sock in slow:  # only the master writes this
            assert read_line(sock) == b"too slow\n"
            assert closed_cleanly(sock)
        for sock in [*silent, answered]:
            assert closed_cleanly(sock)  # closed quietly, no answer
        assert time.monotonic() - began >= 0.5
        assert_stops_cleanly(program)
    timeouts = re.findall(rb"pool 0: a held request did not complete within 0.5 s; closed",
                          program.output().encode())
    assert len(timeouts) == 3
