"""Part 2, chapter 5: the watchdog kills a worker; interval ticks, relaxed and strict."""

from sessions import CLIENT, Recording


def record(rec: Recording) -> None:
    server = rec.start("server", "python docs/examples/layer2/step05_timers.py 8025 --limit 3"
                       " --tick 1 --work 0.5", port=8025)
    server.into(None)
    rec.run("client", f"printf 'LEFT\\nSLEEP 1\\nLEFT\\nSTEP 0.5 10\\nSTEP 5 1\\n' | {CLIENT} 8025")
    server.into("ticks")
    server.skip_to(r"killed by signal 14")
    for _ in range(3):
        server.wait_for(r"tick started")
    server.into(None)
    server.stop()

    strict = rec.start("strict", "python docs/examples/layer2/step05_timers.py 8025 --tick 1"
                       " --work 0.5 --strict", port=8025)
    strict.skip_to(r"tick started")
    for _ in range(3):
        strict.wait_for(r"tick started")
    strict.into(None)
    strict.stop()
