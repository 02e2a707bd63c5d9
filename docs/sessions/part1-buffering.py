"""Part 1, chapter 2: the buffered line server, five lines in one go."""

from sessions import CLIENT, Recording


def record(rec: Recording) -> None:
    server = rec.start("server", "python docs/examples/layer1/step02_buffered.py 8002",
                       port=8002)
    rec.run("client", "printf 'hello\\nwho are you?\\n%080d\\nshort again\\n"
            f"no newline at the end' 0 | {CLIENT} 8002")
    server.stop()
