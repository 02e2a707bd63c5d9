"""Part 2, chapter 2: the master hands each connection to a child; --keep-copies leaks."""

from sessions import CLIENT, Recording


def record(rec: Recording) -> None:
    server = rec.start("server", "python docs/examples/layer2/step02_pass_fds.py 8022", port=8022)
    server.wait_for(r"worker \d+ started")
    server.wait_for(r"worker \d+ started")
    for _ in range(2):
        rec.run("client", f"printf 'hello\\nQUIT\\n' | {CLIENT} 8022")
        server.wait_for("handed to worker")
    server.into(None)
    server.stop()

    leaky = rec.start("leaky", "python docs/examples/layer2/step02_pass_fds.py 8022 --keep-copies",
                      port=8022)
    for _ in range(2):
        leaky.wait_for(r"worker \d+ started")
    leaky.into("leak")
    for _ in range(2):
        rec.run("leaky-client", f"printf 'hello\\nQUIT\\n' | timeout 2 {CLIENT} 8022",
                status=(124,))
        leaky.wait_for("handed to worker")
    leaky.into(None)
    leaky.stop()
