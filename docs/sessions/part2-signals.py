"""Part 2, chapter 5: SIGTERM stops gracefully while a client is connected; Ctrl-C at once.

The stats lines of the stops are left out: when two workers end at once,
whether the master counts them in one round or two is a matter of timing."""

import re

from sessions import CLIENT, Recording


def record(rec: Recording) -> None:
    server = rec.start("server", "python docs/examples/layer2/step05_signals.py 8026", port=8026)
    server.wait_for(r"stats total=2 idle=2")
    with rec.background("client", f"(printf 'hello\\n'; sleep 2; printf 'still here\\n') | {CLIENT}"
                        " 8026", until="hello"):
        server.wait_for(r"busy=1")
        server.into("graceful")
        server.hide.append(re.compile(r"stats total="))
        rec.run("client", f"kill {server.pid}")
        server.wait_for(r"graceful stop")
        rec.run("client", "curl -sS telnet://127.0.0.1:8026", status=(7,))
    server.wait_exit()

    fast = rec.start("fast-server", "python docs/examples/layer2/step05_signals.py 8026",
                     port=8026)
    fast.wait_for(r"stats total=2 idle=2")
    with rec.background("fast-client", f"(printf 'hello\\n'; sleep 5) | {CLIENT} 8026",
                        until="hello"):
        fast.wait_for(r"busy=1")
        fast.into("fast")
        fast.hide.append(re.compile(r"stats total="))
        fast.interrupt()
        fast.wait_exit()
    # Ctrl-C reaches the workers too; which signal kills each one first is a race.
    rec.mask(r"killed by signal (?:2 \(SIGINT\)|9 \(SIGKILL\))", "killed by signal <2 or 9>")
