"""Part 2, chapter 7: parking under -d; six clients on two workers; --no-park for contrast."""

from sessions import CLIENT, Recording


def record(rec: Recording) -> None:
    server = rec.start("server", "python -m layer2_prefork -d"
                       " docs/examples/layer2/step07_parking.py 8027", port=8027)
    server.wait_for(r"forked worker \d+")
    server.wait_for(r"forked worker \d+")
    server.into("log")
    rec.run("client", "(printf 'hello\\n'; sleep 2; printf 'again\\n'; sleep 2;"
            f" printf 'one\\ntwo\\n'; sleep 0.5) | {CLIENT} 8027")
    for _ in range(3):
        server.wait_for(r"worker \d+: PARK")
    server.into(None)
    rec.run("six", "for i in 1 2 3 4 5 6; do (printf 'client %d\\n' $i; sleep 1)"
            f" | {CLIENT} 8027 & done; wait")
    rec.unordered("six")
    server.stop()

    old = rec.start("no-park", "python docs/examples/layer2/step07_parking.py 8028 --no-park",
                    port=8028)
    old.into(None)
    with (rec.background("three", f"(printf 'one\\n'; sleep 3) | {CLIENT} 8028", until="one"),
          rec.background("three", f"(printf 'two\\n'; sleep 3) | {CLIENT} 8028", until="two")):
        rec.run("three", f"time (printf 'three\\n' | {CLIENT} 8028)")
    old.stop()
