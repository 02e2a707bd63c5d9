"""Part 2, chapter 1: children accepting on a shared socket; one killed and replaced."""

import signal

from sessions import CLIENT, Recording


def record(rec: Recording) -> None:
    server = rec.start("server", "python docs/examples/layer2/step01_fork.py 8021", port=8021)
    pids = [server.wait_for(r"worker (\d+) started").group(1) for _ in range(3)]
    rec.run("client", f"printf 'hello\\n' | {CLIENT} 8021")
    rec.run("client", f"printf 'hello\\n' | {CLIENT} 8021")
    rec.run("kill", f"kill -9 {pids[0]}")
    server.into("replaced")
    server.wait_for(r"worker \d+ started")
    server.into("stopped")
    server.stop(signal.SIGTERM)
    rec.unordered("stopped")
