"""Part 3, chapter 5: a streamed multipart upload, a form, a query, a cookie."""

from sessions import Recording


def record(rec: Recording) -> None:
    server = rec.start("server", "python -m layer3_http docs/examples/layer3/step05_forms.py"
                       " --listen 127.0.0.1:8307", port=8307)
    server.into(None)
    rec.run("client", "head -c 30000000 /dev/zero > big.bin")
    rec.run("client", ": > empty.txt")
    rec.run("client", "curl -F note=hi -F file1=@big.bin -F file2=@empty.txt"
            " http://127.0.0.1:8307/upload")
    rec.mask(r"first call \+ \d+ more", "first call + <n> more")
    rec.mask(r"peak memory grew by \d+ KiB", "peak memory grew by <n> KiB")
    rec.run("client", "sha256sum big.bin")
    rec.run("client", "curl -d name=Ada http://127.0.0.1:8307/greet")
    rec.run("client", "curl 'http://127.0.0.1:8307/greet?name=Bob'")
    rec.run("client", "curl -s -c jar.txt -b jar.txt http://127.0.0.1:8307/ | grep Visit")
    rec.run("client", "curl -s -c jar.txt -b jar.txt http://127.0.0.1:8307/ | grep Visit")
    server.stop()
