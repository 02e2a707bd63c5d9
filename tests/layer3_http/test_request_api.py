"""The request object's API in one process: a socket pair, the handler in a thread.

Each test runs a small callback through the real `Handler` on one end of a
Unix socket pair and plays the client on the other end, then checks both
what the client received and what the callback saw (recorded in a list,
asserted after the handler's thread ended). This reaches the API's corners
(order rules, misuse, the body's sinks) faster than a server process.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable
from typing import Any

from http_support import RawClient, Response, request_bytes

from layer1_sockets import BufferedSocket
from layer3_http import ClientError, Request, RequestAPIError, generate_handler

HOST = ("Host", "t")
FORM = ("Content-Type", "application/x-www-form-urlencoded")


def exchange(app: Callable[[Request], object], *requests: bytes,
             **options: Any) -> tuple[list[Response], object]:
    """Serve `requests` (then the client's EOF) with `app`; return the responses."""
    ours, theirs = socket.socketpair()
    handler = generate_handler(app, response_timeout=None, idle_timeout=10, **options)
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(handler(BufferedSocket(ours))))
    thread.start()
    theirs.settimeout(10)
    with RawClient(theirs) as client:
        client.send(*requests)
        theirs.shutdown(socket.SHUT_WR)
        responses = []
        while True:
            try:
                responses.append(client.read_response())
            except (EOFError, ConnectionResetError):
                break
    thread.join(10)
    assert not thread.is_alive()
    return responses, outcome[0] if outcome else None


def post(target: str, body: bytes, *headers: tuple[str, str]) -> bytes:
    return request_bytes("POST", target, headers=[
        HOST, ("Content-Length", str(len(body))), *headers], body=body)


def answer(request: Request, text: object = "ok") -> None:
    request.send_status(200)
    request.send_data(text)


def test_attributes_of_a_request() -> None:
    seen: list[Any] = []

    def app(request: Request) -> None:
        seen.extend([request.method, request.path, request.query, dict(request.get_params),
                     dict(request.get_params_list), request.cookies,
                     request.headers["x-multi"], request.headers_value["X-Multi"],
                     request.headers_flags["Accept"]["TEXT/HTML"], request.socket])
        answer(request)

    exchange(app, request_bytes(target="/a/b%20c?x=1&x=2&y", headers=[
        HOST, ("Cookie", 'sid=abc; theme="dark"'), ("X-Multi", "1"), ("x-multi", "2"),
        ("Accept", "text/html, */*")]))
    assert seen[:9] == ["GET", "a/b%20c", "?x=1&x=2&y", {"x": "1", "y": ""},
                        {"x": ["1", "2"], "y": [""]}, {"sid": "abc", "theme": "dark"},
                        ["1", "2"], False, True]
    assert isinstance(seen[9], BufferedSocket)


def test_options_asterisk_has_no_path_and_no_query() -> None:
    seen: list[object] = []

    def app(request: Request) -> None:
        seen.extend([request.path, request.query])
        answer(request)

    exchange(app, request_bytes("OPTIONS", "*"))
    assert seen == [None, None]


def test_send_data_converts_its_arguments() -> None:
    def app(request: Request) -> None:
        answer(request, None)
        request.send_data(1, "é", b"b", bytearray(b"y"), memoryview(b"m"))

    responses, _ = exchange(app, request_bytes())
    assert responses[0].body == "None1é".encode() + b"bym"


def test_body_then_post_params_parses_the_kept_body() -> None:
    seen: list[object] = []

    def app(request: Request) -> None:
        seen.extend([request.body, request.body, dict(request.post_params)])
        request.process_request_body()  # nothing more to do
        answer(request)

    exchange(app, post("/", b"a=1&b=2", FORM))
    assert seen == [b"a=1&b=2", b"a=1&b=2", {"a": "1", "b": "2"}]


def test_body_after_post_params_is_refused() -> None:
    errors: list[BaseException] = []

    def app(request: Request) -> None:
        assert request.post_params_list["a"] == ["1"]
        try:
            _ = request.body
        except RequestAPIError as error:
            errors.append(error)
        answer(request)

    exchange(app, post("/", b"a=1", FORM))
    assert len(errors) == 1


def test_registrations_after_the_body_was_processed_are_refused() -> None:
    errors: list[str] = []

    def app(request: Request) -> None:
        request.process_request_body()
        def ignore(*args: object) -> None:
            del args

        calls: list[Callable[[], None]] = [
            lambda: request.stream_post_param("a", ignore),
            lambda: request.stream_post_params("^a", ignore),
            lambda: request.stream_request_body(ignore)]
        for call in calls:
            try:
                call()
            except RequestAPIError as error:
                errors.append(str(error))
        request.stream_request_body(None)  # allowed: does nothing more
        answer(request)

    responses, _ = exchange(app, post("/", b"a=1", FORM))
    assert responses[0].status == 200 and len(errors) == 3


def test_stream_callback_must_be_callable() -> None:
    errors: list[BaseException] = []

    def app(request: Request) -> None:
        try:
            request.stream_post_param("a", "not callable")  # type: ignore[arg-type]
        except TypeError as error:
            errors.append(error)
        answer(request)

    exchange(app, request_bytes())
    assert len(errors) == 1


def test_misuse_gives_500_and_closes() -> None:
    def app(request: Request) -> None:
        request.send_header("X-Too", "early")

    responses, _ = exchange(app, request_bytes(), request_bytes())
    assert [r.status for r in responses] == [500]


def test_a_handler_may_raise_a_client_error_to_answer_with_its_status() -> None:
    def app(request: Request) -> None:
        raise ClientError(403, "not for you")

    responses, _ = exchange(app, request_bytes())
    assert responses[0].status == 403 and responses[0].body == b"403 Forbidden\n"


