"""Brute-force judgement from literal observations (no sockets): PASS only on a ban or a throttle shown
against a right password that worked before; 403 to every wrong password, 403 to everything, a lost
packet or a silent PBX never pass; every verdict carries its figures and threshold."""

from __future__ import annotations

from harness.contracts.sipmsg import parse
from harness.contracts.verdict import Verdict
from harness.probes.bruteforce import Attempt, Limits, Observation, judge, outcomes
from harness.probes.client import Exchange, Reply
from harness.probes.probe_uac import RegisterResult

LIMITS = Limits(confirm=3, slowdown_factor=3.0, slowdown_min_ms=100.0, timeout_s=1.5)
OK = Attempt(0, 200, "OK", 3.0)
NOANS = Attempt(0, None)


def wrong(codes: list[int | None], ms: list[float] | None = None, reason: str = "") -> list[Attempt]:
    times = ms or [0.4] * len(codes)
    return [Attempt(i + 1, c, reason or {401: "Unauthorized", 403: "Forbidden"}.get(c or 0, ""),
                    None if c is None else t) for i, (c, t) in enumerate(zip(codes, times, strict=True))]


def obs(before: Attempt | None, attempts: list[Attempt], after: list[Attempt], control: Attempt | None = None,
        control_source: str | None = None) -> Observation:
    return Observation(before, attempts, after, control, control_source, "127.9.9.9", 0.5)


def test_attempt_of_a_literal_register() -> None:
    def ex(status: str, ref: int, t0: float, ms: float) -> Exchange:
        raw = f"SIP/2.0 {status}\r\nCall-ID: c\r\nCSeq: {ref} REGISTER\r\nContent-Length: 0\r\n\r\n".encode()
        e = Exchange(ref=ref, request=b"REGISTER ...", t0=t0)
        e.replies.append(Reply(ms, parse(raw), raw))
        return e

    a = Attempt.of(3, RegisterResult([ex("401 Unauthorized", 7, 10.0, 0.5), ex("403 Forbidden", 8, 10.001, 0.7)]))
    assert (a.n, a.code, a.reason, a.challenged, a.refs) == (3, 403, "Forbidden", True, (7, 8))
    assert a.ms is not None and abs(a.ms - 1.7) < 1e-6
    silent = Attempt.of(1, RegisterResult([Exchange(ref=9, request=b"REGISTER ...")]))
    assert silent.code is None and not silent.answered and silent.ms is None


def test_outcomes_group_runs_of_the_same_answer() -> None:
    text = outcomes(wrong([401] * 5 + [None, None]), 1.5)
    assert text == "#1-5 401 Unauthorized (0.4, 0.4, 0.4, 0.4, 0.4 ms); #6-7 no answer within 1.5 s"


def test_403_to_every_wrong_password_without_a_ban_fails() -> None:
    j = judge(obs(OK, wrong([403] * 10), [OK]), LIMITS)
    assert j.verdict is Verdict.FAIL and j.value == "none"
    assert "a 403 Forbidden to a wrong password is a refusal, not a ban" in j.detail
    assert "right password before: 200 OK in 3.0 ms" in j.detail and "#1-10 403 Forbidden" in j.detail
    assert j.metrics["wrong_codes"] == [403] * 10 and j.metrics["blocked_after"] is None


def test_403_to_everything_fails_because_the_right_password_was_refused_too() -> None:
    j = judge(obs(Attempt(0, 403, "Forbidden", 0.5), wrong([403] * 10), []), LIMITS)
    assert j.verdict is Verdict.FAIL and j.value == "right password refused (403)"
    assert "refused before any wrong one (403 Forbidden)" in j.detail
    assert "no difference between right and wrong passwords" in j.detail


def test_a_ban_needs_the_right_password_refused_consistently() -> None:
    banned = judge(obs(OK, wrong([401] * 5 + [None, None]), [NOANS] * 3, OK, "127.1.2.3"), LIMITS)
    assert banned.verdict is Verdict.PASS and banned.value == "blocked after 5 wrong passwords"
    assert "the source is banned" in banned.detail and "127.1.2.3: 200 OK" in banned.detail
    assert banned.metrics["blocked_after"] == 5 and banned.metrics["control"]["code"] == 200
    # one unanswered REGISTER, then the right password gets in: no ban
    blip = judge(obs(OK, wrong([401, 401, None, 401, 401]), [OK]), LIMITS)
    assert blip.verdict is Verdict.FAIL and "unanswered REGISTERs in between are not a ban" in blip.detail
    # refused once, then accepted: no ban either
    flaky = judge(obs(OK, wrong([401] * 4), [Attempt(0, 403, "Forbidden", 0.4), OK]), LIMITS)
    assert flaky.verdict is Verdict.FAIL and flaky.value == "none"


def test_lockout_remote_and_dead_pbx() -> None:
    locked = Attempt(0, 403, "Locked", 0.3)
    j = judge(obs(OK, wrong([401] * 4 + [403] * 2), [locked] * 3, locked, "127.1.2.3"), LIMITS)
    assert j.verdict is Verdict.PASS and j.value == "account locked after 4 wrong passwords"
    assert "anyone can lock the user out" in j.detail
    remote = judge(obs(OK, wrong([401] * 6 + [None, None]), [NOANS] * 3), LIMITS)
    assert remote.verdict is Verdict.PASS and "no control from another source" in remote.detail
    dead = judge(obs(OK, wrong([401, None, None]), [NOANS] * 3, NOANS, "127.1.2.3"), LIMITS)
    assert dead.verdict is Verdict.ERROR and dead.value is None
    assert "a ban cannot be told from a PBX that went down" in dead.detail


def test_a_throttle_needs_a_factor_and_real_milliseconds() -> None:
    grow = judge(obs(OK, wrong([401] * 6, [1.0, 50, 100, 200, 400, 800]), [Attempt(0, 200, "OK", 1600.0)]), LIMITS)
    assert grow.verdict is Verdict.PASS and grow.value == "slowed x8.0"
    assert "went from 50.0 ms to 400 ms (x8.0, +350 ms)" in grow.detail
    # loopback jitter: x4 but a fraction of a millisecond is no throttle
    jitter = judge(obs(OK, wrong([401] * 6, [0.2, 0.2, 0.2, 0.8, 0.9, 0.8]), [OK]), LIMITS)
    assert jitter.verdict is Verdict.FAIL and "below x3 and +100 ms" in jitter.detail
    assert jitter.metrics["slowdown"] == 4.0


def test_silence_and_missing_measurements_are_errors() -> None:
    silent = judge(Observation(NOANS, [], [], baseline_tries=2), LIMITS)
    assert silent.verdict is Verdict.ERROR and "answered none of 2 REGISTERs" in silent.detail
    no_before = judge(obs(NOANS, wrong([401, 401]), [OK]), LIMITS)
    assert no_before.verdict is Verdict.ERROR and "nothing to compare the wrong ones with" in no_before.detail
    cut = judge(obs(OK, wrong([401] * 3), []), LIMITS)
    assert cut.verdict is Verdict.ERROR and "not tried after them" in cut.detail
    assert judge(obs(None, [], []), LIMITS).verdict is Verdict.ERROR


def test_a_wrong_password_accepted_fails_first() -> None:
    j = judge(obs(OK, wrong([401, 200]), []), LIMITS)
    assert j.verdict is Verdict.FAIL and j.value == "wrong password accepted" and "#2 was ACCEPTED" in j.detail


def test_threshold_names_what_passes() -> None:
    assert LIMITS.threshold == ("right password works, then banned (3 right-password tries refused) or slowed "
                                "(x3 and +100 ms)")
