"""Parking: a connect handler hands an idle connection back to the master, which holds it.

The server is ``scripts/parking_server.py``: a fixed pool of two workers
and a line protocol. Each line is answered with the PID of the worker that
read it; the handler then calls ``park(conn, linger)`` and, if the
connection was parked, returns, so the worker is idle again. The pool's
`DispatchFilter` says a request is one line: the master holds new and
parked connections until a whole line (or the client's end) arrived.

The master runs with ``-s -d``: every change of the pool's counts it
sees is a ``stats`` line and every control message is logged (``PARK``,
``HOLD``, and ``CONNECT 0 queued`` when the master queues a held
connection for whichever worker is idle first), so the tests wait on those
lines, never on a clock. Workers say idle and busy on a scoreboard the
master samples, so a short busy spell may leave no ``stats`` line: the
tests wait on messages and answers instead. Which worker answers is
made predictable by stopping the other one (SIGSTOP): it takes nothing.

Paths covered: park and resume (the connection moves to whichever worker
is free; 20
connections on 2 workers), pipelined data never parked, a line that comes
within the linger keeps its worker, the client's end while parked (half
and whole close, a line cut short), the filter's deadlines (idle and
request timeouts, the timeout response), graceful and fast stops with
parked connections, a worker that dies right after parking, slow clients
that cost no worker, connections that wait cut the linger short (``W``,
`work_waiting`), a pool without a filter, and TLS (never parked). The pure
parts (`DispatchFilter` checks, `park` and `work_waiting` outside a
worker) are tested in this process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import selectors
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import trustme
from prefork_support import EXIT, FORK, SCRIPTS, Server, connect, read_line, serve, stats

from layer1_sockets import BufferedSocket
from layer2_prefork import MAX_BYTES, TCP, DispatchFilter, ExitCode, listen, park, work_waiting

SCRIPT = SCRIPTS / "parking_server.py"
READY = stats(total=2, idle=2, busy=0)
PARK = re.compile(rb"pool 0 worker (\d+): PARK$")
QUEUED = re.compile(rb"pool 0: CONNECT 0 queued$")
HOLD = re.compile(rb"pool 0 worker (\d+): HOLD$")
ANSWER = re.compile(rb"pid=(\d+) line=(.*)\n")
TIMEOUT = 20.0
SLACK = 8.0  # generous upper bounds: the machine is shared
PROMPT = 5.0  # "at once", on a loaded machine


# --- helpers -----------------------------------------------------------------

@contextmanager
def parking(*arguments: str, graceful: float | None = None) -> Iterator[Server]:
    """Start the parking server; yield it once both workers are idle."""
    options = ["-s", "-d"] + ([] if graceful is None else ["-g", str(graceful)])
    with serve(*arguments, options=options, script=SCRIPT) as server:
        server.wait(READY)
        yield server


class Client:
    """One line connection; every read is bounded by the socket's timeout."""

    def __init__(self, port: int, timeout: float = TIMEOUT) -> None:
        self.sock = connect(port, timeout)

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode() + b"\n")

    def answer(self) -> tuple[int, str]:
        """The next answer: the worker's PID and the line it read."""
        line = read_line(self.sock)
        match = ANSWER.fullmatch(line)
        assert match, line
        return int(match.group(1)), match.group(2).decode()

    def ask(self, text: str) -> tuple[int, str]:
        self.send(text)
        return self.answer()

    def rest(self) -> bytes:
        """Everything until the server's end; a reset fails the test."""
        chunks = []
        while chunk := self.sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.sock.close()


def parked(server: Server, start: int) -> int:
    """Wait until a worker parked a connection (the master read its ``PARK``); return its PID.

    (The worker is idle again a moment later: nothing waits for that. Workers
    say idle on the scoreboard, which the master samples, so a short busy
    spell need not show in the ``stats`` lines at all.)
    """
    _, match = server.wait(PARK, start)
    return int(match.group(1))


def ask_and_park(server: Server, client: Client, text: str) -> int:
    """One line answered, then parked; return the PID that answered."""
    mark = server.mark()
    pid, echoed = client.ask(text)
    assert echoed == text
    assert parked(server, mark) == pid
    return pid


