"""Part 3, chapter 1: the request line parser answers curl, refuses HTTP/2.0 and bare LF."""

from sessions import CLIENT, Recording


def record(rec: Recording) -> None:
    server = rec.start("server", "python docs/examples/layer3/step01_request_line.py 8301",
                       port=8301)
    rec.run("client", "curl -i 'http://127.0.0.1:8301/hello?x=1'")
    rec.run("client", "curl -I http://127.0.0.1:8301/")
    rec.run("client", f"printf 'GET / HTTP/2.0\\r\\n\\r\\n' | {CLIENT} 8301")
    rec.run("client", f"printf 'GET / HTTP/1.1\\nHost: x\\n\\n' | {CLIENT} 8301")
    server.wait_for("refused: 400")
    server.stop()
