"""The metrics endpoint: the server's counters in the Prometheus text format (0.0.4).

`serve_metrics(listener)` declares one more layer 2 pool, of one worker,
on a listener of its own (``--metrics 127.0.0.1:9100`` on the command
line), and turns on the counting of requests (`_counting`). That worker
answers ``GET /metrics`` (and ``HEAD``) with `render(snapshot())`; any
other path is 404. Its own requests are not counted. Because it is a pool
of its own, it answers while every worker of the application is busy, and
the application's listeners never serve it.

What it shows, all read from layer 2's scoreboard in one pass
(`layer2_prefork.snapshot`):

- ``moonbridge_workers``, gauge; labels ``pool``, ``state`` (starting, idle, busy)
- ``moonbridge_held_connections``, gauge; labels ``reason`` (`HeldReason`)
- ``moonbridge_worker_exits_total``, counter; labels ``pool``, ``cause`` (`ExitCause`)
- ``moonbridge_connections_total``, counter; labels ``pool``, ``via`` (accepted, queued)
- ``moonbridge_http_requests_total``, counter; labels ``code`` (1xx ... 5xx)
- ``moonbridge_http_request_duration_seconds``, histogram; labels ``le``
- ``moonbridge_http_received_bytes_total``, counter
- ``moonbridge_http_sent_bytes_total``, counter

The HTTP figures are summed over the pools. Invariants: every line of the
output is a ``# HELP``, a ``# TYPE`` or a sample; a metric's samples follow
its ``# TYPE`` line; histogram buckets are cumulative and the ``+Inf``
bucket equals ``_count``.
"""

from __future__ import annotations

from collections.abc import Iterable

from layer2_prefork import ListenerSpec, Local, Pool, Snapshot, listen, snapshot

from . import _counting
from ._handler import generate_handler
from ._request import Request
from ._target import parse_listen

