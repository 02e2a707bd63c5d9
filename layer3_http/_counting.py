"""Counting HTTP requests for the metrics endpoint: status classes, durations, bytes.

Each worker adds what it served into layer 2's shared `Counters` (one
group, declared when this module is imported, so before any fork), and
the metrics endpoint (`_metrics`) reads the sums with
`layer2_prefork.snapshot`. Counting is off until `enable` is called in
the master (``--metrics`` does it); a connection then records each
request once, at the moment its access log line would be written, with
the same status, duration and body size.

What one request adds:

* its status class (``1xx`` ... ``5xx``; a request answered with no
  status at all, whose connection failed first, is not counted);
* one observation in the duration histogram: the bucket it falls in
  (`BUCKETS`, upper bounds in seconds) and its duration in microseconds
  to the sum;
* the bytes received (the request head, and the body as decoded: chunk
  framing is not counted) and the response body bytes sent (the access
  log's ``%b``).

Invariants: a bucket counts only its own observations (the endpoint adds
them up, so the buckets it shows are cumulative); the sum of the buckets
equals the sum of the classes.
"""

from __future__ import annotations

from bisect import bisect_left

from layer2_prefork import Counters

__all__ = ["BUCKETS", "CLASSES", "COUNTERS", "enable", "enabled", "record"]

# --8<-- [start:buckets]
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds (seconds) of the duration histogram: from half a millisecond (a small
response from a warm worker) to ten seconds (a slow upload); past it, ``+Inf``."""
# --8<-- [end:buckets]
CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")

_FIRST_BUCKET = len(CLASSES)
_SUM = _FIRST_BUCKET + len(BUCKETS) + 1
_RECEIVED = _SUM + 1
_SENT = _SUM + 2

COUNTERS = Counters(
    *(f"layer3_http.requests_{name}" for name in CLASSES),
    *(f"layer3_http.duration_le_{bound:g}" for bound in BUCKETS),
    "layer3_http.duration_le_inf", "layer3_http.duration_microseconds",
    "layer3_http.received_bytes", "layer3_http.sent_bytes")
"""The cells every worker slot carries (layer 2's `Counters`)."""

_on = False


def enable() -> None:
    """Count from now on (in the master, before the workers are forked)."""
    global _on
    _on = True


def enabled() -> bool:
    """Whether requests are counted."""
    return _on


# --8<-- [start:record]
def record(status: int, seconds: float, received: int, sent: int) -> None:
    """Count one request into this worker's slot (nothing outside a worker).

    Args:
        status: The final status sent (0: none; then nothing is counted).
        seconds: How long it took, from its head to the end of the response.
        received: Bytes of its head and decoded body.
        sent: Bytes of its response body.
    """
    kind = status // 100 - 1
    if not 0 <= kind < len(CLASSES):
        return
    add = COUNTERS.add
    add(kind)
    add(_FIRST_BUCKET + bisect_left(BUCKETS, seconds))
    add(_SUM, int(seconds * 1_000_000))
    add(_RECEIVED, received)
    add(_SENT, sent)
# --8<-- [end:record]


def read(counters: dict[str, int]) -> tuple[list[int], list[int], float, int, int]:
    """Turn a snapshot's counters (summed over pools) into this module's figures.

    Returns:
        Requests per class, observations per bucket (not cumulative, the
        last one past every bound), the duration sum in seconds, bytes
        received, bytes sent.
    """
    cells = [counters.get(name, 0) for name in COUNTERS.names]
    return (cells[:_FIRST_BUCKET], cells[_FIRST_BUCKET:_SUM], cells[_SUM] / 1_000_000,
            cells[_RECEIVED], cells[_SENT])
