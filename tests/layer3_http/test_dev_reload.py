"""``--reload``: a change to the application's files reloads the server; a syntax error does not.

A real server runs from the command line on an application in
``tmp_path`` made of two files (the script and a module it imports). The
tests rewrite them: the watcher says what changed, compiles it and sends
``SIGUSR2``, after which the server answers with the new code. A file
with a syntax error is shown (file, line, caret) and the old code goes on
answering until the file is fixed. The watcher is a process of its own;
it goes with the server (checked by PID).
"""

from __future__ import annotations

import http.client
import os
import re
import select
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support import Program, running

from layer2_prefork._watch import Snapshot
from layer3_http._devreload import application_files, compile_errors

APP = """\
from layer3_http import Request

import words


def app(request: Request) -> None:
    request.send_status("200 OK")
    request.send_header("Content-Type", "text/plain")
    request.send_data(words.WORD + "\\n")
"""
DONE = re.compile(rb"reload (\d+) done")


def write(path: Path, text: str) -> None:
    """Write a file so that `stat` sees a change, even within one clock tick."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns <= before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def word(port: int) -> str:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        assert response.status == 200
        return response.read().decode().strip()
    finally:
        connection.close()


@contextmanager
def dev_server(folder: Path) -> Iterator[tuple[Program, int]]:
    write(folder / "app.py", APP)
    write(folder / "words.py", 'WORD = "one"\n')
    argv = [sys.executable, "-m", "layer3_http", "app.py", "--reload", "--workers", "1",
            "--listen", "127.0.0.1:0"]
    with running(argv, cwd=folder) as program:
        port = program.wait_for_port()
        program.wait_for_line(rb"forked worker")
        program.wait_for_line(rb"^reload: watching 2 file\(s\) of the application for changes$")
        yield program, port


def test_a_change_reloads_and_the_new_code_answers(tmp_path: Path) -> None:
    with dev_server(tmp_path) as (program, port):
        assert word(port) == "one"
        mark = len(program.lines)
        write(tmp_path / "words.py", 'WORD = "two"\n')
        program.wait_for_line(rb"^reload: words.py changed$", 20, mark)
        program.wait_for_line(rb"^reload: reloading \(SIGUSR2\)$", 20, mark)
        program.wait_for_line(DONE, 20, mark)
        assert word(port) == "two"
        mark = len(program.lines)
        write(tmp_path / "app.py", APP.replace('words.WORD + "\\n"', 'words.WORD + "!\\n"'))
        program.wait_for_line(rb"^reload: app.py changed$", 20, mark)
        program.wait_for_line(DONE, 20, mark)
        assert word(port) == "two!"


def test_a_syntax_error_is_shown_and_the_old_code_serves_until_it_is_fixed(
        tmp_path: Path) -> None:
    with dev_server(tmp_path) as (program, port):
        assert word(port) == "one"
        mark = len(program.lines)
        write(tmp_path / "words.py", 'WORD = "two\n')
        program.wait_for_line(rb"^reload: words.py changed$", 20, mark)
        program.wait_for_line(rb"^reload: not reloading until the error is fixed", 20, mark)
        shown = b"\n".join(program.lines[mark:])
        assert f'File "{tmp_path / "words.py"}", line 1'.encode() in shown
        assert re.search(rb"\n    WORD = \"two\n +\^\n", shown), shown
        assert b"SyntaxError: unterminated string literal" in shown
        assert not [line for line in program.lines[mark:] if DONE.search(line)]
        assert word(port) == "one"  # the old workers serve on
        mark = len(program.lines)
        write(tmp_path / "words.py", 'WORD = "fixed"\n')
        program.wait_for_line(rb"^reload: reloading \(SIGUSR2\)$", 20, mark)
        program.wait_for_line(DONE, 20, mark)
        assert word(port) == "fixed"


def test_the_watcher_goes_with_the_server(tmp_path: Path) -> None:
    with dev_server(tmp_path) as (program, _):
        children = Path(f"/proc/{program.pid}/task/{program.pid}/children").read_text()
        forks = {int(match.group(1)) for line in program.lines
                 if (match := re.search(rb"forked worker (\d+)", line))}
        watchers = [int(pid) for pid in children.split() if int(pid) not in forks]
        assert len(watchers) == 1
        watch = os.pidfd_open(watchers[0])
        try:
            assert program.stop(signal.SIGTERM) == 0
            assert select.select([watch], [], [], 20)[0], "the watcher outlived the server"
        finally:
            os.close(watch)


def test_the_files_watched_are_the_applications_own(tmp_path: Path) -> None:
    (tmp_path / "words.py").write_text('WORD = "one"\n')
    (tmp_path / "unused.py").write_text("")
    (tmp_path / "app.py").write_text(APP)
    sys.path.insert(0, str(tmp_path))
    try:
        files = application_files(lambda: __import__("app"), str(tmp_path),
                                  also=[str(tmp_path / "app.py")])
    finally:
        sys.path.remove(str(tmp_path))
    assert files == sorted([str(tmp_path / "app.py"), str(tmp_path / "words.py")])


def test_snapshots_see_changes_removals_and_returns(tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    write(path, "x = 1\n")
    first = Snapshot.take([str(path)])
    assert first.changed(Snapshot.take([str(path)])) == []
    write(path, "x = 2\n")
    second = Snapshot.take([str(path)])
    assert first.changed(second) == [str(path)]
    path.unlink()
    third = Snapshot.take([str(path)])
    assert second.changed(third) == [str(path)]
    write(path, "x = 2\n")
    assert third.changed(Snapshot.take([str(path)])) == [str(path)]


def test_compile_errors_name_the_file_and_line(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.py", tmp_path / "bad.py"
    good.write_text("def f():\n    return 1\n")
    bad.write_text("def f()\n    return 1\n")
    errors = compile_errors([str(good), str(bad), str(tmp_path / "gone.py")])
    assert list(errors) == [str(bad)]
    assert f'File "{bad}", line 1' in errors[str(bad)]
    assert "    def f()\n" in errors[str(bad)] and "^" in errors[str(bad)]
    assert "SyntaxError: expected ':'" in errors[str(bad)]
