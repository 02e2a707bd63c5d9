"""Running the programs of a recording: servers in the background, commands to the end.

Every program gets a terminal of its own (a pseudo-terminal, as a reader's
shell gives it), starts in a session of its own so that it and its
workers can be signalled and, at the end, killed as a group by its PID,
and is read line by line by a thread. Waits are bounded (`TIMEOUT`) and
synchronise on lines the programs print, never on sleeping.
"""

from __future__ import annotations

import os
import pty
import queue
import re
import signal
import socket
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from session_text import Names, pid_context

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0
"""The longest any single wait of a recording may take, in seconds."""

CLIENT = ("python -c \"import socket,sys,threading as t;"
          "c=socket.create_connection(('127.0.0.1',int(sys.argv[1])));"
          "o=sys.stdout.buffer;r=t.Thread(target=lambda:[o.write(b) and o.flush()"
          " for b in iter(lambda:c.recv(65536),b'')]);"
          "r.start();[c.sendall(l) for l in sys.stdin.buffer];c.shutdown(1);r.join()\"")
"""A client a reader types instead of ``nc -N``: sends its standard input, half-closes,
and prints what the server sends as it comes, until the server closes. (When
the project has a client program of its own, put its command line here and
run ``make sessions``: every page that shows the client changes with it.)"""
UNIX_CLIENT = CLIENT.replace("c=socket.create_connection(('127.0.0.1',int(sys.argv[1])))",
                             "c=socket.socket(socket.AF_UNIX);c.connect(sys.argv[1])")

READY = re.compile(r"listening on (?:port |https?://[^\s/]*:)(\d+)")
"""The first line every program of the site prints, with the port it took."""


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
