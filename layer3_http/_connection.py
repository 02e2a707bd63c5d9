"""The per-connection loop: requests in, responses out, until the connection ends.

The handler that `generate_handler` makes runs one `Connection` per
connection. Its loop reads like a list:

1. wait for the next request head: up to `idle_timeout` for its first
   byte (then close quietly), up to `request_header_timeout` for the rest
   (then answer 408); a head the parser refuses is answered with its
   status (400, 414, 417, 431, 501, 505, ...). When the server is stopping
   gracefully (layer 2's `stopping`), a connection waiting for its next
   request is closed at once; requests under way still finish. Between
   two requests an idle connection is parked instead (layer 2's `park`):
   if no byte of the next request came within `park_linger`, or at once
   when other connections wait for a worker, the connection goes back to
   the master, which hands it to a worker again when the next head has
   arrived. Layer 2 is asked when the read finds nothing, and, when its
   `park_due` says so, before reading too (a client always ahead is
   asked about every `LOOK_EVERY` seconds);
2. build the `Request` (a `Content-Length` past the body limit: 413);
3. run the callback under the layer 2 watchdog (`response_timeout`), then
   finish the response if the callback did not;
4. decide whether the connection can carry another request: not if either
   side asked to close, the body framing broke, or the body the handler
   left unread cannot be drained within `drain_timeout` and
   `drain_size_limit` (a form body the handler never asked for included);
5. repeat, or close gently (half-close, discard the client's last bytes,
   close) so the last response reaches the client.

With metrics on (`_counting`), each request is counted where its access
log line is written, just before it.

Failures never escape to layer 2, so the worker lives on. A client's
fault (`ClientError`) is answered with its status when no part of the
response is on the wire yet, else the connection is reset. A handler that
raises is logged with its traceback and answered with 500 (or the
connection reset, once the response has begun). A connection that breaks
is logged in one line. Everything logged goes to the worker's stderr,
which layer 2 turns into log lines with the worker's PID.

Moonbridge: the ``repeat ... until`` loop over requests in the function
that ``http.generate_handler`` returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from layer1_sockets import BufferedSocket, poll
from layer2_prefork import (
    ExitCause,
    park,
    park_due,
    retiring,
    stop_fd,
    stopping,
    timeout,
    timeout_each,
)

from ._accesslog import AccessEntry
from ._counting import record
from ._errors import ClientError, log
from ._head import HeadParser, RequestHead
from ._options import Options
from ._proxy import describe_peer
from ._request import Request
from ._response import ResponseWriter
from ._wire import Wire

__all__ = ["Connection", "refusal"]

_HEAD_READ = 16384  # the most head bytes read at once (the rest of a pipeline waits)


class Connection:
    """Serves the requests of one connection in order.

    Args:
        sock: The connection.
        callback: The HTTP callback.
        options: Limits and timeouts.
        budget: The most requests to answer (the worker's `max_requests`
            left); the last one says ``Connection: close``. `None`: no limit.
        count: Count each request for the metrics endpoint (`_counting`).

    Attributes:
        retire: Set when the callback returned `False` or the budget is
            spent: the worker should end.
        served: Requests answered on this connection so far.
    """

    def __init__(self, sock: BufferedSocket, callback: Callable[[Request], object],
                 options: Options, budget: int | None = None, count: bool = False) -> None:
        self.sock = sock
        self.count = count
        self.wire = Wire(sock, options)
        self.callback = callback
        self.options = options
        self.budget = budget
        self.retire = False
        self.served = 0
        self.answered: ResponseWriter | None = None
        """The server's own answer to the current request (a 500, a 413, ...), if any."""

    def serve(self) -> None:
        """Serve requests until the connection ends; raises nothing but `MemoryError`."""
        try:
            while self._serve_one():
                pass
        except MemoryError:
            self.sock.reset()
            raise
        except Exception as error:  # a bug here must not cost the worker
            log("internal error, connection reset", error)
            self.sock.reset()
        finally:
            if not self.sock.closed:
                self.wire.close_gently()
            self.wire.drop_tail()

    def _serve_one(self) -> bool:
        """Serve one request; return whether the connection carries another one."""
        try:
            head = self._read_head()
        except ClientError as error:
            self._refuse(error, None)
            return False
        except OSError:
            self.sock.reset()
            return False
        if head is None:
            try:
                self.sock.close()
            except OSError:
                self.sock.reset()
            return False
        began = time.monotonic()
        self.answered = None
        try:
            request = Request(self.wire, head, self.options)
        except ClientError as error:
            self._refuse(error, head)
            return False
        if self.budget is not None and self.served + 1 >= self.budget:
            request.close_after_finish()  # the worker's last request (max_requests)
            self.retire = True
            retiring(ExitCause.MAX_REQUESTS)
        self.wire.pump = request.input
        self.wire.begin_request()
        try:
            if self.options.response_timeout is None:
                keep = self._handle(request)
            else:
                keep = timeout_each(self.options.response_timeout, self._handle, request)
            # a response the client takes slowly: the master finishes it, then holds the
            # connection for its next request (layer 2's write completion)
            return keep and not self.wire.hand_over_tail(keep_alive=True)
        finally:
            self.wire.pump = None
            self.served += 1
            if self.count:  # before the log line: a test that reads the log sees the counts
                writer = self.answered or request.writer
                record(writer.status_code, time.monotonic() - began,
                       head.size + request.input.received, writer.body_bytes)
            if self.options.access_log is not None:
                self._log_access(request, time.monotonic() - began)

    # -- the head ----------------------------------------------------------------

    # --8<-- [start:read_head]
    def _read_head(self) -> RequestHead | None:
        """Read the next head; `None` when the client closed, stayed idle too long, or
        the connection was parked.

        Raises:
            ClientError: The head is malformed, too large, or late (408).
        """
        may_park = self.served > 0 and self.options.park_linger is not None
        if may_park and park_due():  # layer 2 says when to ask though the client is ahead
            if self._park():
                return None
            may_park = False  # asked for this request already
        data = self._first_bytes(may_park)
        if data is None:
            return None
        parser = HeadParser(size_limit=self.options.request_header_size_limit)
        deadline = _deadline(self.options.request_header_timeout)
        while (head := parser.feed(data)) is None:
            data = self._more_bytes(deadline)
        self.sock.unread(parser.leftover)  # the body or the next pipelined request
        return head
    # --8<-- [end:read_head]

    def _read_some(self) -> bytes | None:
        """What has arrived, `b""` at the end, `None` if nothing has.

        Takes what has arrived in one read and feeds it whole, so the parser
        cuts all complete lines in one pass (not one read and one feed per
        line); what follows the head goes back into the buffer.
        """
        return self.wire.read_nb(min(self.sock.buffered, _HEAD_READ) or _HEAD_READ)

    def _first_bytes(self, may_park: bool) -> bytes | None:
        """Wait for the first bytes of a head (`idle_timeout`); `None`: closed, idle, parked."""
        deadline = _deadline(self.options.idle_timeout)
        while (data := self._read_some()) is None:
            if may_park:  # park waits for the request itself: read again after it
                may_park = False
                if self._park():
                    return None
            elif not self._wait_for_request(deadline):
                return None
        return data or None

    def _more_bytes(self, deadline: float | None) -> bytes:
        """The next bytes of a head under way, within `request_header_timeout` and
        `stall_timeout`.

        Raises:
            ClientError: 408 when they are late, 400 when the client closed.
        """
        while (data := self._read_some()) is None:
            if not self.wire.wait_input(_earliest(deadline,
                                                  _deadline(self.options.stall_timeout))):
                raise ClientError(408, "the request head did not arrive in time")
        if not data:
            raise ClientError(400, "connection closed inside the request head")
        return data

    def _quiet_for(self, seconds: float | None) -> None:
        """Before a wait of up to `seconds` for a request: no stale watchdog may fire.

        Layer 2 may leave the watchdog of the last request set while no limit
        is due (`layer2_prefork.timeout_each`), as long as it is at least
        half a `response_timeout` away; a longer wait disarms it first.
        """
        limit = self.options.response_timeout
        if limit is not None and (seconds is None or seconds >= limit / 2):
            timeout(0)

    def _park(self) -> bool:
        """Hand the idle connection back to the master (see `Options.park_linger`)."""
        linger = self.options.park_linger or 0.0
        self._quiet_for(linger)
        return park(self.sock, linger)

    def _wait_for_request(self, deadline: float | None) -> bool:
        """Wait for the first byte of a request; `False` to close the connection instead.

        A connection that has served a request closes at once when the
        server is stopping (layer 2's `stopping`), rather than pinning the
        worker until `idle_timeout`; the first request of a connection is
        always waited for.
        """
        if not self.served:
            self._quiet_for(None if deadline is None else deadline - time.monotonic())
            return self.wire.wait_input(deadline)
        if stopping():
            return False
        self._quiet_for(None if deadline is None else deadline - time.monotonic())
        if not self.wire.wait_input(deadline, also=stop_fd()):
            return False
        return self.sock.buffered > 0 or not stopping() or self._input_arrived()

    def _input_arrived(self) -> bool:
        """Whether the client sent something (or closed) that a read would return now."""
        return poll([self.sock], [], 0)

    # -- the response --------------------------------------------------------------

    def _handle(self, request: Request) -> bool:
        """Run the callback and what follows; return whether to keep the connection."""
        try:
            result = self.callback(request)
            if self.sock.closed:  # the handler closed or reset the connection itself
                return False
            if request.faulty:  # the handler caught the connection's failure
                log(f"{self._where(request)}: the connection failed during the response")
                self.sock.reset()
                return False
            if not request.writer.final_status_given:
                return self._unanswered(request)
            request.finish()
        except ClientError as error:
            self._client_failed(request, error)
            return False
        except Exception as error:
            self._handler_failed(request, error)
            if isinstance(error, MemoryError):
                raise  # layer 2 replaces a worker that ran out of memory
            return False
        if result is False:
            self.retire = True
        try:
            return self._after_response(request)
        except ClientError:
            self.wire.close_gently()
        except OSError:
            self.sock.reset()
        except Exception as error:
            log("a body stream handler raised after the response; connection reset", error)
            self.sock.reset()
        return False

    def _after_response(self, request: Request) -> bool:
        """Deal with the rest of the body; return whether another request may follow.

        What the handler left unread is drained within `drain_size_limit`
        and `drain_timeout`, whatever its sink (a form's stream handlers
        get it), never read to its end at one byte per `stall_timeout`;
        a body that does not end within those limits closes the connection.
        """
        body = request.input
        keep = not request.writer.close and not self.retire
        if keep and not body.complete:
            keep = body.drain()  # False at once for an abandoned or failed body
        if not keep:
            self.wire.close_gently()
        return keep

    def _log_access(self, request: Request, duration: float) -> None:
        writer, head = self.answered or request.writer, request.head
        self.options.access_log.emit(AccessEntry(
            request.client_address, request.origin.peer, head.method, head.target,
            f"HTTP/{head.version[0]}.{head.version[1]}", writer.status_code,
            writer.body_bytes, request.started, duration, head.headers))

    def _log_refused(self, error: ClientError, head: RequestHead | None) -> None:
        peer = self.wire.peer_address
        method, target, version = "-", "-", ""
        fields: tuple[tuple[str, str], ...] = ()
        if head is not None:
            method, target, fields = head.method, head.target, head.headers
            version = f"HTTP/{head.version[0]}.{head.version[1]}"
        size = self.answered.body_bytes if self.answered is not None else 0
        self.options.access_log.emit(AccessEntry(
            peer, peer, method, target, version, error.status, size, time.time(), 0.0, fields))

    def _where(self, request: Request) -> str:
        return f"{describe_peer(self.sock)}: {request.method} {request.head.target}"

    def _unanswered(self, request: Request) -> bool:
        log(f"{self._where(request)}: the handler returned without sending a status; "
            "answered 500")
        self._answer("500 Internal Server Error", request.head)
        return False

    def _client_failed(self, request: Request, error: ClientError) -> None:
        log(f"{self._where(request)}: {error}")
        if request.faulty or request.writer.committed:
            self.sock.reset()
        else:
            self._answer(error.status_line, request.head)

    def _handler_failed(self, request: Request, error: Exception) -> None:
        where = self._where(request)
        if request.faulty and isinstance(error, OSError):
            log(f"{where}: connection failed: {error!r}")
            self.sock.reset()
        elif request.writer.finished and not request.faulty:
            log(f"{where}: the handler raised after its response was complete", error)
            self.wire.close_gently()
        elif request.faulty or request.writer.committed:
            log(f"{where}: the handler raised after the response began; connection reset", error)
            self.sock.reset()
        else:
            log(f"{where}: the handler raised; answered 500", error)
            self._answer("500 Internal Server Error", request.head)

    def _refuse(self, error: ClientError, head: RequestHead | None) -> None:
        """Answer a request that never reached the handler."""
        what = "request" if head is None else f"{head.method} {head.target}"
        log(f"{describe_peer(self.sock)}: {what}: {error}")
        self.answered = None
        self._answer(error.status_line, head)
        if self.count:
            record(error.status, 0.0, 0 if head is None else head.size,
                   0 if self.answered is None else self.answered.body_bytes)
        if self.options.access_log is not None:
            self._log_refused(error, head)

    def _answer(self, status_line: str, head: RequestHead | None) -> None:
        """Send a short plain-text response of the server's own, then close."""
        writer, response = refusal(
            status_line, self.options, version=head.version if head is not None else (1, 1),
            head_request=head is not None and head.method == "HEAD")
        self.answered = writer  # for the access log
        try:
            self.wire.write([response], flush=True)
        except (OSError, ValueError):
            self.sock.reset()
            return
        self.wire.close_gently()


def _deadline(seconds: float | None) -> float | None:
    return None if seconds is None else time.monotonic() + seconds


def _earliest(first: float | None, second: float | None) -> float | None:
    if first is None:
        return second
    return first if second is None else min(first, second)


def refusal(status_line: str, options: Options, *, version: tuple[int, int] = (1, 1),
            head_request: bool = False) -> tuple[ResponseWriter, bytes]:
    """A short plain-text response of the server's own that closes the connection.

    Returns:
        The writer (for the access log) and the bytes to send.
    """
    writer = ResponseWriter(version=version, head_request=head_request, keep_alive=False,
                            static_fields=options.static_fields, minimum_chunk_size=1 << 20)
    writer.status(status_line)
    writer.header("Content-Type", "text/plain; charset=utf-8")
    parts = writer.data(f"{status_line}\n".encode())
    parts += writer.finish()
    return writer, b"".join(parts)