__all__ = ["CONTENT_TYPE", "parse_metrics_address", "render", "serve_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of the Prometheus text exposition format."""
PATH = "metrics"
"""The endpoint's path (without the leading slash, as `Request.path` has it)."""


def _family(name: str, kind: str, text: str,
            samples: Iterable[tuple[str, str, float]]) -> list[str]:
    lines = [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
    for suffix, labels, value in samples:
        shown = f"{{{labels}}}" if labels else ""
        number = repr(float(value)) if isinstance(value, float) else str(value)
        lines.append(f"{name}{suffix}{shown} {number}")
    return lines


# --8<-- [start:render]
def render(shot: Snapshot) -> str:
    """The text exposition (format 0.0.4) of a snapshot.

    Examples:
        >>> from layer2_prefork import PoolSnapshot
        >>> pool = PoolSnapshot(0, 0, 2, 1, {"crash": 1}, 0, 7, {})
        >>> text = render(Snapshot((pool,), {"keepalive": 3}))
        >>> 'moonbridge_workers{pool="0",state="busy"} 1' in text.splitlines()
        True
        >>> 'moonbridge_http_request_duration_seconds_count 0' in text.splitlines()
        True
    """
    lines: list[str] = []
    lines += _family("moonbridge_workers", "gauge", "Workers by pool and state.", (
        ("", f'pool="{p.index}",state="{state}"', count) for p in shot.pools
        for state, count in (("starting", p.starting), ("idle", p.idle), ("busy", p.busy))))
    lines += _family("moonbridge_held_connections", "gauge",
                     "Connections the master holds, by reason.",
                     (("", f'reason="{reason}"', count) for reason, count in shot.held.items()))
    lines += _family("moonbridge_worker_exits_total", "counter",
                     "Workers that exited (and were replaced), by pool and cause.", (
                         ("", f'pool="{p.index}",cause="{cause}"', count) for p in shot.pools
                         for cause, count in p.exits.items()))
    lines += _family("moonbridge_connections_total", "counter",
                     "Connections and timer events workers took, by pool and how.", (
                         ("", f'pool="{p.index}",via="{via}"', count) for p in shot.pools
                         for via, count in (("accepted", p.accepted), ("queued", p.taken))))
    totals: dict[str, int] = {}
    for pool in shot.pools:
        for name, value in pool.counters.items():
            totals[name] = totals.get(name, 0) + value
    classes, buckets, seconds, received, sent = _counting.read(totals)
    lines += _family("moonbridge_http_requests_total", "counter",
                     "HTTP requests answered, by status class.",
                     (("", f'code="{name}"', count)
                      for name, count in zip(_counting.CLASSES, classes, strict=True)))
    bounds = [f"{bound:g}" for bound in _counting.BUCKETS] + ["+Inf"]
    cumulative = [sum(buckets[:index + 1]) for index in range(len(buckets))]
    lines += _family("moonbridge_http_request_duration_seconds", "histogram",
                     "Time from a request's head to the end of its response.", [
                         *(("_bucket", f'le="{bound}"', count)
                           for bound, count in zip(bounds, cumulative, strict=True)),
                         ("_sum", "", seconds), ("_count", "", cumulative[-1])])
    lines += _family("moonbridge_http_received_bytes_total", "counter",
                     "Bytes of request heads and decoded bodies received.",
                     [("", "", received)])
    lines += _family("moonbridge_http_sent_bytes_total", "counter",
                     "Bytes of response bodies sent.", [("", "", sent)])
    return "\n".join(lines) + "\n"
# --8<-- [end:render]


def answer(request: Request) -> None:
    """The endpoint's callback: ``GET /metrics`` and ``HEAD /metrics``; else 404 or 405."""
    if request.path != PATH:
        request.send_status(404)
        request.send_header("Content-Type", "text/plain")
        request.send_data("not found: the metrics are at /metrics\n")
    elif request.method not in ("GET", "HEAD"):
        request.send_status(405)
        request.send_header("Allow", "GET, HEAD")
    else:
        request.send_status(200)
        request.send_header("Content-Type", CONTENT_TYPE)
        request.send_data(render(snapshot()))


_served: Pool | None = None


# --8<-- [start:serve_metrics]
def serve_metrics(*listeners: ListenerSpec | str) -> Pool:
    """Serve the metrics endpoint on listeners of its own, and count requests from now on.

    Call it in the master before `layer2_prefork.run`, like `listen`:
    it declares a pool of one worker that answers ``GET /metrics``.
    Bind it to loopback or a Unix socket (the counters tell a lot about
    the server); the application's listeners never serve it.

    Args:
        *listeners: `TCP` or `Local` listeners, or their text as for
            ``--metrics`` (``"127.0.0.1:9100"``, ``"unix:/run/app/metrics.sock"``).

    Returns:
        The metrics pool's handle (its `Pool.port` when the port was 0).

    Raises:
        ValueError: No listener, a wrong one, or metrics already served.
        OSError: A socket cannot be bound.
    """
    global _served
    if _served is not None:
        raise ValueError("serve_metrics: the metrics are already served")
    if not listeners:
        raise ValueError("serve_metrics: at least one listener is required")
    chosen = [parse_metrics_address(item) if isinstance(item, str) else item
              for item in listeners]
    handler = generate_handler(answer, idle_timeout=10, request_header_timeout=10)
    handler.counted = False
    _served = listen(*chosen, connect=handler, pre_fork=1, min_fork=1, max_fork=1)
    _counting.enable()
    return _served
# --8<-- [end:serve_metrics]


def parse_metrics_address(text: str) -> ListenerSpec:
    """Turn a ``--metrics`` value into a listener: ``HOST:PORT``, ``unix:PATH`` or a path.

    Examples:
        >>> parse_metrics_address("127.0.0.1:9100")
        TCP(host='127.0.0.1', port=9100)
        >>> parse_metrics_address("/run/app/metrics.sock")
        Local(path='/run/app/metrics.sock')
    """
    if "/" in text and not text.startswith("unix:") and not text.startswith("["):
        return Local(text)
    return parse_listen(text)
