"""Two instances of our server behind a real nginx: rolling restarts and a crash under load.

``docs/examples/deploy/nginx-scaleout.conf`` is used as written, only its
socket folder moved into the test's folder and its port onto a free
loopback one. Each instance is ``python -m layer3_http`` with its own
master (told apart by PID) and its own Unix socket; nginx keeps its
upstream connections alive (``keepalive``, HTTP/1.1, empty
``Connection``).

A `Load` of client threads (GETs on a kept connection, GETs on a new
connection each, POSTs on a kept connection; bounded in count and time)
runs through nginx while

* each instance in turn is reloaded (``SIGUSR2``: new workers with the new
  code, the same master): no request fails, with or without nginx's
  retries;
* each instance in turn is stopped (``SIGTERM``) and started again: no GET
  fails, thanks to ``proxy_next_upstream``;
* one instance, master and workers, is killed with ``SIGKILL``: no GET
  fails (nginx asks the other instance again); a POST under way fails
  unless ``non_idempotent`` is added.

What the clients saw is counted: every request, the instance and worker
that answered, every failure; the figures are printed (``pytest -s``).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from prod_apps.nginx_support import nginx_front
from prod_apps.prod_support import APPS, DEPLOY, command
from support import Program

SITE = DEPLOY / "nginx-scaleout.conf"
APP = f"{APPS / 'scaleout_app.py'}:app"
TIMEOUT = 20.0
WORKERS = 3
FORKED = re.compile(rb"forked worker (\d+)")


def site_config(port: int, folder: Path) -> str:
    """The scale-out site with its sockets in `folder` and nginx on `port`."""
    site = SITE.read_text()
    assert "listen 80;" in site and site.count("server unix:/run/moonbridge/app-") == 2
    site = site.replace("/run/moonbridge/", f"{folder}/")
    return site.replace("listen 80;", f"listen 127.0.0.1:{port};")


def children(pid: int) -> set[int]:
    """The PIDs of a process's children (its workers, for a master)."""
    found: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as listing:
            found.update(int(child) for child in listing.read().split())
    return found


