"""HTTPS: the server's TLS context, built once in the master.

`tls_context` loads the certificate chain and key (and, for client
certificates, the CA bundle that signs them) into a server-side
`ssl.SSLContext`. Passed as the `tls` option, it makes every connection
of the handler run layer 1's `starttls` before the first request, so TLS
is terminated in the worker that serves the connection: the master only
accepts and passes the socket on, as for plain HTTP.

The context is built before the workers fork, so a missing file or a key
that does not match fails at start-up (the command line exits 1), and
every worker inherits the loaded certificate. It offers TLS 1.2 and 1.3
only, the `ssl` module's default ciphers, and ALPN ``http/1.1``.

Moonbridge: none; the original had TLS only as an undocumented experiment.
"""

from __future__ import annotations

import os
import ssl

__all__ = ["CLIENT_CERTS", "tls_context"]

CLIENT_CERTS = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL,
                "required": ssl.CERT_REQUIRED}
"""How strictly client certificates are asked for, by name."""


def tls_context(certfile: str | os.PathLike[str], keyfile: str | os.PathLike[str] | None = None,
                *, ca_certs: str | os.PathLike[str] | None = None,
                client_certs: str = "required") -> ssl.SSLContext:
    """Build the server-side TLS context for the `tls` option.

    Args:
        certfile: The server's certificate chain, PEM (the key may be in it too).
        keyfile: The private key, PEM, if not in `certfile`.
        ca_certs: CA certificates (PEM) that sign client certificates; with
            it, clients are asked for a certificate.
        client_certs: With `ca_certs`: ``"required"`` (no certificate, no
            connection) or ``"optional"`` (a client may send none; one it
            sends must verify); ``"none"`` asks for none.

    Returns:
        The context.

    Raises:
        ValueError: An unknown `client_certs` name.
        OSError: A file cannot be read (`ssl.SSLError` when it is not
            a valid certificate or key, or they do not match).

    Examples:
        >>> tls_context("no/such/cert.pem")
        Traceback (most recent call last):
        ...
        FileNotFoundError: [Errno 2] No such file or directory
    """
    if client_certs not in CLIENT_CERTS:
        raise ValueError(f"client_certs must be one of {', '.join(CLIENT_CERTS)}, "
                         f"not {client_certs!r}")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    if ca_certs is not None:
        context.load_verify_locations(cafile=ca_certs)
        context.verify_mode = CLIENT_CERTS[client_certs]
    context.set_alpn_protocols(["http/1.1"])
    return context
