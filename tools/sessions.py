"""Record the terminal sessions of the tutorial; check them against a fresh run.

Every ``console`` block on the site that shows a program's output is
included from a file ``docs/sessions/NAME.txt``, and that file is written by
running ``docs/sessions/NAME.py``: a small recording script that starts the
real server (by PID, on a port the kernel chose), runs the commands a
reader would type, and stops the server again. Each named *block* of a
recording (one terminal: the server's, a client's) is one snippet section
of the ``.txt`` file, which a page includes inside its console fence:

    ```console
    --8<-- "docs/sessions/part1-echo.txt:server"
    ```

What differs from one run to the next is mapped to stable values before it
is stored (``display``): the real ports to the ports the page names, the
client's ephemeral ports and the PIDs to numbers in order of appearance,
the scratch folder to ``/tmp``. What still differs (clock times, dates,
durations, tool versions) is masked only when two recordings are compared
(``mask``); the stored text keeps the real values of the run that wrote it.

    python tools/sessions.py              # re-run every recording, report drift
    python tools/sessions.py --update     # re-record (only files whose masked text changed)
    python tools/sessions.py NAME...      # only these recordings

``tests/docs/test_sessions.py`` re-runs each recording and fails when its
masked output differs from the stored text. After a change of behaviour,
``make sessions`` re-records all of them; review the diff like code.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import pty
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
SESSIONS = ROOT / "docs" / "sessions"
TIMEOUT = 30.0
"""The longest any single wait of a recording may take, in seconds."""

# The clients a reader types instead of `nc`: send standard input, half-close,
# print everything the server sends until it closes.
CLIENT = ("python -c \"import socket,sys,threading as t;"
          "c=socket.create_connection(('127.0.0.1',int(sys.argv[1])));"
          "o=sys.stdout.buffer;r=t.Thread(target=lambda:[o.write(b) and o.flush()"
          " for b in iter(lambda:c.recv(65536),b'')]);"
          "r.start();[c.sendall(l) for l in sys.stdin.buffer];c.shutdown(1);r.join()\"")
"""A client a reader types instead of ``nc -N``: sends its standard input, half-closes,
and prints what the server sends as it comes, until the server closes."""
UNIX_CLIENT = CLIENT.replace("c=socket.create_connection(('127.0.0.1',int(sys.argv[1])))",
                             "c=socket.socket(socket.AF_UNIX);c.connect(sys.argv[1])")

READY = re.compile(r"listening on (?:port |https?://[^\s/]*:)(\d+)")
"""The first line every program of the site prints, with the port it took."""

SECTION = re.compile(r"^--8<-- \[(start|end):([\w.-]+)\]$")

# -- mapping a run to stable text -------------------------------------------------------

PID_WORDS = [r"worker", r"workers", r"PID", r"pid", r"process", r"kill(?: -[A-Z0-9]+)?"]
"""A number after one of these words is a process id (``worker 4213``, ``kill -9 4213``)."""


def pid_context(extra: Sequence[str] = ()) -> re.Pattern[str]:
    """Where process ids are: after PID_WORDS and a separator, or after an extra prefix."""
    words = "|".join(PID_WORDS)
    prefixes = "|".join([rf"(?<![-\w])(?:{words})[ :=#]+", *extra])
    return re.compile(rf"((?:{prefixes}))(\d+(?:, \d+)*)\b")


PID_CONTEXT = pid_context()
PORT_CONTEXT = re.compile(r"((?:127\.0\.0\.1|localhost|\[::1\]):|\bport )(\d{4,5})\b")
"""A number after an address or the word ``port`` is a port."""
FIRST_PID = 4201
FIRST_EPHEMERAL_PORT = 40001


@dataclass
class Names:
    """Real values met in one recording and the stable ones shown instead."""

    ports: dict[int, int] = field(default_factory=dict)
    """real listening port -> the port the page names"""
    pids: dict[str, str] = field(default_factory=dict)
    ephemeral: dict[str, str] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    """real path prefix -> shown path prefix (longest first when applied)"""
    pid_context: re.Pattern[str] = PID_CONTEXT

    def display(self, text: str) -> str:
        for real, shown in sorted(self.paths.items(), key=lambda item: -len(item[0])):
            text = text.replace(real, shown)
        for real_port, shown_port in self.ports.items():
            text = re.sub(rf"\b{real_port}\b", str(shown_port), text)
        shown_ports = {str(port) for port in self.ports.values()}

        def port(match: re.Match[str]) -> str:
            number = match.group(2)
            if number in shown_ports:
                return match.group(0)
            if number not in self.ephemeral:
                self.ephemeral[number] = str(FIRST_EPHEMERAL_PORT + len(self.ephemeral))
            return match.group(1) + self.ephemeral[number]

        def pids(match: re.Match[str]) -> str:
            shown = []
            for number in match.group(2).split(", "):
                if number not in self.pids:
                    self.pids[number] = str(FIRST_PID + len(self.pids))
                shown.append(self.pids[number])
            return match.group(1) + ", ".join(shown)

        text = PORT_CONTEXT.sub(port, text)
        return self.pid_context.sub(pids, text)


MASKS: list[tuple[re.Pattern[str], str]] = [(re.compile(pattern), replacement)
                                            for pattern, replacement in [
    (r"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT", "<date>"),
    (r"\[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]", "[<date>]"),
    (r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?", "<time>"),
    (r"\b\d\d:\d\d:\d\d(?:[,.]\d+)?\b", "<time>"),
    (r"\b\d+m\d+\.\d+s\b", "<duration>"),
    (r"\b\d+(?:\.\d+)? ?(?:ms|µs|us)\b", "<duration>"),
    (r"(?<![\d.])\d+\.\d+ ?s\b", "<duration>"),
    (r"(?<![\d.])\d+\.\d{3}(?![\d.])", "<seconds>"),
    (r"\b(curl|Python|OpenSSL)/[\d.]+", r"\1/<version>"),
    (r"_ssl\.c:\d+", "_ssl.c:<line>"),
]]  # dates before times: an HTTP date holds a time
"""What differs between two honest runs; masked only when runs are compared."""


def mask(text: str, extra: Iterable[tuple[str, str]] = (),
         pids: re.Pattern[str] = PID_CONTEXT) -> str:
    """Text with the run-dependent parts replaced by placeholders, for comparison.

    Process ids become ``<pid>``: which worker serves a connection is the
    kernel's or the master's choice, not something a page promises.
    """
    for pattern, replacement in [*((re.compile(p), r) for p, r in extra), *MASKS]:
        text = pattern.sub(replacement, text)
    return pids.sub(lambda m: m.group(1) + re.sub(r"\d+", "<pid>", m.group(2)), text)


# -- running things -------------------------------------------------------------------------


class RecordingError(RuntimeError):
    """A recording did not go as its script says (a wait timed out, a command failed)."""


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def plain(raw: bytes) -> str:
    """A line as a page shows it: no carriage return, no terminal styling (curl's bold)."""
    return ANSI.sub("", raw.decode("utf-8", "replace").rstrip("\r"))


class Lines:
    """The output of a child process, read by a thread, one line at a time."""

    def __init__(self, proc: subprocess.Popen[bytes], fd: int) -> None:
        self.proc = proc
        self.fd = fd
        self.queue: queue.Queue[str | None] = queue.Queue()
        self.ended = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # EIO: every copy of the terminal's other end is closed
                chunk = b""
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for raw in complete:
                self.queue.put(plain(raw))
        if pending:
            self.queue.put(plain(pending))
        os.close(self.fd)
        self.queue.put(None)

    def next(self, deadline: float) -> str | None:
        """The next line, None at the end of the output; RecordingError after deadline."""
        if self.ended:
            return None
        try:
            line = self.queue.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise RecordingError(f"no output in time from {self.proc.args!r}") from None
        if line is None:
            self.ended = True
        return line


class Server:
    """A program started in the background; its output goes to a block of the recording."""

    def __init__(self, recording: Recording, block: str, argv: str, hide: Sequence[str],
                 elide: Sequence[str], in_root: bool = False) -> None:
        self.recording = recording
        self.block: str | None = block
        self.hide = [re.compile(pattern) for pattern in hide]
        self.elide = [re.compile(pattern) for pattern in elide]
        self.proc, self.lines = recording.popen(argv, ROOT if in_root else None)
        self.port = 0
        """The real port the program was given (0: none)."""
        self.rc: int | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def into(self, block: str | None) -> None:
        """Lines read from now on go to another block (None: read, but not shown)."""
        self.block = block

    def _take(self, line: str) -> None:
        if self.block is None:
            return
        if any(pattern.search(line) for pattern in self.hide):
            return
        if any(pattern.search(line) for pattern in self.elide):
            lines = self.recording.blocks.setdefault(self.block, [])
            if not lines or lines[-1] != "...":
                lines.append("...")
            return
        self.recording.add(self.block, line)

    def wait_for(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """Read lines into the block until one matches pattern; return the match."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.next(deadline)
            except RecordingError:
                raise RecordingError(f"{self.proc.args!r} printed no line matching {pattern!r}"
                                     f" in {timeout} s") from None
            if line is None:
                raise RecordingError(f"{self.proc.args!r} ended before printing {pattern!r}")
            self._take(line)
            match = regex.search(line)
            if match:
                return match

    def skip_to(self, pattern: str, timeout: float = TIMEOUT) -> re.Match[str]:
        """Read lines without showing them until one matches pattern; show that one."""
        block, self.block = self.block, None
        try:
            match = self.wait_for(pattern, timeout)
        finally:
            self.block = block
        self._take(match.string)
        return match

    def send(self, signum: int, group: bool = False) -> None:
        """Send a signal to the program (group: to its process group, as a terminal does)."""
        if group:
            os.killpg(self.proc.pid, signum)
        else:
            os.kill(self.proc.pid, signum)

    def interrupt(self) -> None:
        """Ctrl-C: the terminal shows ``^C`` and signals the foreground process group."""
        if self.block is not None:
            self.recording.add(self.block, "^C")
        self.send(signal.SIGINT, group=True)

    def wait_exit(self, timeout: float = TIMEOUT) -> int:
        """Read the rest of the output into the block; wait for the exit; return the status."""
        deadline = time.monotonic() + timeout
        while (line := self.lines.next(deadline)) is not None:
            self._take(line)
        try:
            self.rc = self.proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            raise RecordingError(f"{self.proc.args!r} did not exit") from None
        return self.rc

    def stop(self, signum: int = signal.SIGTERM, timeout: float = TIMEOUT) -> int:
        """Send signum (by PID) and wait for the exit; return the exit status."""
        if self.proc.poll() is None:
            self.send(signum)
        return self.wait_exit(timeout)

    def show_status(self) -> None:
        """Show ``$ echo $?`` and the exit status, as the reader's next command would."""
        assert self.rc is not None and self.block is not None, "wait for the exit first"
        self.recording.add(self.block, "$ echo $?")
        self.recording.add(self.block, str(self.rc))

    def kill(self) -> None:
        """Kill the program's process group (its workers too) and reap it."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)


class Recording:
    """One recording: the blocks it writes, the programs it started, the names it maps."""

    def __init__(self, name: str, workdir: Path) -> None:
        self.name = name
        self.workdir = workdir
        self.blocks: dict[str, list[str]] = {}
        self.names = Names(paths={str(workdir): "/tmp", str(ROOT) + "/": ""})
        self.servers: list[Server] = []
        self.masks: list[tuple[str, str]] = []
        self.unordered_blocks: set[str] = set()
        self.pid_prefixes: list[str] = []
        (workdir / "docs").symlink_to(ROOT / "docs")
        self.env = dict(os.environ)
        self.env.update(
            PATH=os.pathsep.join([str(Path(sys.executable).parent), self.env.get("PATH", "")]),
            PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", PYTHONDONTWRITEBYTECODE="1",
            LC_ALL="C.UTF-8", TZ="UTC", COLUMNS="100")
        for name in list(self.env):  # what a reader's fresh terminal would not have
            if name.startswith(("MAKE", "MFLAGS", "PYTEST_", "PYTHONSTARTUP", "VIRTUAL_ENV")):
                del self.env[name]

    # -- what the script calls ---------------------------------------------------------------

    def start(self, block: str, command: str, *, port: int | None = None,
              ready: str | None = READY.pattern, hide: Sequence[str] = (),
              elide: Sequence[str] = (), in_root: bool = False, cd: str | None = None
              ) -> Server:
        """Show ``$ command`` in block and start it in the background.

        port: the port the page names; the program is given a free port in
        its place (the kernel's choice, so that runs never collide), which is
        shown as port. A program that ends before its ``ready`` line (the
        port was taken in between) is started again on another port.
        hide: lines matching any of these are not shown.
        elide: runs of lines matching any of these are shown as one ``...``.
        in_root: run in the repository's root instead of the scratch folder
        (for ``make``).
        cd: a folder to change to first, shown as ``$ cd folder``.
        """
        if cd is not None:
            self.add(block, "$ cd " + cd)
        self.add(block, "$ " + command)
        mark = len(self.blocks[block])
        for attempt in range(3):
            real_port = free_port() if port is not None else 0
            argv = command if port is None else re.sub(rf"\b{port}\b", str(real_port), command)
            shell = ("" if cd is None else f"cd {cd} && ") + "exec " + self.real(argv)
            server = Server(self, block, shell, hide, elide, in_root)
            self.servers.append(server)
            server.port = real_port
            if port is not None:
                self.names.ports[real_port] = port
            if ready is None:
                return server
            try:
                server.wait_for(ready)
                return server
            except RecordingError:
                if attempt == 2 or server.proc.poll() is None:
                    raise
                del self.blocks[block][mark:]
        raise AssertionError("not reached")

    def run(self, block: str | None, command: str, *, timeout: float = TIMEOUT,
            status: Sequence[int] | None = (0,), elide: Sequence[str] = (),
            in_root: bool = False) -> str:
        """Run a shell command to the end; show it and its output in block (None: hidden).

        status: the exit statuses the script expects (None: any).
        elide: runs of output lines matching any of these are shown as one ``...``.
        in_root: run in the repository's root instead of the scratch folder.
        """
        proc, lines = self.popen(self.real(command), ROOT if in_root else None)
        deadline = time.monotonic() + timeout
        output = []
        try:
            while (line := lines.next(deadline)) is not None:
                output.append(line)
            rc = proc.wait(max(0.1, deadline - time.monotonic()))
        except (RecordingError, subprocess.TimeoutExpired):
            kill_group(proc)
            raise RecordingError(f"{command!r} did not finish in {timeout} s") from None
        if status is not None and rc not in status:
            raise RecordingError(f"{command!r} exited {rc}:\n" + "\n".join(output))
        if block is not None:
            self.add(block, "$ " + command)
            hidden = [re.compile(pattern) for pattern in elide]
            for line in output:
                if not any(pattern.search(line) for pattern in hidden):
                    self.add(block, line)
                elif self.blocks[block][-1] != "...":
                    self.add(block, "...")
        return "\n".join(output)

    @contextmanager
    def background(self, block: str, command: str, until: str | None = None) -> Iterator[None]:
        """``$ command &``: started now; its output up to a line matching until is
        shown at once, the rest when the with ends (when the job has finished)."""
        self.add(block, "$ " + command + " &")
        proc, lines = self.popen(self.real(command))
        try:
            if until is not None:
                deadline = time.monotonic() + TIMEOUT
                while (line := lines.next(deadline)) is not None:
                    self.add(block, line)
                    if re.search(until, line):
                        break
            yield
            deadline = time.monotonic() + TIMEOUT
            while (line := lines.next(deadline)) is not None:
                self.add(block, line)
            proc.wait(TIMEOUT)
        finally:
            kill_group(proc)

    def write(self, name: str, data: bytes) -> None:
        """A file in the recording's folder that the page takes as given (not shown)."""
        (self.workdir / name).write_bytes(data)

    def mask(self, pattern: str, replacement: str = "<varies>") -> None:
        """One more run-dependent pattern, masked when this recording is compared."""
        self.masks.append((pattern, replacement))

    def pids_after(self, prefix: str) -> None:
        """Numbers after this regular expression are process ids too (``idle: \\[``)."""
        self.pid_prefixes.append(prefix)
        self.names.pid_context = pid_context(self.pid_prefixes)

    def unordered(self, block: str) -> None:
        """Lines of block may come in any order (concurrent workers): compare them sorted."""
        self.unordered_blocks.add(block)

    # -- machinery ---------------------------------------------------------------------------

    def add(self, block: str, line: str) -> None:
        self.blocks.setdefault(block, []).append(line)

    def real(self, command: str) -> str:
        """A command as shown, with the real ports and paths of this run."""
        latest = {shown: real for real, shown in self.names.ports.items()}  # the last one wins
        for shown_port, real_port in latest.items():
            command = re.sub(rf"\b{shown_port}\b", str(real_port), command)
        return re.sub(r"(?<![\w.])/tmp/", str(self.workdir) + "/", command)

    def popen(self, command: str, cwd: Path | None = None
              ) -> tuple[subprocess.Popen[bytes], Lines]:
        """Start a shell command with its output on a terminal of its own, as a reader's is.

        A terminal, not a pipe: programs buffer their output by lines, and
        what they write to stdout and stderr comes in the order a reader sees.
        """
        reader, writer = pty.openpty()
        attributes = termios.tcgetattr(writer)
        attributes[1] &= ~termios.ONLCR  # keep \n as it is written
        termios.tcsetattr(writer, termios.TCSANOW, attributes)
        try:
            proc = subprocess.Popen(["bash", "-c", command], cwd=cwd or self.workdir, env=self.env,
                                    stdin=subprocess.DEVNULL, stdout=writer, stderr=writer,
                                    start_new_session=True)
        finally:
            os.close(writer)
        return proc, Lines(proc, reader)

    def close(self) -> None:
        for server in self.servers:
            server.kill()

    def text(self) -> str:
        """The recording as stored: one snippet section per block, mapped to stable names."""
        out = []
        for block, lines in self.blocks.items():
            out.append(f"--8<-- [start:{block}]")
            out.extend(self.names.display(line).rstrip() for line in lines)
            out.append(f"--8<-- [end:{block}]")
        return "\n".join(out) + "\n"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(10)


# -- recordings on disk ----------------------------------------------------------------------


def scripts(names: Sequence[str] = ()) -> list[Path]:
    found = sorted(SESSIONS.glob("*.py"))
    if names:
        found = [p for p in found if p.stem in names]
        missing = set(names) - {p.stem for p in found}
        if missing:
            raise SystemExit(f"no such recording: {', '.join(sorted(missing))}")
    return found


def load(script: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_session_{script.stem}", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record(script: Path) -> Recording:
    """Run one recording script in a scratch folder; return the finished recording."""
    module = load(script)
    workdir = Path(tempfile.mkdtemp(prefix=f"session-{script.stem}-"))
    recording = Recording(script.stem, workdir)
    try:
        module.record(recording)
    finally:
        recording.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return recording


def sections(text: str) -> dict[str, list[str]]:
    """The blocks of a stored recording."""
    blocks: dict[str, list[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        marker = SECTION.match(line)
        if marker and marker.group(1) == "start":
            current = marker.group(2)
            blocks[current] = []
        elif marker:
            current = None
        elif current is not None:
            blocks[current].append(line)
    return blocks


def differences(recording: Recording, stored: str) -> list[str]:
    """How the masked blocks of a fresh recording differ from the stored text."""
    fresh = sections(recording.text())
    old = sections(stored)
    problems = []
    if fresh.keys() != old.keys():
        problems.append(f"blocks {sorted(old)} stored, {sorted(fresh)} recorded")
    for block in fresh.keys() & old.keys():
        pids = recording.names.pid_context
        new_lines = [mask(line, recording.masks, pids) for line in fresh[block]]
        old_lines = [mask(line, recording.masks, pids) for line in old[block]]
        if block in recording.unordered_blocks:
            new_lines, old_lines = sorted(new_lines), sorted(old_lines)
        if new_lines != old_lines:
            import difflib
            diff = difflib.unified_diff(old_lines, new_lines, "stored", "recorded", lineterm="")
            problems.append(f"block {block}:\n" + "\n".join(diff))
    return problems


# -- signatures ---------------------------------------------------------------------------

SIGNATURES = SESSIONS / "signatures.txt"
SIGNATURE_FUNCTIONS = ["layer2_prefork.listen", "layer2_prefork.run"]
WIDTH = 72


def plain_signature(function: Callable[..., object], name: str) -> str:
    """``name(a, b=1, *, c=None) -> R`` without annotations, wrapped at WIDTH."""
    signature = inspect.signature(function)
    parts = []
    star_done = False
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            parts.append("*" + parameter.name)
            star_done = True
            continue
        if parameter.kind is parameter.KEYWORD_ONLY and not star_done:
            parts.append("*")
            star_done = True
        text = parameter.name
        if parameter.default is not parameter.empty:
            text += "=" + repr(parameter.default)
        parts.append(text)
    returns = signature.return_annotation
    tail = ")" + ("" if returns is signature.empty else f" -> {returns}")
    lines, line = [], name + "("
    indent = " " * len(line)
    for index, part in enumerate(parts):
        piece = part + ("," if index < len(parts) - 1 else tail)
        if len(line) + len(piece) + 1 > WIDTH and line.strip() not in ("", name + "("):
            lines.append(line.rstrip())
            line = indent
        line += piece + " "
    lines.append(line.rstrip())
    return "\n".join(lines)


def signatures_text() -> str:
    sys.path.insert(0, str(ROOT))
    out = []
    for dotted in SIGNATURE_FUNCTIONS:
        module_name, _, name = dotted.rpartition(".")
        module = importlib.import_module(module_name)
        out += [f"--8<-- [start:{name}]", plain_signature(getattr(module, name), name),
                f"--8<-- [end:{name}]"]
    return "\n".join(out) + "\n"


# -- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    sys.modules.setdefault("sessions", sys.modules[__name__])  # what the scripts import
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="recordings to run (default: all)")
    parser.add_argument("--update", action="store_true",
                        help="write the recordings whose masked text changed")
    args = parser.parse_args(argv)
    failed = 0
    if not args.names:
        text = signatures_text()
        if not SIGNATURES.exists() or SIGNATURES.read_text(encoding="utf-8") != text:
            if args.update:
                SIGNATURES.write_text(text, encoding="utf-8")
                print("signatures: written")
            else:
                print("signatures: differ from the source (run with --update)")
                failed += 1
    for script in scripts(args.names):
        target = script.with_suffix(".txt")
        started = time.monotonic()
        try:
            recording = record(script)
        except RecordingError as error:
            print(f"{script.stem}: FAILED: {error}")
            failed += 1
            continue
        took = f"{time.monotonic() - started:.1f} s"
        stored = target.read_text(encoding="utf-8") if target.exists() else ""
        problems = differences(recording, stored) if stored else ["not recorded yet"]
        if not problems:
            print(f"{script.stem}: same ({took})")
        elif args.update:
            target.write_text(recording.text(), encoding="utf-8")
            print(f"{script.stem}: written ({took})")
        else:
            print(f"{script.stem}: DIFFERS ({took})\n" + "\n".join(problems))
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