def readable(sock: socket.socket, timeout: float) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(timeout))


def socket_count(pid: int) -> int:
    """How many sockets process `pid` has open."""
    count = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            count += os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:")
        except FileNotFoundError:
            continue
    return count


def no_trouble(server: Server) -> None:
    """Nothing went wrong in the server: no error, no traceback, no worker lost."""
    server.mark()
    assert not server.matches(rb"ERROR|Traceback|WARNING"), server.program.output()
    assert not server.matches(EXIT)


class Load:
    """Clients that send their next line as soon as the last is answered: a busy master."""

    def __init__(self, server: Server, count: int) -> None:
        self.server = server
        self.selector = selectors.DefaultSelector()
        self.clients = [Client(server.port) for _ in range(count)]
        for client in self.clients:
            client.sock.sendall(b"x\n")
            self.selector.register(client.sock, selectors.EVENT_READ)
        log = server.program.proc.stdout
        assert log is not None
        self.log = log.fileno()
        self.selector.register(self.log, selectors.EVENT_READ)  # a full pipe would stall it

    def until_readable(self, sock: socket.socket) -> None:
        """Keep the load going until `sock` is readable (bounded by TIMEOUT)."""
        deadline = time.monotonic() + TIMEOUT
        self.selector.register(sock, selectors.EVENT_READ)
        try:
            while True:
                left = deadline - time.monotonic()
                assert left > 0, "no answer under load"
                for key, _ in self.selector.select(left):
                    if key.fileobj is sock:
                        return
                    if key.fileobj == self.log:
                        self.server.program.drain_output()
                        continue
                    loaded: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = loaded.recv(65536)
                    assert data, "the server closed a busy client"
                    loaded.sendall(b"x\n" * data.count(b"\n"))  # one line in flight each
        finally:
            self.selector.unregister(sock)

    def close(self) -> None:
        self.selector.close()
        for client in self.clients:
            client.close()


# --- park and resume ---------------------------------------------------------

def test_a_parked_connection_resumes_in_whichever_worker_is_free() -> None:
    # Parked, the connection belongs to no worker: its next line goes to the
    # pool's queue, and a worker that cannot run (SIGSTOP) never takes it.
    with parking() as server:
        client = Client(server.port)
        for n in range(4):
            pid = ask_and_park(server, client, f"line {n}")
            os.kill(pid, signal.SIGSTOP)  # the worker that parked it cannot take it back
            try:
                mark = server.mark()
                other, echoed = client.ask(f"moved {n}")
                assert other != pid and echoed == f"moved {n}"
                assert parked(server, mark) == other
            finally:
                with contextlib.suppress(ProcessLookupError):  # (killed: stopped too long)
                    os.kill(pid, signal.SIGCONT)
        client.close()
        no_trouble(server)


def test_twenty_connections_on_two_workers_are_all_answered_twice() -> None:
    with parking() as server:
        clients = [Client(server.port) for _ in range(20)]
        started = time.monotonic()
        for round_ in range(2):
            for number, client in enumerate(clients):
                client.send(f"round {round_} client {number}")
            for number, client in enumerate(clients):
                assert client.answer()[1] == f"round {round_} client {number}"
        assert time.monotonic() - started < SLACK
        for client in clients:
            client.close()
        no_trouble(server)


# --- pipelined data and the linger -------------------------------------------

def test_pipelined_lines_are_served_by_one_worker_without_parking() -> None:
    with parking() as server:
        client = Client(server.port)
        mark = server.mark()
        client.sock.sendall(b"one\ntwo\nthree\n")  # one send: all held, handed over together
        answers = [client.answer() for _ in range(3)]
        assert [line for _, line in answers] == ["one", "two", "three"]
        assert len({pid for pid, _ in answers}) == 1  # parked in between: the other worker
        server.wait(PARK, mark)
        assert len(server.matches(PARK, mark)) == 1  # once, after the last line
        assert len(server.matches(QUEUED, mark)) <= 1  # the lines moved together, if at all
        client.close()


def test_a_line_within_the_linger_keeps_its_worker() -> None:
    with parking("linger=10") as server:
        client = Client(server.port)
        mark = server.mark()
        first, _ = client.ask("one")
        second, _ = client.ask("two")  # at once, well within the 10 s linger
        assert first == second
        server.mark()
        assert not server.matches(PARK, mark)
        client.close()


