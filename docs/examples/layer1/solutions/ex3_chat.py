"""Exercise 3: a chat server in one process.

Every line a member sends goes to every other member, prefixed with the
sender's number (``3: hello``). Partial lines are collected until their
newline, so lines from different members never mix. A member that falls
more than ``MAX_QUEUED`` bytes behind is reset, so that one reader who
stopped reading cannot make the server hoard memory for it. Run it with
``python docs/examples/layer1/solutions/ex3_chat.py [PORT]``.
"""

from __future__ import annotations

import argparse
import signal
from dataclasses import dataclass, field
from types import FrameType

from layer1_sockets import BufferedSocket, Listener, poll, tcplisten

MAXLINE = 1024  # longer lines are cut into pieces of this size
MAX_QUEUED = 64 * 1024  # a member this far behind is dropped


# --8<-- [start:member]
@dataclass(eq=False)
class Member:
    conn: BufferedSocket
    number: int
    queued: int = 0
    partial: bytearray = field(default_factory=bytearray)

    def next_line(self) -> bytes | None:
        """A complete line if one is ready; None if not yet; b"" once the member left."""
        piece = self.conn.read_nb(MAXLINE - len(self.partial), b"\n")
        if piece is None or piece == b"":
            return piece
        self.partial += piece
        if not piece.endswith(b"\n") and len(self.partial) < MAXLINE:
            return None
        line = bytes(self.partial).rstrip(b"\n") + b"\n"
        self.partial.clear()
        return line
# --8<-- [end:member]


# --8<-- [start:loop]
def serve_forever(listener: Listener) -> None:
    members: list[Member] = []
    joined = 0
    while True:
        poll([listener, *(m.conn for m in members)], [m.conn for m in members if m.queued])
        while (conn := listener.accept_nb()) is not None:
            joined += 1
            members.append(Member(conn, joined))
            print(f"members: {len(members)}")
        for member in list(members):
            try:
                line = member.next_line()
                if line:
                    broadcast(members, member, line)
                member.queued = member.conn.flush_nb()
            except OSError as error:
                leave(members, member, f"failed: {error!r}")
                continue
            if line == b"":
                leave(members, member, "left", clean=member.queued == 0)
            elif member.queued > MAX_QUEUED:
                leave(members, member, "too slow")


def broadcast(members: list[Member], sender: Member, line: bytes) -> None:
    prefix = b"%d: " % sender.number
    for other in members:
        if other is not sender:
            try:
                other.queued = other.conn.flush_nb(prefix, line)
            except OSError:
                pass  # errors are sticky: the member's own turn raises it again


def leave(members: list[Member], member: Member, why: str, clean: bool = False) -> None:
    members.remove(member)
    if clean:
        member.conn.close()  # nothing left to send: an ordinary FIN
    else:
        member.conn.reset()  # do not wait for a member who does not read
    print(f"member {member.number} {why}; members: {len(members)}")
# --8<-- [end:loop]


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    with tcplisten("127.0.0.1", args.port) as listener:
        print(f"listening on port {listener.port}", flush=True)
        serve_forever(listener)


if __name__ == "__main__":
    main()
