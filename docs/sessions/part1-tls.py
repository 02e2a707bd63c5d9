"""Part 1, chapter 5: a self-signed certificate, the TLS echo server, three clients."""

from sessions import Recording


def record(rec: Recording) -> None:
    rec.run("certificate", "openssl req -x509 -newkey rsa:2048 -nodes -days 30"
            " -keyout key.pem -out cert.pem -subj /CN=localhost"
            " -addext subjectAltName=DNS:localhost,IP:127.0.0.1")
    server = rec.start(
        "server", "python docs/examples/layer1/step05_tls.py 8005 --certfile cert.pem"
        " --keyfile key.pem", port=8005)
    rec.run("client", "python docs/examples/layer1/tls_client.py 8005 --cafile cert.pem"
            " 'hello over TLS' 'second line'")
    server.wait_for("clients: 0")
    rec.run("client", "printf 'plain text\\n' | curl -sS telnet://127.0.0.1:8005", status=None)
    server.wait_for("handshake failed")
    rec.run("wrong-name", "python docs/examples/layer1/tls_client.py 8005 --cafile cert.pem"
            " --name example.org x", status=None)
    server.wait_for("handshake failed")
    rec.run("s_client", "(printf 'from s_client\\n'; sleep 1) | openssl s_client"
            " -connect 127.0.0.1:8005 -CAfile cert.pem -quiet -no_ign_eof", status=None)
    server.wait_for("clients: 0")
    rec.mask(r"^[.+*]+$", "<key generation progress>")
    server.stop()