# --- the client's end while parked ---------------------------------------------

def test_a_half_close_while_parked_is_answered_by_the_master() -> None:
    with parking() as server:
        client = Client(server.port)
        ask_and_park(server, client, "hello")
        mark = server.mark()
        client.sock.shutdown(socket.SHUT_WR)
        assert client.rest() == b""  # a FIN
        server.mark()
        assert not server.matches(QUEUED, mark)  # closed by the master, no worker woken
        other = Client(server.port)
        ask_and_park(server, other, "still serving")
        other.close()
        client.close()
        no_trouble(server)


def test_a_client_that_closes_while_parked_costs_the_master_nothing() -> None:
    with parking() as server:
        master = server.program.pid
        baseline = socket_count(master)
        clients = [Client(server.port) for _ in range(3)]
        for client in clients:
            ask_and_park(server, client, "park me")
        assert socket_count(master) == baseline + 3  # the master holds the parked ones
        for client in clients:
            client.close()
        for _ in range(50):  # each round trip lets the master see more ends
            probe = Client(server.port)
            assert probe.ask("hold")[1] == "hold"  # held in a worker, not in the master
            if socket_count(master) == baseline:
                break
            probe.close()
        else:
            pytest.fail(f"the master still holds {socket_count(master) - baseline} sockets")
        probe.close()
        no_trouble(server)


def test_a_line_cut_short_by_the_end_reaches_the_handler() -> None:
    with parking() as server:
        fresh = Client(server.port)
        fresh.sock.sendall(b"hal")
        fresh.sock.shutdown(socket.SHUT_WR)
        answer = fresh.rest()
        assert re.fullmatch(rb"partial=hal pid=\d+\n", answer), answer
        resumed = Client(server.port)
        ask_and_park(server, resumed, "first")
        resumed.sock.sendall(b"second, cut")
        resumed.sock.shutdown(socket.SHUT_WR)
        answer = resumed.rest()
        assert re.fullmatch(rb"partial=second, cut pid=\d+\n", answer), answer
        fresh.close()
        resumed.close()
        no_trouble(server)


# --- deadlines ---------------------------------------------------------------

def test_a_silent_parked_connection_is_closed_by_the_master_after_idle_timeout() -> None:
    with parking("idle=2") as server:
        client = Client(server.port)
        ask_and_park(server, client, "one")
        ask_and_park(server, client, "two")  # a line before the deadline is served
        mark = server.mark()
        started = time.monotonic()  # before the park: the deadline is at least 2 s later
        client.ask("three")
        assert client.rest() == b""  # a clean FIN, not a reset
        waited = time.monotonic() - started
        assert 1.95 <= waited < 2 + SLACK
        server.mark()
        assert len(server.matches(QUEUED, mark)) == 1  # "three" only; the close needs no worker
        client.close()
        no_trouble(server)


def test_a_silent_new_connection_is_closed_after_idle_timeout_without_a_worker() -> None:
    with parking("idle=1") as server:
        mark = server.mark()
        started = time.monotonic()
        client = Client(server.port)
        assert client.rest() == b""
        assert 0.95 <= time.monotonic() - started < 1 + SLACK
        server.mark()
        assert len(server.matches(HOLD, mark)) == 1  # the worker that accepted it let go
        assert not server.matches(QUEUED, mark)
        client.close()


def test_a_line_that_does_not_complete_gets_the_timeout_response() -> None:
    with parking("idle=5", "request=1") as server:
        resumed = Client(server.port)
        ask_and_park(server, resumed, "first")
        fresh = Client(server.port)
        mark = server.mark()
        started = time.monotonic()
        fresh.sock.sendall(b"never end")
        resumed.sock.sendall(b"nor this")
        assert fresh.rest() == b"late\n"
        assert resumed.rest() == b"late\n"
        assert 0.95 <= time.monotonic() - started < 1 + SLACK
        server.wait_nth(rb"pool 0: a held request did not complete within 1 s; closed", 2, mark)
        assert not server.matches(QUEUED, mark)
        fresh.close()
        resumed.close()


# --- stopping ------------------------------------------------------------------