def test_a_chunked_body_past_the_limit_reaches_the_handler_as_413() -> None:
    statuses: list[int] = []

    def app(request: Request) -> None:
        try:
            _ = request.body
        except ClientError as error:
            statuses.append(error.status)
            request.send_status(error.status_line)
            request.send_data("too big, sorry")

    body = b"a\r\n0123456789\r\n" * 3 + b"0\r\n\r\n"
    responses, _ = exchange(app, request_bytes("POST", "/", headers=[
        HOST, ("Transfer-Encoding", "chunked")], body=body), request_bytes(),
        request_body_size_limit=25)
    assert statuses == [413]
    assert responses[0].status == 413 and responses[0].body == b"too big, sorry"
    assert len(responses) == 1  # the broken body ends the connection


def test_answer_first_then_read_the_form() -> None:
    seen: list[object] = []

    def app(request: Request) -> None:
        answer(request)
        request.finish()
        seen.append(dict(request.post_params))  # the form was taken in while answering

    responses, _ = exchange(app, post("/", b"k=v", FORM), request_bytes())
    assert seen == [{"k": "v"}] and len(responses) == 2


def test_stream_handlers_get_the_rest_after_an_early_answer() -> None:
    calls: list[tuple[object, ...]] = []

    def app(request: Request) -> None:
        request.stream_post_param("f", lambda *args: calls.append(args))
        answer(request)  # starts the body processing; the handler returns at once

    body = b"--B\r\nContent-Disposition: form-data; name=f\r\n\r\nxyz\r\n--B--\r\n"
    responses, _ = exchange(app, post("/", body, ("Content-Type", "multipart/form-data; "
                                                   "boundary=B")), request_bytes())
    assert len(responses) == 2
    assert [args[0] for args in calls[:-1]] == [b"xyz"] and calls[-1] == ()


def test_stream_post_params_with_a_compiled_pattern() -> None:
    names: list[str] = []

    def app(request: Request) -> None:
        request.stream_post_params(re.compile(r"^f\d$"), lambda *args: names.append(
            args[1].field_name) if len(args) == 2 else None)
        request.process_request_body()
        answer(request, sorted(request.post_params))

    body = b"".join(b"--B\r\nContent-Disposition: form-data; name=%s\r\n\r\nv\r\n" % name
                    for name in (b"f1", b"g", b"f2")) + b"--B--"
    responses, _ = exchange(app, post("/", body, ("Content-Type", "multipart/form-data; "
                                                   "boundary=B")))
    assert names == ["f1", "f2"] and responses[0].body == b"['g']"


def test_post_metadata_mappings() -> None:
    seen: list[object] = []

    def app(request: Request) -> None:
        first = request.post_metadata["doc"]
        seen.extend([first.file_name, first.content_type,
                     [m.file_name for m in request.post_metadata_list["doc"]],
                     request.post_metadata_list["missing"], "missing" in request.post_metadata])
        answer(request)

    body = (b"--B\r\nContent-Disposition: form-data; name=doc; filename=\"a.txt\"\r\n"
            b"Content-Type: text/plain\r\n\r\nA\r\n--B\r\nContent-Disposition: form-data; "
            b"name=doc; filename=b.txt\r\n\r\nB\r\n--B--")
    exchange(app, post("/", body, ("Content-Type", "multipart/form-data; boundary=B")))
    assert seen == ["a.txt", "text/plain", ["a.txt", "b.txt"], [], False]


def test_a_failed_write_makes_the_request_faulty() -> None:
    seen: list[object] = []
    ours, theirs = socket.socketpair()
    theirs.sendall(request_bytes())
    theirs.close()  # the client is gone before the answer

    def app(request: Request) -> None:
        request.send_status(200)
        try:
            request.send_data(b"x" * 100_000)
            request.flush()
        except OSError as error:
            seen.append(type(error))
        seen.append(request.faulty)
        try:
            request.send_data("more")
        except RequestAPIError:
            seen.append("refused")

    generate_handler(app, response_timeout=None)(BufferedSocket(ours))
    assert seen[0] in (BrokenPipeError, ConnectionResetError)
    assert seen[1:] == [True, "refused"]


def test_monologue_after_the_headers_is_refused() -> None:
    errors: list[BaseException] = []

    def app(request: Request) -> None:
        request.send_status(200)
        request.finish_headers()
        for call in (request.monologue, request.close_after_finish):
            try:
                call()
            except RequestAPIError as error:
                errors.append(error)

    responses, _ = exchange(app, request_bytes())
    assert len(errors) == 2 and responses[0].status == 200


def test_post_params_after_a_monologue_are_refused() -> None:
    errors: list[BaseException] = []

    def app(request: Request) -> None:
        request.send_status(200)  # starts the form processing
        request.monologue()  # and gives it up
        try:
            _ = request.post_params
        except RequestAPIError as error:
            errors.append(error)

    responses, _ = exchange(app, post("/", b"a=1", FORM), request_bytes())
    assert len(errors) == 1 and len(responses) == 1
    assert responses[0].header("Connection") == "close"


def test_a_handler_may_reset_the_connection_itself() -> None:
    def app(request: Request) -> None:
        request.socket.reset()

    responses, outcome = exchange(app, request_bytes(), request_bytes())
    assert responses == [] and outcome is True


def test_callback_returning_false_retires_the_worker() -> None:
    def retire(request: Request) -> bool:
        answer(request)
        return False

    _, outcome = exchange(retire, request_bytes())
    assert outcome is False
    _, outcome = exchange(answer, request_bytes())
    assert outcome is True
