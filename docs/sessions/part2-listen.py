"""Part 2, chapter 6: the command line, a pidfile, TCP and Unix, the memory limit, BYE;
a second instance, a port in use; the batch job with a Main listener."""

import re

from sessions import CLIENT, UNIX_CLIENT, Recording

TRACEBACK = r"^(Traceback|  |During handling|The above exception)"


def record(rec: Recording) -> None:
    # workers accept for themselves: which one gets a connection, and so each one's
    # count, is the kernel's choice (part 2, chapter 8)
    rec.mask(r"connection \d+$", "connection <n>")
    rec.mask(r"finishing after \d+ connections", "finishing after <n> connections")
    server = rec.start(
        "server", "python -m layer2_prefork -s -p /tmp/app.pid docs/examples/layer2/step06_app.py"
        " 8026 --socket /tmp/app.sock", port=8026, hide=[r"stats total="])
    server.wait_for(r"worker \d+: prepared")
    server.wait_for(r"worker \d+: prepared")
    server.into("log")
    server.elide.append(re.compile(r"worker \d+: (Traceback|  )"))
    rec.run("client", f"printf 'hello\\n' | {CLIENT} 8026")
    rec.run("client", f"printf 'hello\\n' | {UNIX_CLIENT} /tmp/app.sock")
    rec.run("client", "printf 'BIG 100\\nBIG 300\\n' | curl -sS telnet://127.0.0.1:8026",
            status=(56,))
    # The replacement may say "prepared" before the master has reaped the
    # worker it replaces: wait for the exit, then for a full pool again.
    full = r"stats total=2 idle=2 busy=0 starting=0 stopping=0"
    server.wait_for(r"exited with status 1")
    server.wait_for(full)
    rec.run("client", f"printf 'BYE\\n' | {CLIENT} 8026")
    server.wait_for(r"exited with status 0")
    server.wait_for(full)
    rec.unordered("log")
    server.into(None)
    rec.run("again", "python -m layer2_prefork -p /tmp/app.pid docs/examples/layer2/step06_app.py"
            " 8027; echo $?")
    rec.run("again", "python -m layer2_prefork docs/examples/layer2/step06_app.py 8026; echo $?",
            elide=[TRACEBACK])
    rec.run("again", "kill $(cat /tmp/app.pid)")
    server.wait_exit()
    rec.run("again", "ls /tmp/app.pid /tmp/app.sock", status=(2,))

    job = rec.start("main", "python docs/examples/layer2/step06_main.py 8029", port=8029)
    job.wait_exit()
    job.show_status()
