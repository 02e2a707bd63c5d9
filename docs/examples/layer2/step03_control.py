"""Step 3: a tiny master that knows which child is idle.

Each child tells the master when it is ready for work (``I``, idle). The
master keeps the idle children in a queue, polls the listener only while
that queue is not empty, and hands each connection to the child idle the
longest (``C``, connect, with the socket as ``SCM_RIGHTS`` and the
listener's index). On ``SIGTERM`` it closes the listener and tells every
idle child to terminate (``T``); a busy child is told as soon as it reports
idle again. A child answers ``T`` with ``B`` (goodbye) and exits. ``SIGINT``
does the same as ``SIGTERM`` here. A child that dies is reaped and replaced.

Every message is a frame in the format ``layer2_prefork`` uses: kind (1
byte), descriptor count (1 byte), payload length (4 bytes), payload. The
loop is one ``selectors`` poll over the listener, the children's control
sockets and a wake-up socket for signals. Run it with
``python docs/examples/layer2/step03_control.py [PORT] [--workers N]``.
"""

from __future__ import annotations

import argparse
import os
import selectors
import signal
import socket
import struct
import traceback
from collections import deque
from dataclasses import dataclass, field

from layer1_sockets import BufferedSocket

# --8<-- [start:frames]
HEADER = struct.Struct("!BBI")  # kind, number of descriptors, payload length
IDLE, GOODBYE, CONNECT, TERMINATE = b"I", b"B", b"C", b"T"


def frame(kind: bytes, payload: bytes = b"", fds: int = 0) -> bytes:
    return HEADER.pack(kind[0], fds, len(payload)) + payload


def split_frames(buffer: bytearray) -> list[tuple[bytes, bytes]]:
    """Cut every complete frame off the front of buffer; leave a partial one."""
    frames = []
    while len(buffer) >= HEADER.size:
        kind, _, length = HEADER.unpack_from(buffer)
        end = HEADER.size + length
        if len(buffer) < end:
            break
        frames.append((bytes([kind]), bytes(buffer[HEADER.size:end])))
        del buffer[:end]
    return frames
# --8<-- [end:frames]


# --8<-- [start:child]
def receive_exactly(channel: socket.socket, size: int, fds: list[int]) -> bytes:
    data = b""
    while len(data) < size:
        chunk, new_fds, _, _ = socket.recv_fds(channel, size - len(data), 1)
        fds.extend(new_fds)  # a descriptor arrives with the first byte of its frame
        if not chunk:
            raise EOFError("the master closed the socket pair")
        data += chunk
    return data


def child_loop(channel: socket.socket) -> None:
    while True:
        channel.sendall(frame(IDLE))
        fds: list[int] = []
        try:
            kind, _, length = HEADER.unpack(receive_exactly(channel, HEADER.size, fds))
            payload = receive_exactly(channel, length, fds)
        except EOFError:
            return  # the master is gone: nobody will send us work again
        if bytes([kind]) == TERMINATE:
            channel.sendall(frame(GOODBYE))
            return
        (listener_index,) = struct.unpack("!H", payload)
        conn = BufferedSocket(socket.socket(fileno=fds[0]))
        try:
            serve(conn, f"worker {os.getpid()} listener {listener_index}\n")
            conn.close()
        except OSError:
            conn.reset()


def serve(conn: BufferedSocket, greeting: str) -> None:
    conn.flush(greeting.encode())
    while line := conn.read(4096, b"\n"):
        conn.flush(line)
# --8<-- [end:child]


# --8<-- [start:signals]
class Signals:
    """Signal handlers that only take note; the loop acts on the notes."""

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self.caught: deque[int] = deque()
        self.wake_read, wake_write = socket.socketpair()
        self.wake_read.setblocking(False)
        wake_write.setblocking(False)
        self._wake_write = wake_write  # the interpreter writes a byte here per signal
        signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(number, self.note)
        selector.register(self.wake_read, selectors.EVENT_READ, self.drain)

    def note(self, number: int, frame: object) -> None:
        self.caught.append(number)  # nothing else: we may be anywhere in the loop

    def drain(self) -> None:
        try:
            while self.wake_read.recv(256):
                pass
        except BlockingIOError:
            pass

    def close_in_child(self) -> None:
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
            signal.signal(number, signal.SIG_DFL)
        self.wake_read.close()
        self._wake_write.close()
# --8<-- [end:signals]


# --8<-- [start:state]
@dataclass
class Child:
    pid: int
    channel: socket.socket  # the master's end of the child's socket pair
    received: bytearray = field(default_factory=bytearray)  # bytes of an incomplete frame


