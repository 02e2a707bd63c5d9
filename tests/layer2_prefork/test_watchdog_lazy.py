"""`timeout_each` sets the kernel's timer lazily: no two `setitimer` calls per request.

A keep-alive connection runs `timeout(response_timeout, handle)` once per
request. The timer stays set after a request (it is far away), the next
request's deadline is close enough to it to need no new setting, a
sub-limit is still set exactly, and `timeout(0)` and `disarm()` always
disarm. The limits here are long (1000 s) and every test disarms at the
end, so the timer never fires in the test process (pytest-timeout's own
alarm is set again by the fixture). Between connections the worker's
`rest()` keeps only a stale timer that is far (`REST_FAR`, and half its
limit), and its idle wait (`idle_wait`) ends, and disarms it, before it
comes nearer.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from layer2_prefork import timeout, timeout_each
from layer2_prefork.worker import _timeout


@pytest.fixture(autouse=True)
def disarmed() -> Iterator[None]:
    before = signal.getitimer(signal.ITIMER_REAL)[0]  # pytest-timeout's alarm, if any
    _timeout.disarm()
    yield
    _timeout.disarm()
    if before:
        signal.setitimer(signal.ITIMER_REAL, before)


def armed_for() -> float:
    return signal.getitimer(signal.ITIMER_REAL)[0]


def test_after_a_request_the_timer_stays_set_and_the_next_request_keeps_it() -> None:
    timeout_each(1000, lambda: None)
    first = armed_for()
    assert 990 < first <= 1000  # stale, but 1000 s away: left set
    assert timeout() == 0.0  # no limit is due, whatever the kernel's timer says
    timeout_each(1000, lambda: None)
    assert armed_for() <= first  # not moved later: the deadline was within 1 % of it


def test_a_sub_limit_is_exact_and_the_outer_one_comes_back() -> None:
    def inner() -> float:
        return armed_for()

    def outer() -> tuple[float, float]:
        return timeout(5, inner), armed_for()

    during, after = timeout_each(1000, outer)
    assert 4 < during <= 5  # the shorter limit wins, exactly
    assert 990 < after <= 1000  # and the outer one is set again on return


def test_timeout_zero_and_disarm_always_disarm() -> None:
    timeout_each(1000, lambda: None)
    assert armed_for() > 0
    timeout(0)
    assert armed_for() == 0
    timeout_each(1000, lambda: None)
    _timeout.disarm()
    assert armed_for() == 0


def test_a_short_limit_left_behind_is_disarmed() -> None:
    timeout(1000)  # a plain arm at the outer level: exact
    assert 990 < armed_for() <= 1000
    timeout(0)
    timeout(1000, lambda: None)  # timeout itself is exact: nothing is left set
    assert armed_for() == 0
    timeout_each(1000, lambda: None)
    timeout_each(0.5, lambda: None)  # a shorter limit is set exactly, and then
    assert armed_for() == 0 or armed_for() >= 0.25  # never left due within half of it


def test_between_connections_a_far_stale_timer_stays_set_until_the_idle_wait_nears_it() -> None:
    timeout_each(1000, lambda: None)
    _timeout.rest()  # the worker, after a connection
    assert 990 < armed_for() <= 1000  # 1000 s away: more than REST_FAR and half the limit
    assert timeout() == 0.0
    bound = _timeout.idle_wait(None)
    assert bound is not None and 390_000 < bound <= 400_000  # ends REST_FAR before it
    assert _timeout.idle_wait(5) == 5
    timeout_each(1000, lambda: None)  # the next connection's request keeps it
    assert 990 < armed_for() <= 1000


def test_between_connections_a_near_or_exact_timer_is_disarmed() -> None:
    timeout_each(100, lambda: None)  # stale, but nearer than REST_FAR
    assert armed_for() > 0
    _timeout.rest()
    assert armed_for() == 0
    timeout(1000)  # a plain limit the handler left set: exact, never kept
    _timeout.rest()
    assert armed_for() == 0
    assert _timeout.idle_wait(None) is None


def test_the_idle_wait_disarms_a_stale_timer_once_it_comes_near(
        monkeypatch: pytest.MonkeyPatch) -> None:
    timeout_each(1000, lambda: None)
    _timeout.rest()
    assert armed_for() > 990
    monkeypatch.setattr(_timeout, "REST_FAR", 1000.0)  # as if 1000 - 990 s had passed
    assert _timeout.idle_wait(None) is None
    assert armed_for() == 0
