"""Exercise 6: STARTTLS, a plain-text conversation that switches to TLS.

Lines come back in capitals. When the client sends ``STARTTLS``, the
server answers ``READY`` in plain text and starts TLS on the same
connection; from then on the same loop serves the same protocol, now
encrypted (a second ``STARTTLS`` is refused). Run it with
``python docs/examples/layer1/solutions/ex6_starttls.py [PORT] --certfile C --keyfile K``.
"""

from __future__ import annotations

import argparse
import signal
import ssl
from types import FrameType

from layer1_sockets import BufferedSocket, tcplisten

MAXLEN = 1024


# --8<-- [start:solution]
def serve(conn: BufferedSocket, context: ssl.SSLContext) -> None:
    while line := conn.read(MAXLEN, b"\n"):
        if line.rstrip(b"\r\n") != b"STARTTLS":
            conn.flush(line.upper())
        elif conn.tls:
            conn.flush(b"ERROR already encrypted\n")
        else:
            conn.flush(b"READY\n")  # the last plain-text bytes
            conn.starttls(context, server_side=True)
            print("switched to TLS")
# --8<-- [end:solution]


def stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--certfile", required=True)
    parser.add_argument("--keyfile", required=True)
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.certfile, args.keyfile)
    signal.signal(signal.SIGTERM, stop)
    with tcplisten("127.0.0.1", args.port) as listener:
        print(f"listening on port {listener.port}", flush=True)
        while True:
            conn = listener.accept()
            try:
                serve(conn, context)
                conn.close()  # the normal end: flush, then FIN
            except OSError as error:  # reset by the client, or the network failed
                print(f"client failed: {error!r}")
            finally:
                conn.reset()  # does nothing after close(); else drops the connection at once


if __name__ == "__main__":
    main()
