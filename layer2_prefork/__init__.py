"""The pre-forking listener (Moonbridge's `listen{...}`, `timeout(...)` and master).

Declare pools with `listen()`, serve them with `run()` (or run the
script with `python -m layer2_prefork script.py`), and guard handlers with
`timeout()`.
"""

from ._config import TCP, Event, Interval, Listener, Local, Main, PoolOptions
from ._errors import ExitCode, StartupError
from ._server import Pool, listen, run
from ._timeout import timeout

__all__ = [
    "TCP",
    "Event",
    "ExitCode",
    "Interval",
    "Listener",
    "Local",
    "Main",
    "Pool",
    "PoolOptions",
    "StartupError",
    "listen",
    "run",
    "timeout",
]
