"""RFC 3261 client transaction timers (17.1.1.2, 17.1.2.2), driven by a fake clock."""

from __future__ import annotations

import itertools
import math

import pytest

from harness.load.timers import Action, ClientTimers, TimerPolicy


def _run(t: ClientTimers, until: float) -> tuple[list[float], float | None]:
    """Fire the timers at each due time up to ``until``: (retransmission times, timeout time)."""
    sent: list[float] = []
    while True:
        now = t.next_due()
        if now > until:
            return sent, None
        action = t.fire(now)
        if action is Action.TIMEOUT:
            return sent, now
        assert action is Action.RETRANSMIT
        sent.append(now)


def test_invite_timer_a_doubles_and_timer_b_times_out_at_64_t1() -> None:
    sent, timeout = _run(ClientTimers(invite=True, now=0.0), until=100)
    assert sent == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert timeout == 32.0


def test_non_invite_timer_e_caps_at_t2_and_timer_f_times_out() -> None:
    sent, timeout = _run(ClientTimers(invite=False, now=10.0), until=100)
    assert sent[:5] == [10.5, 11.5, 13.5, 17.5, 21.5]  # 0.5, 1, 2, 4, then T2 = 4 s
    assert all(b - a == pytest.approx(4.0) for a, b in itertools.pairwise(sent[3:]))
    assert timeout == 42.0


def test_provisional_stops_invite_retransmissions_and_uses_the_tu_timeout() -> None:
    t = ClientTimers(invite=True, now=0.0, proceeding_timeout=10.0)
    assert t.fire(0.5) is Action.RETRANSMIT
    assert t.response(180, 0.7) is False
    assert t.next_retransmit == math.inf
    assert t.fire(5.0) is Action.WAIT  # ringing: nothing to resend
    assert t.next_due() == pytest.approx(10.7)
    assert t.fire(10.7) is Action.TIMEOUT


def test_provisional_moves_non_invite_to_t2_and_final_ends_everything() -> None:
    t = ClientTimers(invite=False, now=0.0, policy=TimerPolicy(t1=0.5, t2=4.0))
    t.response(100, 0.1)
    assert t.fire(0.5) is Action.RETRANSMIT  # Timer E already set still fires ...
    assert t.next_due() == pytest.approx(4.5)  # ... and is then reset to T2
    assert t.response(200, 1.0) is True
    assert t.next_due() == math.inf
    assert t.fire(100.0) is Action.WAIT


def test_fire_before_due_does_nothing() -> None:
    t = ClientTimers(invite=True, now=0.0, policy=TimerPolicy(t1=0.1))
    assert t.fire(0.05) is Action.WAIT
    assert t.retransmits == 0
    assert t.fire(0.1) is Action.RETRANSMIT and t.retransmits == 1
    assert TimerPolicy(t1=0.1).timeout == pytest.approx(6.4)
