"""A TLS client for step 5: send lines, print the answers.

Connects to 127.0.0.1, starts TLS with ``starttls`` (client side), checks
the server's certificate against ``--cafile`` for the name ``--name``,
sends each LINE argument with a newline, half-closes, and prints every
line of the answer until the server closes. Run it with
``python docs/examples/layer1/tls_client.py PORT --cafile cert.pem LINE...``.
"""

from __future__ import annotations

import argparse
import ssl
import sys

from layer1_sockets import tcpconnect


# --8<-- [start:talk]
def talk(port: int, cafile: str, name: str, lines: list[str]) -> None:
    context = ssl.create_default_context(cafile=cafile)  # verifies certificate and name
    with tcpconnect("127.0.0.1", port) as conn:
        conn.starttls(context, server_hostname=name)
        conn.flush(*(line.encode() + b"\n" for line in lines))
        conn.finish()  # close_notify and FIN: "that was everything"
        while answer := conn.read(65536, b"\n"):
            sys.stdout.write(answer.decode(errors="replace"))
# --8<-- [end:talk]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("lines", nargs="*", metavar="LINE")
    parser.add_argument("--cafile", required=True, help="PEM file of the CA (or self-signed cert)")
    parser.add_argument("--name", default="localhost", help="the name the certificate must show")
    args = parser.parse_intermixed_args()  # options may come between the lines
    try:
        talk(args.port, args.cafile, args.name, args.lines)
    except ssl.SSLError as error:
        print(f"TLS failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