class Master:
    def __init__(self, listener: socket.socket, workers: int) -> None:
        self.listener = listener
        self.workers = workers
        self.selector = selectors.DefaultSelector()
        self.signals = Signals(self.selector)
        self.children: dict[int, Child] = {}
        self.idle: deque[int] = deque()  # PIDs, the longest idle first
        self.stopping = False
        self.polling = False  # whether the listener is registered with the selector
    # --8<-- [end:state]

    # --8<-- [start:loop]
    def run(self) -> None:
        while True:
            self.handle_signals()
            self.reap()
            if self.stopping and not self.children:
                break  # check before waiting: nothing would wake us again
            while not self.stopping and len(self.children) < self.workers:
                self.spawn()
            self.poll_listener_if_a_child_is_idle()
            for key, _ in self.selector.select():
                key.data()
        print("stopped", flush=True)

    def poll_listener_if_a_child_is_idle(self) -> None:
        wanted = bool(self.idle) and not self.stopping
        if wanted and not self.polling:
            self.selector.register(self.listener, selectors.EVENT_READ, self.accept)
        elif self.polling and not wanted:
            self.selector.unregister(self.listener)
            if not self.stopping:
                print("no idle worker: connections wait in the backlog", flush=True)
        self.polling = wanted
    # --8<-- [end:loop]

    # --8<-- [start:dispatch]
    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except BlockingIOError:
            return
        listener_index = 0  # this master has a single listener
        message = frame(CONNECT, struct.pack("!H", listener_index), fds=1)
        with conn:  # our copy is closed once it has been sent
            while self.idle:
                pid = self.idle.popleft()  # the child idle the longest
                try:
                    socket.send_fds(self.children[pid].channel, [message], [conn.fileno()])
                except OSError:
                    continue  # it died while idle; reap() will notice
                print(f"sent C to worker {pid} (idle: {list(self.idle)})", flush=True)
                return
        print("no worker took the connection; closed it", flush=True)

    def on_message(self, child: Child) -> None:
        try:
            data = child.channel.recv(4096)
        except BlockingIOError:
            return  # nothing new
        except ConnectionResetError:
            data = b""
        if not data:  # the child's end closed: it has exited, SIGCHLD will follow
            self.unwatch(child)
            return
        child.received += data
        for kind, _ in split_frames(child.received):
            print(f"worker {child.pid} says {kind.decode()}", flush=True)
            if kind == IDLE and self.stopping:
                self.terminate(child)
            elif kind == IDLE:
                self.idle.append(child.pid)
    # --8<-- [end:dispatch]

    # --8<-- [start:children]
    def spawn(self) -> None:
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                self.signals.close_in_child()
                self.selector.close()
                self.listener.close()
                ours.close()
                for other in self.children.values():
                    other.channel.close()
                child_loop(theirs)
                code = 0
            except BaseException:
                traceback.print_exc()
            os._exit(code)
        theirs.close()
        ours.setblocking(False)
        child = self.children[pid] = Child(pid, ours)
        self.selector.register(ours, selectors.EVENT_READ, lambda: self.on_message(child))
        print(f"worker {pid} started", flush=True)

    def reap(self) -> None:
        for pid in list(self.children):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                child = self.children[pid]
                self.on_message(child)  # its last words (B) may still be unread
                del self.children[pid]
                if pid in self.idle:
                    self.idle.remove(pid)
                self.forget(child)
                print(f"worker {pid} exited with code {os.waitstatus_to_exitcode(status)}",
                      flush=True)

    def unwatch(self, child: Child) -> None:
        if child.channel.fileno() >= 0 and child.channel in self.selector.get_map():
            self.selector.unregister(child.channel)

    def forget(self, child: Child) -> None:
        self.unwatch(child)
        child.channel.close()

    def terminate(self, child: Child) -> None:
        try:
            child.channel.sendall(frame(TERMINATE))
        except OSError:
            return  # it has died already; reap() will notice
        print(f"sent T to worker {child.pid}", flush=True)
    # --8<-- [end:children]

    # --8<-- [start:stop]
    def handle_signals(self) -> None:
        while self.signals.caught:
            number = self.signals.caught.popleft()
            if number in (signal.SIGTERM, signal.SIGINT) and not self.stopping:
                self.stopping = True
                self.poll_listener_if_a_child_is_idle()
                self.listener.close()  # new clients are refused from now on
                while self.idle:
                    self.terminate(self.children[self.idle.popleft()])
    # --8<-- [end:stop]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", args.port))
    listener.setblocking(False)
    print(f"listening on port {listener.getsockname()[1]}", flush=True)
    Master(listener, args.workers).run()


if __name__ == "__main__":
    main()
