"""Part 1, chapter 4: finish, drain, close; the careless server resets."""

from sessions import Recording


def record(rec: Recording) -> None:
    polite = rec.start("polite", "python docs/examples/layer1/step04_ending.py 8004", port=8004)
    careless = rec.start("careless", "python docs/examples/layer1/step04_ending.py 8014 --careless",
                         port=8014)
    rec.run("client", "printf 'SIZE 11\\nhello world' > small.txt")
    rec.run("client", "curl -sS -T small.txt telnet://127.0.0.1:8004")
    rec.run("client", "(printf 'SIZE 4194304\\n'; head -c 4194304 /dev/zero) > upload.bin")
    rec.run("client", "curl -sS -T upload.bin telnet://127.0.0.1:8004")
    polite.wait_for("drained")
    # The reset reaches curl while it still sends, or once it reads: either is honest.
    rec.run("client", "curl -sS -T upload.bin telnet://127.0.0.1:8014", status=(55, 56))
    rec.mask(r"curl: \(5[56]\) (?:Send|Recv) failure", "curl: (55 or 56) failure")
    rec.run("client", "printf 'HELLO\\n' > hello.txt")
    rec.run("client", "curl -sS -T hello.txt telnet://127.0.0.1:8004", status=(56,))
    polite.wait_for("not an upload")
    rec.mask(r"drained \d+ bytes", "drained <n> bytes")
    polite.stop()
    careless.stop()
