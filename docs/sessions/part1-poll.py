"""Part 1, chapter 3: two clients side by side, the idle timeout, a client that does not read."""

from sessions import CLIENT, Recording


def record(rec: Recording) -> None:
    server = rec.start("server", "python docs/examples/layer1/step03_poll.py 8003", port=8003)
    with rec.background("first", f"(printf 'first client\\n'; sleep 2) | {CLIENT} 8003"):
        server.wait_for("clients: 1")
        rec.run("second", f"printf 'second client\\n' | {CLIENT} 8003")
        server.wait_for("clients: 1")
    server.wait_for("clients: 0")
    rec.run("slow-reader",
            f"head -c 20000000 /dev/zero | {CLIENT} 8003 | (sleep 10; wc -c)", timeout=60)
    server.into(None)
    server.stop()

    idle = rec.start("idle-server", "python docs/examples/layer1/step03_idle.py 8013 --idle 3",
                     port=8013)
    rec.run("idle-client", f"(printf 'are you there?\\n'; sleep 5) | {CLIENT} 8013")
    idle.wait_for("idle client dropped")
    idle.stop()
