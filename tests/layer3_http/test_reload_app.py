"""Reloading the application: ``SIGUSR2`` to ``python -m layer3_http`` under a client loop.

The application is two real files in ``tmp_path``: ``app.py``, a copy of
``docs/examples/deploy/reload_app.py``, imports ``version.py``, which,
when imported, appends its process's PID to ``imports.log``. The test
rewrites ``version.py`` between reloads, sends the master a real
``SIGUSR2`` and waits for its log line; meanwhile four client threads
(two on keep-alive connections, two with ``Connection: close``) send
requests in a bounded loop. No request may fail, the
clients must see each new version, a broken version must leave the old
one serving, and the master must never import the application itself.
"""

from __future__ import annotations

import http.client
import re
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from support import Program, running

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "docs" / "examples" / "deploy" / "reload_app.py"
MOST_REQUESTS = 50_000
"""The client loop's bound (it normally ends long before, with the test)."""


def source(number: int) -> str:
    """``version.py`` for `number`: it notes the PID of each process that imports it.

    Each version has a size of its own: the bytecode cache trusts a file
    whose size and modification time (whole seconds) are those it cached.
    """
    return ("import os\n\n"
            'with open(os.path.join(os.path.dirname(__file__), "imports.log"), "a") as log:\n'
            '    log.write(f"{os.getpid()}\\n")\n'
            f"NUMBER = {number}\n" + "#" * number + "\n")


@dataclass
class Clients:
    """Client threads sending ``GET /`` in a loop; what they saw."""

    port: int
    done: threading.Event = field(default_factory=threading.Event)
    seen: threading.Condition = field(default_factory=threading.Condition)
    answers: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, count: int = 4) -> None:
        for index in range(count):
            thread = threading.Thread(target=self._loop, args=(index % 2 == 0,))
            thread.start()
            self.threads.append(thread)

    def _loop(self, keep_alive: bool) -> None:
        conn: http.client.HTTPConnection | None = None
        headers = {} if keep_alive else {"Connection": "close"}
        while not self.done.is_set() and len(self.answers) < MOST_REQUESTS:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
                conn.request("GET", "/", headers=headers)
                response = conn.getresponse()
                body = response.read()
                match = re.fullmatch(rb"version (\d+)\n", body)
                if response.status != 200 or match is None:
                    self._failed(f"{response.status} {body!r}")
                else:
                    self._answered(int(match.group(1)))
                if not keep_alive:
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException) as error:
                self._failed(repr(error))
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _answered(self, number: int) -> None:
        with self.seen:
            self.answers.append(number)
            self.seen.notify_all()

    def _failed(self, what: str) -> None:
        with self.seen:
            self.failures.append(what)
            self.seen.notify_all()

    def wait_for(self, number: int, more: int = 50) -> None:
        """Wait for `more` answers from now on, the last of them of version `number`."""
        with self.seen:
            target = len(self.answers) + more
            assert self.seen.wait_for(
                lambda: self.failures or (len(self.answers) >= target
                                          and self.answers[-1] == number), timeout=30)
            assert not self.failures, self.failures[:5]

    def stop(self) -> None:
        self.done.set()
        for thread in self.threads:
            thread.join(30)


@contextmanager
def app_server(folder: Path) -> Iterator[Program]:
    argv = [sys.executable, "-m", "layer3_http", str(folder / "app.py"), "--workers", "2",
            "-s", "--listen", "127.0.0.1:0"]
    with running(argv) as program:
        yield program


def reload(program: Program, number: int, outcome: str) -> None:
    start = len(program.lines)
    program.proc.send_signal(signal.SIGUSR2)
    program.wait_for_line(rf"reload {number} {outcome}".encode(), 30, start)


def test_requests_in_a_loop_never_fail_across_reloads_and_a_broken_version(
        tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP.read_text())
    (tmp_path / "version.py").write_text(source(1))
    with app_server(tmp_path) as program:
        port = program.wait_for_port()
        program.wait_for_line(rb"stats total=2 idle=2 ")
        clients = Clients(port)
        clients.start()
        try:
            clients.wait_for(1)
            (tmp_path / "version.py").write_text(source(2))
            reload(program, 1, "done")
            clients.wait_for(2)
            (tmp_path / "version.py").write_text("NUMBER = (\n")  # a syntax error
            reload(program, 2, "abandoned")
            clients.wait_for(2, more=200)  # the old workers serve on
            (tmp_path / "version.py").write_text(source(3))
            reload(program, 3, "done")
            clients.wait_for(3)
            for number in range(4, 7):
                (tmp_path / "version.py").write_text(source(number))
                reload(program, number, "done")
                clients.wait_for(number)
        finally:
            clients.stop()
        assert not clients.failures, clients.failures[:5]
        seen = clients.answers
        assert set(seen) == {1, 2, 3, 4, 5, 6}
        assert len(seen) >= 8 * 50
        program.drain_output()
        output = program.output()
        assert output.count("SyntaxError") == 1  # the broken version's traceback, once
        master = program.proc.pid
        assert program.stop(signal.SIGTERM) == 0
    importers = [int(line) for line in (tmp_path / "imports.log").read_text().split()]
    assert master not in importers  # the startup check and every worker, never the master
    # the check, 2 workers at start, 2 per good reload, 1 trial of the broken one (no log)
    assert len(importers) == 1 + 2 + 5 * 2


def test_a_broken_application_at_start_exits_3_with_its_traceback_once(
        tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("import missing_module_of_the_app\n")
    with app_server(tmp_path) as program:
        assert program.proc.wait(20) == 3
        program.drain_output()
        output = program.output()
    assert output.count("Traceback") == 1
    assert "cannot load" in output and "No module named 'missing_module_of_the_app'" in output
    assert "listening" not in output and "forked worker" not in output
