"""The home page: the tour's application, `make serve` stopped with Ctrl-C, a step program."""

from sessions import Recording


def record(rec: Recording) -> None:
    hello = rec.start("hello", "python docs/examples/tour/hello.py 8080", port=8080,
                      hide=[r" INFO "])
    hello.wait_for(r"forked worker")
    hello.wait_for(r"forked worker")
    rec.run("hello", "curl 'http://127.0.0.1:8080/?name=Ada'")
    rec.run("hello", "curl 'http://127.0.0.1:8080/'")
    hello.into(None)
    hello.stop()

    serve = rec.start("serve", "make serve PORT=8000", port=8000, in_root=True)
    serve.wait_for(r"forked worker")
    serve.wait_for(r"forked worker")
    serve.interrupt()
    serve.wait_exit(timeout=60)
    rec.mask(r"killed by signal (?:2 \(SIGINT\)|9 \(SIGKILL\))", "killed by signal <2 or 9>")

    echo = rec.start("step", ".venv/bin/python docs/examples/layer1/step01_echo.py 8001",
                     port=8001, in_root=True)
    echo.stop()

    rec.run("tests", ".venv/bin/python -m pytest -q tests/examples -k step01", in_root=True,
            timeout=120)
    rec.mask(r"\d+ passed, \d+ deselected", "<n> passed, <n> deselected")
    rec.mask(r"^[.]+ +\[100%\]$", "<dots> [100%]")
