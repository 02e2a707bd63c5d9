"""Step 3a: one process, many clients: an echo server on non-blocking calls.

Every client gets its bytes back, a line at a time, while the others are
served too. A client that sends without reading only slows itself: once
``MAX_QUEUED`` bytes of its echo wait to go out, the server stops reading
from it until it catches up. Run it with
``python docs/examples/layer1/step03_poll.py [PORT]``.
"""

from __future__ import annotations

import argparse
import signal
from dataclasses import dataclass
from types import FrameType

from layer1_sockets import BufferedSocket, Listener, poll, tcplisten

CHUNK = 4096  # the most we take from one client per round
MAX_QUEUED = 256 * 1024  # stop reading from a client whose echo piles up


# --8<-- [start:client]
@dataclass
class Client:
    conn: BufferedSocket
    queued: int = 0  # bytes of echo still waiting to go out
    eof: bool = False  # the client has sent everything it will send

    def wants_to_read(self) -> bool:
        return not self.eof and self.queued < MAX_QUEUED

    def advance(self) -> bool:
        """Do what can be done without blocking; False once this client is done."""
        data = None
        if self.wants_to_read():
            data = self.conn.read_nb(CHUNK, b"\n")  # None: nothing there yet
            if data == b"":
                self.eof = True
        self.queued = self.conn.flush_nb(data) if data else self.conn.flush_nb()
        return not (self.eof and self.queued == 0)
# --8<-- [end:client]


# --8<-- [start:loop]
def serve_forever(listener: Listener) -> None:
    clients: list[Client] = []
    while True:
        poll([listener, *(c.conn for c in clients if c.wants_to_read())],
             [c.conn for c in clients if c.queued > 0])
        while (conn := listener.accept_nb()) is not None:
            clients.append(Client(conn))
            print(f"clients: {len(clients)}")
        for client in list(clients):  # a copy: we remove clients as we go
            if not still_open(client):
                clients.remove(client)
                print(f"clients: {len(clients)}")


def still_open(client: Client) -> bool:
    """Advance one client; end its connection and return False once it is done."""
    try:
        if client.advance():
            return True
        client.conn.close()  # everything echoed and the client has finished
    except OSError as error:  # reset by the peer, broken pipe, ...
        print(f"dropping a client: {error!r}")
        client.conn.reset()
    return False
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
