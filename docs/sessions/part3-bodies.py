"""Part 3, chapter 3: a body read whole with 100-continue, then streamed and chunked."""

from sessions import CLIENT, Recording


def record(rec: Recording) -> None:
    server = rec.start("server", "python docs/examples/layer3/step03_bodies.py 8304", port=8304)
    rec.run("client", "head -c 2000000 /dev/zero > upload.bin")
    rec.run("client", "sha256sum upload.bin")
    rec.run("client", "curl -sv --data-binary @upload.bin http://127.0.0.1:8304/ 2>&1"
            " | grep -v '^\\*'")
    server.wait_for("received")
    server.stop()
    rec.mask(r"^([{}]) \[\d+ bytes data\]$", r"\1 [<n> bytes data]")

    stream = rec.start("stream-server", "python -m layer3_http"
                       " docs/examples/layer3/step03_stream.py --listen 127.0.0.1:8305",
                       port=8305)
    stream.into(None)
    rec.write("upload.bin", bytes(2000000))
    rec.run("stream", "curl -H 'Transfer-Encoding: chunked' --data-binary @upload.bin"
            " http://127.0.0.1:8305/")
    rec.run("stream", "printf 'POST / HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 5\\r\\n"
            "Transfer-Encoding: chunked\\r\\n\\r\\n0\\r\\n\\r\\n'" f" | {CLIENT} 8305")
    rec.run("stream", "printf 'POST / HTTP/1.1\\r\\nHost: x\\r\\nTransfer-Encoding: chunked\\r\\n"
            "\\r\\n5\\r\\nhello\\r\\n6;note=x\\r\\n world\\r\\n0\\r\\n\\r\\n'" f" | {CLIENT} 8305")
    stream.stop()
