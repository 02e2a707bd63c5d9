"""A small line client for the examples: connect, send, half-close, print the answer.

Usage:
    python docs/examples/tour/client.py PORT [TEXT]
    printf 'hello\\nworld\\n' | python docs/examples/tour/client.py PORT
    python docs/examples/tour/client.py --unix /tmp/example.sock [TEXT]

It connects to 127.0.0.1:PORT (``--host`` for another address, ``--unix``
for a Unix socket). With TEXT, it sends TEXT and a newline (``-n``: no
newline); without, it sends its standard input as it arrives, so typing
works as well as a pipe. At the end of its input it half-closes the
connection (``shutdown(SHUT_WR)``): the server reads EOF and can still
answer. Everything the server sends is printed as it arrives, until the
server closes its side too.

That is what ``nc -N`` does (OpenBSD's netcat), with nothing to install.
The exit status is 0 when the server closed the connection cleanly, 1 when
the connection failed (refused, reset) or ``--timeout`` seconds passed
without a byte from the server.
"""

from __future__ import annotations

import argparse
import os
import selectors
import socket
import sys


def open_connection(args: argparse.Namespace) -> socket.socket:
    if args.unix:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(args.unix)
        except OSError:
            sock.close()
            raise
        return sock
    return socket.create_connection((args.host, args.port))


# --8<-- [start:converse]
def converse(sock: socket.socket, text: bytes | None, timeout: float | None) -> bool:
    """Send text (or standard input) and half-close; copy the answer to stdout until EOF.

    Returns:
        True if the server closed its side; False if `timeout` seconds
        passed without anything from it.
    """
    if text is not None:
        sock.sendall(text)
        sock.shutdown(socket.SHUT_WR)  # half-close: "that was all", but keep reading
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        if text is None:
            selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
        while True:
            ready = selector.select(timeout)
            if not ready:
                return False
            for key, _ in ready:
                if key.fileobj is sock:
                    data = sock.recv(65536)
                    if not data:
                        return True  # the server closed its side: the answer is complete
                    sys.stdout.buffer.write(data)
                    sys.stdout.buffer.flush()
                else:
                    data = os.read(sys.stdin.fileno(), 65536)
                    if data:
                        sock.sendall(data)
                    else:  # end of our input (Ctrl-D, or the pipe ended)
                        selector.unregister(key.fileobj)
                        sock.shutdown(socket.SHUT_WR)
# --8<-- [end:converse]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("words", nargs="*", metavar="PORT [TEXT]",
                        help="the TCP port (not with --unix), then what to send instead of stdin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--unix", metavar="PATH", help="connect to a Unix socket instead")
    parser.add_argument("-n", dest="newline", action="store_false",
                        help="do not add a newline to TEXT")
    parser.add_argument("--timeout", type=float, default=None,
                        help="give up after this many seconds without a byte from the server")
    args = parser.parse_intermixed_args()  # options may come after PORT
    words = list(args.words)
    if not args.unix:
        if not words or not words[0].isdigit():
            parser.error("a PORT (or --unix PATH) is needed")
        args.port = int(words.pop(0))
    if len(words) > 1:
        parser.error("send one TEXT argument (quote it), or use stdin")
    args.text = words[0] if words else None
    text = None
    if args.text is not None:
        text = args.text.encode() + (b"\n" if args.newline else b"")
    try:
        with open_connection(args) as sock:
            if converse(sock, text, args.timeout):
                return 0
            print(f"client: nothing from the server for {args.timeout} s", file=sys.stderr)
            return 1
    except OSError as error:
        print(f"client: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
