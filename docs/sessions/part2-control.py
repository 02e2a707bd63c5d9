"""Part 2, chapter 3: the control protocol: I, C, T, B, and a client that stays a second."""

from sessions import CLIENT, Recording


def record(rec: Recording) -> None:
    rec.pids_after(r"idle: \[")
    server = rec.start("server", "python docs/examples/layer2/step03_control.py 8023", port=8023)
    for _ in range(2):
        server.wait_for(r"says I")
    server.into("log")
    with rec.background("client", f"(printf 'hello\\n'; sleep 1) | {CLIENT} 8023", until="hello"):
        server.wait_for(r"sent C")
        rec.run("client", f"printf 'hi\\n' | {CLIENT} 8023")
        server.wait_for(r"says I")
        rec.run("client", f"printf 'hi\\n' | {CLIENT} 8023")
        server.wait_for(r"says I")
    server.wait_for(r"says I")
    server.stop()
    rec.unordered("log")
