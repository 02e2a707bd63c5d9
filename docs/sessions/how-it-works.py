"""How it works: the tour's server starting, and one request through it with curl -v."""

from sessions import Recording


def record(rec: Recording) -> None:
    hello = rec.start("start", "python docs/examples/tour/hello.py 8080", port=8080)
    hello.wait_for(r"forked worker")
    hello.wait_for(r"forked worker")
    hello.into(None)
    rec.run("curl", "curl -v 'http://127.0.0.1:8080/?name=Ada'")
    # the answer names the worker's PID, whose number of digits varies from run to run
    rec.mask(r"Content-Length: \d+", "Content-Length: <n>")
    hello.stop()
