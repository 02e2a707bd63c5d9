"""Exercise timeout(...) in a process of its own; print what it observed.

Run as ``timeouts.py semantics`` (prints ``ok ...`` lines, exits 0),
``timeouts.py sub`` (a sub-limit ends an endless loop) or ``timeouts.py outer``
(the shorter outer limit wins over a longer sub-limit). The last two must be
killed by SIGALRM.
"""

from __future__ import annotations

import sys
import time

from layer2_prefork import timeout


def spin() -> None:
    while True:
        pass


def semantics() -> None:
    assert timeout() == 0.0, "disarmed at start"
    assert timeout(30) == 30
    assert 29 < timeout() <= 30
    print("ok armed", flush=True)
    # A sub-limit shortens the time left, and the outer limit comes back after it.
    inner = timeout(5, timeout)
    assert 4 < inner <= 5, inner
    assert 29 < timeout() <= 30
    print("ok sub-limit restored", flush=True)
    # A longer sub-limit cannot extend the outer one: the shorter wins.
    timeout(2)
    inner = timeout(60, timeout)
    assert 1 < inner <= 2, inner
    print("ok shorter wins", flush=True)
    # Nested three deep, and restored when the function raises.
    timeout(30)
    nested = timeout(10, lambda: timeout(3, timeout))
    assert 2 < nested <= 3, nested
    try:
        timeout(1, lambda: 1 / 0)
    except ZeroDivisionError:
        pass
    assert 29 < timeout() <= 30
    print("ok nested and restored after an exception", flush=True)
    assert timeout(3, lambda a, b: a + b, 2, 3) == 5
    assert timeout(0) == 0.0 and timeout() == 0.0
    print("ok disarmed", flush=True)
    for bad in (-1, float("nan"), "1"):
        try:
            timeout(bad)  # type: ignore[arg-type]
        except ValueError:
            continue
        raise AssertionError(f"timeout({bad!r}) accepted")
    print("ok bad values refused", flush=True)


def main() -> None:
    mode = sys.argv[1]
    if mode == "semantics":
        semantics()
        return
    started = time.monotonic()
    print(f"start {started:.6f}", flush=True)
    if mode == "sub":
        timeout(0.2, spin)
    elif mode == "outer":
        timeout(0.2)
        timeout(30, spin)
    print("not killed", flush=True)


main()