def wait_gone(pids: set[int], timeout: float = TIMEOUT) -> None:
    """Every process in `pids` has exited (a pidfd per process, no polling)."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        try:
            watch = os.pidfd_open(pid)
        except ProcessLookupError:
            continue
        try:
            left = max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([watch], [], [], left)
            assert ready, f"process {pid} is still running"
        finally:
            os.close(watch)


class Instance:
    """One instance of our server: a master and its workers on ``app-N.sock``."""

    def __init__(self, folder: Path, number: int) -> None:
        self.socket = folder / f"app-{number}.sock"
        self.version = folder / "version"  # the application's version, read at import
        self.program: Program | None = None

    def start(self, stack: list[Program]) -> None:
        argv = command("--wsgi", APP, "--workers", str(WORKERS), "--graceful-timeout", "10",
                       "--listen", f"unix:{self.socket}")
        self.program = program = Program(argv, env={"SCALEOUT_VERSION": str(self.version)})
        stack.append(program)
        program.wait_for_line(f"listening on unix:{self.socket}".encode())
        seen = 0
        for _ in range(WORKERS):  # the pool forks its workers one after the other
            program.wait_for_line(FORKED, start=seen)
            seen = 1 + next(index for index in range(seen, len(program.lines))
                            if FORKED.search(program.lines[index]))

    @property
    def master(self) -> int:
        assert self.program is not None
        return self.program.pid

    def workers(self) -> set[int]:
        return children(self.master)


@dataclass
class Answer:
    method: str
    master: int | None  # None: a failure
    pid: int | None
    error: str = ""
    version: str = ""
    at: float = field(default_factory=time.monotonic)


class Load:
    """Client threads asking nginx until stopped; at most `limit` requests each, `seconds` long.

    ``keep`` threads keep one connection for all their requests, ``fresh``
    threads open one per request (``Connection: close``), ``posts``
    threads send POSTs (with a body) on a kept connection.
    """

    def __init__(self, port: int, *, keep: int = 2, fresh: int = 2, posts: int = 0,
                 limit: int = 3000, seconds: float = 60.0) -> None:
        self.port, self.limit, self.deadline = port, limit, time.monotonic() + seconds
        self.answers: list[Answer] = []
        self.changed = threading.Condition()
        self.done = threading.Event()
        kinds = ["keep"] * keep + ["fresh"] * fresh + ["post"] * posts
        self.threads = [threading.Thread(target=self._run, args=(kind,), daemon=True)
                        for kind in kinds]

    def _connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)

    def _ask(self, conn: http.client.HTTPConnection, kind: str) -> Answer:
        method = "POST" if kind == "post" else "GET"
        headers = {"Connection": "close"} if kind == "fresh" else {}
        body = b"x" * 1000 if kind == "post" else None
        try:
            conn.request(method, "/work", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            conn.close()
            return Answer(method, None, None, repr(error))
        if response.status != 200:
            conn.close()
            return Answer(method, None, None, f"{response.status} {data[:80]!r}")
        answer = json.loads(data)
        if kind == "fresh":
            conn.close()
        return Answer(method, answer["master"], answer["pid"], version=answer["version"])

    def _run(self, kind: str) -> None:
        conn = self._connection()
        try:
            for _ in range(self.limit):
                if self.done.is_set() or time.monotonic() > self.deadline:
                    return
                answer = self._ask(conn, kind)
                with self.changed:
                    self.answers.append(answer)
                    self.changed.notify_all()
                if answer.master is None or kind == "fresh":
                    conn = self._connection()  # http.client reconnects a closed one anyway
        finally:
            conn.close()

    def wait_for(self, wanted: Callable[[Answer], bool], timeout: float = TIMEOUT,
                 after: int = 0) -> int:
        """Wait until an answer from index `after` on is `wanted`; return the count so far."""
        deadline = time.monotonic() + timeout
        checked = after
        with self.changed:
            while True:
                if any(wanted(answer) for answer in self.answers[checked:]):
                    return len(self.answers)
                left = deadline - time.monotonic()
                if left <= 0 or not self.running():
                    raise TimeoutError(f"no such answer; {self.summary()}")
                checked = max(checked, len(self.answers))
                self.changed.wait(min(left, 1.0))

    def more(self, count: int) -> None:
        """Wait for `count` more answers than there are now."""
        with self.changed:
            goal = len(self.answers) + count
        seen = self.wait_for(lambda answer: True, after=goal - 1)
        assert seen >= goal

    def running(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def summary(self) -> str:
        failed = [answer for answer in self.answers if answer.master is None]
        return f"{len(self.answers)} requests, {len(failed)} failed: {failed[:5]}"

    def failures(self, method: str) -> list[Answer]:
        return [answer for answer in self.answers
                if answer.method == method and answer.master is None]

    @contextmanager
    def running_threads(self) -> Iterator[Load]:
        for thread in self.threads:
            thread.start()
        try:
            yield self
        finally:
            self.done.set()
            for thread in self.threads:
                thread.join(TIMEOUT + 5)
            assert not self.running(), "a client thread did not end"


@dataclass
class Pair:
    instances: list[Instance]
    port: int
    nginx: Program
    stack: list[Program]


@contextmanager
def serving_pair(nginx_binary: str, folder: Path, site: Callable[[str], str] = str,
                 ) -> Iterator[Pair]:
    """Two instances and nginx in front of them, its site changed by `site`."""
    stack: list[Program] = []
    instances = [Instance(folder, 1), Instance(folder, 2)]
    (folder / "version").write_text("1\n")
    try:
        for instance in instances:
            instance.start(stack)
        with nginx_front(nginx_binary, folder,
                         lambda port: site(site_config(port, folder))) as (nginx, port):
            yield Pair(instances, port, nginx, stack)
    finally:
        forked = set()
        for program in reversed(stack):  # each instance is its own process group
            program.kill()
            forked |= {int(match.group(1)) for line in program.lines
                       if (match := FORKED.search(line))}
        wait_gone({program.pid for program in stack} | forked)  # every master and worker


def both_answer(load: Load, instances: list[Instance]) -> None:
    for instance in instances:
        master = instance.master
        load.wait_for(lambda answer, master=master: answer.master == master)  # type: ignore[misc]


def reload(instance: Instance, load: Load) -> None:
    """SIGUSR2: wait for the reload to end and for nginx to bring a new worker a request."""
    assert instance.program is not None
    old = instance.workers()
    mark = len(instance.program.lines)
    os.kill(instance.master, signal.SIGUSR2)
    instance.program.wait_for_line(rb"reload \d+ done", start=mark, timeout=30)
    wait_gone(old)
    master = instance.master
    load.wait_for(lambda answer: answer.master == master and answer.pid not in old)


def without_retries(site: str) -> str:
    """The site with nginx's retries on the other instance turned off."""
    assert "proxy_next_upstream error timeout;" in site
    return site.replace("proxy_next_upstream error timeout;", "proxy_next_upstream off;")


