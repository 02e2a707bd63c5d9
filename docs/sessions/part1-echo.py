"""Part 1, chapter 1: the raw echo server, a client typing two lines, a megabyte."""

from sessions import CLIENT, Recording


def record(rec: Recording) -> None:
    server = rec.start("server", "python docs/examples/layer1/step01_echo.py 8001", port=8001)
    rec.run("client", f"(printf 'hello world\\n'; sleep 1; printf 'again\\n') | {CLIENT} 8001")
    server.wait_for("client gone")
    rec.run("megabyte", f"head -c 1000000 /dev/urandom | {CLIENT} 8001 | wc -c")
    server.into(None)
    server.wait_for("client gone")
    server.stop()
