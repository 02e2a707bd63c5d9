"""Worker recycling: ``--max-requests N`` (with ``--max-requests-jitter``) counts HTTP requests.

Requests on one keep-alive connection count one by one; the last request a
worker may answer says ``Connection: close``, the worker then retires and
layer 2 forks a fresh one at once (a normal exit is no failure).
"""

from __future__ import annotations

import json

import pytest
from http_support import RawClient, request_bytes
from prod_apps.prod_support import HTTP_APP, get_json, raw, server

from layer3_http import Options


def test_max_requests_counts_requests_on_a_kept_alive_connection() -> None:
    with server(str(HTTP_APP), "--workers", "1", "--max-requests", "3", "-s") as (program, port):
        with RawClient(raw(port)) as client:
            answers = []
            for _ in range(3):
                client.send(request_bytes(target="/who"))
                answers.append(client.read_response())
            assert [answer.header("Connection") for answer in answers] == [None, None, "close"]
            assert client.closed_by_server()
        first = {json.loads(answer.body)["pid"] for answer in answers}
        assert len(first) == 1
        program.wait_for_line(rb"worker \d+ exited with status 0")
        later = [get_json(port, "/who")["pid"] for _ in range(4)]  # 3 by one worker, then new
        assert later[0] == later[1] == later[2] != later[3] and first.isdisjoint(later)


def test_max_requests_jitter_spreads_the_limits() -> None:
    with server(str(HTTP_APP), "--workers", "1", "--max-requests", "1",
                "--max-requests-jitter", "3") as (_, port):
        pids = [get_json(port, "/who")["pid"] for _ in range(40)]
    runs: list[int] = []
    for index, pid in enumerate(pids):
        if index and pid == pids[index - 1]:
            runs[-1] += 1
        else:
            runs.append(1)
    complete = runs[:-1]
    assert all(1 <= length <= 4 for length in complete), runs
    assert len(set(complete)) > 1, runs


def test_recycling_options_are_checked() -> None:
    with pytest.raises(ValueError, match="max_requests must be an int >= 1"):
        Options(max_requests=0)
    with pytest.raises(ValueError, match="max_requests_jitter must be an int >= 0"):
        Options(max_requests=10, max_requests_jitter=-2)