def test_a_graceful_stop_closes_parked_connections_and_serves_requests_under_way() -> None:
    with parking(graceful=20) as server:
        idle = [Client(server.port) for _ in range(3)]
        for client in idle:
            ask_and_park(server, client, "park me")
        under_way = Client(server.port)
        under_way.sock.sendall(b"half a ")  # a new connection: held, its request not complete
        stopped = time.monotonic()
        os.kill(server.program.pid, signal.SIGTERM)
        for client in idle:
            assert client.rest() == b""  # a clean FIN, not a reset
        assert time.monotonic() - stopped < PROMPT  # at once, not at the graceful deadline
        server.wait(rb"graceful stop \(SIGTERM\)")
        under_way.sock.sendall(b"line\n")
        assert under_way.answer()[1] == "half a line"
        assert under_way.rest() == b""  # then closed: the server is stopping
        assert server.program.proc.wait(TIMEOUT) == ExitCode.STOP
        assert time.monotonic() - stopped < SLACK
        server.mark()
        assert not server.matches(rb"ERROR|Traceback|killed by signal")
        for client in [*idle, under_way]:
            client.close()


def test_a_fast_stop_closes_parked_connections() -> None:
    with parking() as server:
        clients = [Client(server.port) for _ in range(3)]
        for client in clients:
            ask_and_park(server, client, "park me")
        os.kill(server.program.pid, signal.SIGINT)
        for client in clients:
            assert client.rest() == b""
            client.close()
        assert server.program.proc.wait(TIMEOUT) == ExitCode.STOP
        server.wait(rb"fast stop \(SIGINT\)")


# --- a worker that dies right after parking ----------------------------------------

def test_a_connection_parked_by_a_worker_that_died_is_served_by_another() -> None:
    with parking() as server:
        client = Client(server.port)
        for _ in range(3):
            mark = server.mark()
            victim, _ = client.ask("die")
            exit_index, _ = server.wait(rf"worker {victim} was killed by signal 9".encode(), mark)
            park_index, _ = server.wait(rf"pool 0 worker {victim}: PARK$".encode(), mark)
            assert park_index < exit_index  # read before the worker was forgotten
            server.wait(FORK, exit_index)
            server.wait(READY, exit_index)
            survivor, echoed = client.ask("after")
            assert survivor != victim and echoed == "after"
        client.close()


def test_connections_parked_by_dying_workers_survive_a_busy_master() -> None:
    # Under load the master may learn of a death before it read the worker's
    # last messages; it must read them first, or the parked connection is lost.
    with parking() as server:
        load = Load(server, 6)
        for _ in range(30):
            victim = Client(server.port)
            victim.send("die")
            load.until_readable(victim.sock)
            pid, _ = victim.answer()
            server.wait(rf"worker {pid} was killed by signal 9".encode())
            victim.send("after")
            load.until_readable(victim.sock)
            assert victim.answer()[1] == "after"
            victim.close()
        load.close()


# --- slow clients and connections that wait ---------------------------------------

def test_slow_clients_cost_no_worker() -> None:
    with parking() as server:
        slow = [Client(server.port) for _ in range(4)]  # twice as many as there are workers
        normal = Client(server.port)
        for byte in b"slowly":
            for client in slow:
                client.sock.sendall(bytes([byte]))
            started = time.monotonic()
            assert normal.ask("quick")[1] == "quick"  # a worker is free
            assert time.monotonic() - started < PROMPT
            assert not any(readable(client.sock, 0) for client in slow)
        for client in slow:
            client.sock.sendall(b"\n")
        for client in slow:
            assert client.answer()[1] == "slowly"
        for client in [*slow, normal]:
            client.close()
        no_trouble(server)


def test_a_waiting_connection_cuts_the_linger_short() -> None:
    with parking("linger=30") as server:
        first = Client(server.port)  # one at a time: a connection in the backlog is
        pid = first.ask("a")[0]      # other work waiting, and would cut the linger short
        second = Client(server.port)
        pids = {pid, second.ask("b")[0]}  # both workers linger 30 s
        third = Client(server.port)
        assert len(pids) == 2
        started = time.monotonic()
        pid, echoed = third.ask("c")  # the master says "W": one of them parks at once
        assert echoed == "c" and pid in pids
        assert time.monotonic() - started < PROMPT
        assert first.ask("a again")[1] == "a again"
        assert second.ask("b again")[1] == "b again"
        for client in (first, second, third):
            client.close()