@pytest.mark.timeout(150)
@pytest.mark.parametrize("retries", [True, False], ids=["retries", "no_retries"])
def test_a_rolling_reload_under_load_fails_no_request(nginx_binary: str, tmp_path: Path,
                                                      retries: bool) -> None:
    """SIGUSR2 to one master, then to the other: new code, the same masters, nothing lost.

    Not even nginx's retries are needed: the listening socket stays open
    and the master keeps every connection it holds, so nginx never sees
    a refused or dropped connection.
    """
    with (serving_pair(nginx_binary, tmp_path, str if retries else without_retries) as pair,
          Load(pair.port, keep=2, fresh=2, posts=2, seconds=90).running_threads() as load):
        instances = pair.instances
        both_answer(load, instances)
        masters = [instance.master for instance in instances]
        old = set().union(*(instance.workers() for instance in instances))
        load.more(200)
        (tmp_path / "version").write_text("2\n")  # the deploy: new code on disk
        for instance in instances:
            reload(instance, load)
            load.more(200)
        assert [instance.master for instance in instances] == masters
        assert not old & set().union(*(instance.workers() for instance in instances))
    assert load.failures("GET") == [] and load.failures("POST") == [], load.summary()
    last = load.answers[-40:]
    assert {answer.version for answer in last} == {"2"}, last  # only the new code answers
    assert {answer.master for answer in last} == set(masters)
    print(f"rolling reload ({'with' if retries else 'without'} retries): {load.summary()}, "
          f"{sum(answer.method == 'POST' for answer in load.answers)} of them POSTs")


def restart(instance: Instance, load: Load, stack: list[Program]) -> None:
    """Graceful stop, start again, and wait until nginx sends the new instance requests."""
    assert instance.program is not None
    old = {instance.master, *instance.workers()}
    assert instance.program.stop(signal.SIGTERM, timeout=30) == 0
    wait_gone(old)
    instance.start(stack)
    master = instance.master
    load.wait_for(lambda answer: answer.master == master)  # after nginx's fail_timeout


@pytest.mark.timeout(150)
def test_a_rolling_restart_under_load_fails_no_request(nginx_binary: str, tmp_path: Path,
                                                       ) -> None:
    with (serving_pair(nginx_binary, tmp_path) as pair,
          Load(pair.port, keep=2, fresh=2, posts=2, seconds=90).running_threads() as load):
        instances = pair.instances
        both_answer(load, instances)
        before = {instance.master for instance in instances}
        for instance in instances:
            restart(instance, load, pair.stack)
        after = {instance.master for instance in instances}
        both_answer(load, instances)
    assert not before & after  # both instances are new processes
    assert load.failures("GET") == [], load.summary()
    # A POST that nginx sends on a kept connection just as the stopping
    # instance closes it is not retried (nginx cannot know it was not read).
    assert len(load.failures("POST")) <= 8, load.summary()
    masters = {answer.master for answer in load.answers}
    assert before | after <= masters
    print(f"rolling restart: {load.summary()}; POSTs failed: {len(load.failures('POST'))} "
          f"of {sum(answer.method == 'POST' for answer in load.answers)}")


RETRY_POSTS = "proxy_next_upstream error timeout non_idempotent;"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("retry_posts", [False, True], ids=["default", "non_idempotent"])
def test_an_instance_killed_under_load(nginx_binary: str, tmp_path: Path,
                                       retry_posts: bool) -> None:
    def site(text: str) -> str:
        assert "proxy_next_upstream error timeout;" in text
        return text.replace("proxy_next_upstream error timeout;", RETRY_POSTS)

    with serving_pair(nginx_binary, tmp_path, site if retry_posts else str) as pair:
        victim, survivor = pair.instances
        with Load(pair.port, keep=3, fresh=2, posts=2, seconds=60).running_threads() as load:
            both_answer(load, pair.instances)
            doomed = {victim.master, *victim.workers()}
            assert len(doomed) == 1 + WORKERS
            for pid in doomed:  # kill -9, master and every worker, by PID
                os.kill(pid, signal.SIGKILL)
            killed_at = len(load.answers)
            wait_gone(doomed)
            load.more(200)
        pair.nginx.drain_output()
        log = pair.nginx.output()
    after = load.answers[killed_at:]
    late = [answer for answer in after[50:] if answer.master not in (survivor.master, None)]
    assert late == []  # nginx sends everything to the survivor
    failed_gets, failed_posts = load.failures("GET"), load.failures("POST")
    assert failed_gets == [], load.summary()  # GETs were retried on the other instance
    if retry_posts:
        assert failed_posts == [], load.summary()
    else:
        assert len(failed_posts) <= 4, load.summary()  # a POST under way is not retried
    cut = [line for line in log.splitlines()
           if "[error]" in line and "while reading response header from upstream" in line]
    print(f"kill -9 ({'non_idempotent' if retry_posts else 'default'}): {load.summary()}; "
          f"POSTs failed: {len(failed_posts)}; cut off under way: "
          f"{sum('GET /work' in line for line in cut)} GETs (retried), "
          f"{sum('POST /work' in line for line in cut)} POSTs")
