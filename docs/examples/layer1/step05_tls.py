"""Step 5: the many-client echo server of step 3, over TLS.

Each accepted connection is turned into a TLS endpoint with ``starttls``;
from then on the loop is step 3's, unchanged: ``read_nb``, ``flush_nb`` and
``poll`` work on the decrypted bytes. Run it with
``python docs/examples/layer1/step05_tls.py [PORT] --certfile CERT --keyfile KEY``.
"""

from __future__ import annotations

import argparse
import signal
import ssl
from dataclasses import dataclass
from types import FrameType

from layer1_sockets import BufferedSocket, Listener, poll, tcplisten

CHUNK = 4096  # the most we take from one client per round
MAX_QUEUED = 256 * 1024  # stop reading from a client whose echo piles up


# --8<-- [start:context]
def server_context(certfile: str, keyfile: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context
# --8<-- [end:context]


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


# --8<-- [start:accept]
def accept_all(listener: Listener, context: ssl.SSLContext, clients: list[Client]) -> None:
    while (conn := listener.accept_nb()) is not None:
        try:
            conn.starttls(context, server_side=True)  # blocks for the handshake
        except OSError as error:  # ssl.SSLError is an OSError too
            print(f"handshake failed: {error!r}")
            conn.reset()
            continue
        clients.append(Client(conn))
        print(f"clients: {len(clients)}")
# --8<-- [end:accept]


# --8<-- [start:loop]
def serve_forever(listener: Listener, context: ssl.SSLContext) -> None:
    clients: list[Client] = []
    while True:
        # poll() knows about bytes already decrypted inside a TLS connection.
        poll([listener, *(c.conn for c in clients if c.wants_to_read())],
             [c.conn for c in clients if c.queued > 0])
        accept_all(listener, context, clients)
        for client in list(clients):
            if not still_open(client):
                clients.remove(client)
                print(f"clients: {len(clients)}")
# --8<-- [end:loop]


def still_open(client: Client) -> bool:
    """Advance one client; end its connection and return False once it is done."""
    try:
        if client.advance():
            return True
        client.conn.close()  # sends close_notify, then FIN
    except OSError as error:
        print(f"dropping a client: {error!r}")
        client.conn.reset()
    return False


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


# --8<-- [start:main]
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--certfile", required=True, help="PEM certificate (chain)")
    parser.add_argument("--keyfile", required=True, help="PEM private key")
    args = parser.parse_args()
    context = server_context(args.certfile, args.keyfile)  # fails early on a bad pair
    signal.signal(signal.SIGTERM, stop)
    with tcplisten("127.0.0.1", args.port) as listener:
        print(f"listening on port {listener.port}", flush=True)
        serve_forever(listener, context)
# --8<-- [end:main]


if __name__ == "__main__":
    main()