def test_work_waiting_tells_a_busy_handler_that_connections_wait() -> None:
    with parking("linger=30") as server:
        first = Client(server.port)
        first.send("waiting 0")
        assert read_line(first.sock).startswith(b"waiting=False ")  # nothing else waits
        second, third = Client(server.port), Client(server.port)
        holder, _ = first.ask("hold")
        other, _ = second.ask("hold")  # both workers taken, neither parks
        assert holder != other
        third.send("waits")
        first.send("waiting 10")  # the handler waits for the master's word
        assert read_line(first.sock) == f"waiting=True pid={holder}\n".encode()
        started = time.monotonic()
        assert first.ask("done")[1] == "done"  # parked at once, despite the 30 s linger
        assert third.answer() == (holder, "waits")
        assert time.monotonic() - started < PROMPT
        for client in (first, second, third):
            client.close()


def test_busy_connections_take_turns_with_a_waiting_one() -> None:
    with parking("linger=30") as server:
        # Each keeps its worker while nothing else waits: its next line comes at
        # once. (Their start may already take turns, so there is no stable "both
        # busy" to wait for.)
        load = Load(server, 2)
        waiting = Client(server.port)
        started = time.monotonic()
        waiting.send("me too")
        load.until_readable(waiting.sock)  # the busy ones are parked after their time slice
        assert waiting.answer()[1] == "me too"
        assert time.monotonic() - started < PROMPT
        waiting.close()
        load.close()


def test_a_new_connection_is_accepted_while_queued_work_keeps_coming() -> None:
    # Six busy keep-alive clients on two workers: after each time slice they
    # are parked and come back through the queue at once, so the queue is
    # never empty. A new client must still get its turn (a worker that always
    # takes queued work first would leave it in the backlog for ever).
    with parking("linger=30") as server:
        load = Load(server, 6)
        for number in range(10):
            newcomer = Client(server.port)
            started = time.monotonic()
            newcomer.send(f"new {number}")
            load.until_readable(newcomer.sock)
            assert newcomer.answer()[1] == f"new {number}"
            assert time.monotonic() - started < PROMPT
            newcomer.close()
        load.close()


# --- a pool without a filter -------------------------------------------------------

def test_without_a_filter_a_parked_connection_resumes_at_its_first_byte() -> None:
    with parking("filter=none") as server:
        client = Client(server.port)
        ask_and_park(server, client, "first")
        mark = server.mark()
        client.sock.sendall(b"ab")  # half a line: enough for a pool without a filter
        server.wait(QUEUED, mark)
        server.wait(stats(idle=1, busy=1), mark)
        client.sock.sendall(b"c\n")
        assert client.answer()[1] == "abc"
        client.close()
        no_trouble(server)


def test_without_a_filter_a_new_connection_goes_to_a_worker_at_once() -> None:
    with parking("filter=none") as server:
        mark = server.mark()
        silent = Client(server.port)
        server.wait(stats(idle=1, busy=1), mark)  # a worker took it before it said anything
        server.mark()
        assert not server.matches(HOLD, mark) and not server.matches(QUEUED, mark)
        assert silent.ask("now")[1] == "now"
        silent.close()


# --- TLS ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """The test CA, a certificate for 127.0.0.1 and its key (files)."""
    folder = tmp_path_factory.mktemp("parking-tls")
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1", "localhost")
    paths = (folder / "ca.pem", folder / "cert.pem", folder / "key.pem")
    ca.cert_pem.write_to_path(str(paths[0]))
    leaf.cert_chain_pems[0].write_to_path(str(paths[1]))
    for blob in leaf.cert_chain_pems[1:]:
        blob.write_to_path(str(paths[1]), append=True)
    leaf.private_key_pem.write_to_path(str(paths[2]))
    return paths


