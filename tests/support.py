"""Shared test support: start real processes, wait on events, reap by PID.

Nothing here mocks anything. A started program is a real child process; the
helpers wait for a line it prints (never a fixed sleep) and every process is
killed and reaped by PID when the test ends, whatever happened.
"""

from __future__ import annotations

import os
import re
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
PORT_LINE = re.compile(rb"listening on port (\d+)")
TIMEOUT = 20.0
"""Seconds any one call on a test's client socket may take."""


class Program:
    """A child process whose output is read line by line as it arrives."""

    def __init__(self, argv: Sequence[str], cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> None:
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
        if env:
            full_env.update(env)
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv, cwd=cwd or ROOT, env=full_env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._pending = b""
        self.lines: list[bytes] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self, timeout: float) -> bool:
        """Read what is available within timeout; False at EOF."""
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                return True
        try:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        self._pending += chunk
        *complete, self._pending = self._pending.split(b"\n")
        self.lines.extend(complete)
        return True

    def wait_for_line(self, pattern: bytes | re.Pattern[bytes], timeout: float = 20.0,
                      start: int = 0) -> re.Match[bytes]:
        """Wait until a line (from index start) matches; return the match."""
        regex = re.compile(pattern) if isinstance(pattern, bytes) else pattern
        deadline = time.monotonic() + timeout
        checked = start
        while True:
            while checked < len(self.lines):
                match = regex.search(self.lines[checked])
                checked += 1
                if match:
                    return match
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line matching {regex.pattern!r} from {self.argv}; "
                                   f"output so far: {self.output()!r}")
            if not self._pump(left) and checked >= len(self.lines):
                raise EOFError(f"{self.argv} ended (rc={self.proc.poll()}) before printing "
                               f"{regex.pattern!r}; output: {self.output()!r}")

    def wait_for_port(self, timeout: float = 20.0) -> int:
        return int(self.wait_for_line(PORT_LINE, timeout).group(1))

    def output(self) -> str:
        return b"\n".join([*self.lines, self._pending]).decode(errors="replace")

    def drain_output(self, timeout: float = 0.0) -> None:
        """Read whatever output is ready now (or within timeout)."""
        while self._pump(timeout) and timeout == 0.0:
            assert self.proc.stdout is not None
            with selectors.DefaultSelector() as sel:
                sel.register(self.proc.stdout, selectors.EVENT_READ)
                if not sel.select(0):
                    return

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        """Send sig, wait for exit (SIGKILL after timeout), collect output; return rc."""
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(self.proc.pid)
            rc = self.proc.wait(5)
        while self._pump(0.05):
            pass
        return rc

    def kill(self) -> None:
        """Kill the whole process group (workers included) and reap the child."""
        kill_group(self.proc.pid)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def kill_group(pid: int) -> None:
    for target in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass


@contextmanager
def running(argv: Sequence[str], **kwargs: object) -> Iterator[Program]:
    """Start a program; always kill its process group and reap it afterwards."""
    program = Program(argv, **kwargs)  # type: ignore[arg-type]
    try:
        yield program
    finally:
        program.kill()


@contextmanager
def example(relative: str, *args: str) -> Iterator[tuple[Program, int]]:
    """Run docs/examples/<relative>, wait for 'listening on port N'; yield (program, port)."""
    path = EXAMPLES / relative
    assert path.is_file(), path
    with running([sys.executable, str(path), *args]) as program:
        yield program, program.wait_for_port()


# --- clients ------------------------------------------------------------------------------


def connect(port: int, timeout: float = TIMEOUT) -> socket.socket:
    """A client connection to 127.0.0.1:`port`; every call on it is bounded by `timeout`."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def read_line(sock: socket.socket) -> bytes:
    """One line, newline included; what came before EOF if the peer closed first."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago (bound by the kernel, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
