"""A script whose logging filter raises inside the master loop (exit code 4).

The filter runs in the master whenever it logs; it raises on the first
statistics line that shows two idle workers (run with ``-s``). That is an
error the master loop did not expect: it must kill its workers, remove its
socket files and exit 4.
"""

from __future__ import annotations

import logging
import sys

from layer2_prefork import TCP, Local, listen, run


class Explode(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if "stats" in record.getMessage() and "idle=2" in record.getMessage():
            raise RuntimeError("a logging filter failed inside the master")
        return True


logging.getLogger("layer2_prefork").addFilter(Explode())
pool = listen(TCP("127.0.0.1", 0), Local(sys.argv[1]), connect=lambda conn: None,
              pre_fork=2, fork_delay=0.01)
print(f"listening on port {pool.port}", flush=True)
if __name__ == "__main__":
    sys.exit(run())