def test_a_tls_connection_is_never_parked(certificate: tuple[Path, Path, Path]) -> None:
    ca, cert, key = certificate
    with parking(f"certfile={cert}", f"keyfile={key}") as server:
        plain = Client(server.port)
        tls_client = Client(server.port)
        tls_client.sock.sendall(b"tls\n")
        assert read_line(tls_client.sock) == b"tls\n"
        context = ssl.create_default_context(cafile=str(ca))
        secure = context.wrap_socket(tls_client.sock, server_hostname="127.0.0.1")
        match = re.fullmatch(rb"tls park=False pid=(\d+)\n", read_line(secure))
        assert match
        pinned = int(match.group(1))
        for round_ in range(3):
            # A plain connection parks and resumes meanwhile (each park is a linger
            # later), always in the other worker: the TLS connection keeps its own.
            assert ask_and_park(server, plain, f"plain {round_}") != pinned
            secure.sendall(f"secret {round_}\n".encode())
            assert read_line(secure) == f"pid={pinned} line=secret {round_}\n".encode()
        server.mark()
        assert not server.matches(rf"worker {pinned}: PARK".encode())
        secure.close()
        plain.close()


# --- the pure parts ----------------------------------------------------------

@pytest.mark.parametrize(("arguments", "message"), [
    ({"complete": b"\n"}, "DispatchFilter: complete must be callable"),
    ({"idle_timeout": -1}, "DispatchFilter: idle_timeout must be a number >= 0, not -1"),
    ({"idle_timeout": math.nan}, "DispatchFilter: idle_timeout must be a number >= 0"),
    ({"idle_timeout": "5"}, "DispatchFilter: idle_timeout"),
    ({"idle_timeout": True}, "DispatchFilter: idle_timeout"),
    ({"request_timeout": -0.5}, "DispatchFilter: request_timeout must be a number >= 0"),
    ({"timeout_response": "late"}, "DispatchFilter: timeout_response must be bytes"),
    ({"max_bytes": 0}, "DispatchFilter: max_bytes must be an int from 1 to 67108864, not 0"),
    ({"max_bytes": MAX_BYTES + 1}, "max_bytes must be an int from 1 to 67108864, not 67108865"),
    ({"max_bytes": True}, "max_bytes must be an int from 1 to 67108864, not True"),
    ({"max_bytes": 100.0}, "max_bytes must be an int from 1 to 67108864, not 100.0"),
])
def test_dispatch_filter_refuses_bad_options(arguments: dict[str, object], message: str) -> None:
    options: dict[str, object] = {"complete": bool, **arguments}
    with pytest.raises(ValueError, match=re.escape(message)):
        DispatchFilter(**options)  # type: ignore[arg-type]


def test_dispatch_filter_accepts_the_limits_and_is_frozen() -> None:
    assert MAX_BYTES == 64 << 20
    rules = DispatchFilter(bool, idle_timeout=2, request_timeout=math.inf, max_bytes=MAX_BYTES)
    assert rules.idle_timeout == 2.0 and isinstance(rules.idle_timeout, float)
    assert rules.request_timeout == math.inf
    assert DispatchFilter(bool, max_bytes=1).max_bytes == 1
    assert DispatchFilter(bool).idle_timeout is None and DispatchFilter(bool).max_bytes == 16384
    with pytest.raises(dataclasses.FrozenInstanceError):
        rules.max_bytes = 10  # type: ignore[misc]


def test_listen_refuses_a_dispatch_filter_of_the_wrong_type() -> None:
    with pytest.raises(ValueError, match="dispatch_filter must be a DispatchFilter"):
        pool = listen(TCP("127.0.0.1", 0), connect=bool,
                      dispatch_filter="line")  # type: ignore[arg-type]
        pool.close()  # (only reached if the filter was accepted)


def test_park_and_work_waiting_outside_a_worker_do_nothing() -> None:
    left, right = socket.socketpair()
    with BufferedSocket(left) as conn, right:
        right.sendall(b"ping\n")
        assert park(conn) is False
        started = time.monotonic()
        assert park(conn, linger=5) is False
        assert time.monotonic() - started < 1  # no linger either: not in a worker
        assert conn.read(terminator=b"\n") == b"ping\n"  # nothing happened to it
        conn.flush(b"pong\n")
        assert right.recv(100) == b"pong\n"
        assert work_waiting() is False
    assert park(conn) is False  # closed
