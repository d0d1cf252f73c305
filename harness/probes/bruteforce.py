"""Brute-force protection, judged only on positive evidence.

A password-guessing run is four measurements (:class:`Observation`): the right password before the
attack, the wrong ones in a row, the right password again from the same source right after, and,
when a ban shows, a control (the right password from another source). :func:`judge` turns them into a
verdict with the figures behind it::

    obs = Observation(right_before=Attempt.of(0, reg), wrong=[...], right_after=[...], control=...)
    j = judge(obs, Limits(confirm=3, slowdown_factor=3.0, slowdown_min_ms=100.0, timeout_s=1.5))
    j.verdict, j.value, j.detail, j.metrics

What counts:

* a **ban**: after the wrong passwords the right one is refused or unanswered from the attacking
  source ``confirm`` times in a row (one unanswered REGISTER is a lost packet, not a ban) while it
  worked before the attack; the control tells a ban of the source (the control gets in) from a
  locked account (the control is refused too, also PASS: guessing stops, though anyone can now lock
  the user out) and from a PBX that stopped answering everyone (no verdict: ERROR);
* a **throttle**: answers to the wrong passwords slow down by ``slowdown_factor`` and by at least
  ``slowdown_min_ms`` (a factor alone would call sub-millisecond jitter on loopback a throttle).

A 403 to a wrong password is a refusal, not a ban: when the right password still gets in right
after, the attacker's guesses are still being checked (FAIL). A PBX that refuses the right password
before any wrong one shows no difference between right and wrong (FAIL, the profile's password may be
wrong); one that answers nothing cannot be judged (ERROR).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from harness.contracts.verdict import Verdict
from harness.probes.probe_uac import RegisterResult

__all__ = ["Attempt", "Judgement", "Limits", "Observation", "judge", "outcomes", "outcomes_plain"]


@dataclass(frozen=True)
class Attempt:
    """One REGISTER with a password (challenge round included): how it ended, and how long it took."""

    n: int  #: 1.. for the wrong passwords in order; 0 for right-password probes
    code: int | None  #: the final status of its last transaction; None: no final answer came
    reason: str = ""
    ms: float | None = None  #: first send to the last final answer
    challenged: bool = False
    refs: tuple[int, ...] = ()

    @classmethod
    def of(cls, n: int, reg: RegisterResult) -> Attempt:
        last = reg.exchanges[-1].final if reg.exchanges else None
        return cls(n, reg.code, last.msg.reason if last is not None else "", reg.total_ms, reg.challenged,
                   tuple(reg.refs))

    @property
    def answered(self) -> bool:
        return self.code is not None

    @property
    def accepted(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    def show(self, *, reason: bool = False) -> str:
        if self.code is None:
            return "no answer"
        return f"{self.code} {self.reason}".strip() if reason else str(self.code)

    def timed(self, timeout_s: float) -> str:
        if self.code is None:
            return f"no answer within {timeout_s:g} s"
        return f"{self.show(reason=True)} in {_ms(self.ms)}"


@dataclass
class Observation:
    right_before: Attempt | None = None
    wrong: list[Attempt] = field(default_factory=list)
    right_after: list[Attempt] = field(default_factory=list)
    control: Attempt | None = None
    control_source: str | None = None  #: None: no other source to try from (a PBX not on loopback)
    source: str | None = None
    elapsed_s: float = 0.0  #: the wrong passwords, first send to last answer
    baseline_tries: int = 1  #: right-password tries before the attack (a second one when the first went unanswered)


@dataclass(frozen=True)
class Limits:
    confirm: int = 3
    slowdown_factor: float = 3.0
    slowdown_min_ms: float = 100.0
    timeout_s: float = 1.5

    @property
    def threshold(self) -> str:
        return (f"right password works, then banned ({self.confirm} right-password tries refused) or slowed "
                f"(x{self.slowdown_factor:g} and +{self.slowdown_min_ms:g} ms)")


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    value: str | None
    detail: str
    metrics: dict[str, Any]


def _ms(v: float | None) -> str:
    if v is None:
        return "?"
    return f"{v:.0f} ms" if v >= 100 else f"{v:.1f} ms"


def outcomes(attempts: list[Attempt], timeout_s: float) -> str:
    """``#1-5 401 (0.4, 0.3, 0.3, 0.3, 0.3 ms); #6-7 no answer within 1.5 s``: runs of the same answer."""
    parts: list[str] = []
    i = 0
    while i < len(attempts):
        j = i
        while j + 1 < len(attempts) and attempts[j + 1].code == attempts[i].code:
            j += 1
        run = attempts[i:j + 1]
        label = f"#{run[0].n}" if len(run) == 1 else f"#{run[0].n}-{run[-1].n}"
        first = run[0]
        if first.code is None:
            parts.append(f"{label} no answer within {timeout_s:g} s")
        else:
            times = ", ".join(f"{a.ms:.1f}" if a.ms is not None else "?" for a in run)
            parts.append(f"{label} {first.show(reason=True)} ({times} ms)")
        i = j + 1
    return "; ".join(parts) or "none"


def outcomes_plain(attempts: list[Attempt], timeout_s: float) -> str:
    """The right-password tries after the attack: ``no answer within 1.5 s x3`` or ``403 Forbidden, 200 OK``."""
    shown = [a.timed(timeout_s) for a in attempts]
    if len(set(shown)) == 1 and len(shown) > 1 and attempts[0].code is None:
        return f"{shown[0]} (x{len(shown)})"
    return ", ".join(shown)


def _slowdown(wrong: list[Attempt]) -> tuple[float, float, float, float]:
    """(factor, added ms, median of the first answers, median of the last) over the answered attempts."""
    times = [a.ms for a in wrong if a.ms is not None]
    k = min(3, len(times) // 2)
    if not k:
        return 1.0, 0.0, 0.0, 0.0
    before, after = statistics.median(times[:k]), statistics.median(times[-k:])
    return after / max(0.001, before), after - before, before, after


def _change(wrong: list[Attempt]) -> Attempt | None:
    """The first wrong attempt answered differently from the first one (or not at all)."""
    if not wrong:
        return None
    first = wrong[0]
    if first.code is None:
        return first
    return next((a for a in wrong[1:] if a.code != first.code), None)


def _metrics(obs: Observation, limits: Limits, factor: float, added: float) -> dict[str, Any]:
    def brief(a: Attempt | None) -> dict[str, Any] | None:
        return None if a is None else {"code": a.code, "ms": a.ms}

    return {"source": obs.source or "this machine", "attempts": len(obs.wrong),
            "wrong_codes": [a.code for a in obs.wrong], "wrong_ms": [a.ms for a in obs.wrong],
            "right_before": brief(obs.right_before), "right_after": [brief(a) for a in obs.right_after],
            "control": None if obs.control is None else {**(brief(obs.control) or {}), "source": obs.control_source},
            "slowdown": round(factor, 2), "added_ms": round(added, 1), "blocked_after": None,
            "confirm": limits.confirm, "slowdown_factor": limits.slowdown_factor,
            "slowdown_min_ms": limits.slowdown_min_ms, "elapsed_s": round(obs.elapsed_s, 3)}


def judge(obs: Observation, limits: Limits) -> Judgement:
    t = limits.timeout_s
    factor, added, before_ms, after_ms = _slowdown(obs.wrong)
    change = _change(obs.wrong)
    answered = [a for a in obs.wrong if a.answered]
    blocked_after = (len([a for a in obs.wrong if a.n < change.n]) if change is not None else None)
    metrics = _metrics(obs, limits, factor, added)
    wrongs = f"wrong passwords: {outcomes(obs.wrong, t)}"

    def result(verdict: Verdict, value: str | None, detail: str, blocked: int | None = None) -> Judgement:
        if blocked is not None:
            metrics["blocked_after"] = blocked
        return Judgement(verdict, value, detail, metrics)

    rb = obs.right_before
    if rb is None:
        return result(Verdict.ERROR, None, "the right password was not tried before the attack: nothing to compare")
    accepted = next((a for a in obs.wrong if a.accepted), None)
    if accepted is not None:
        return result(Verdict.FAIL, "wrong password accepted",
                      f"wrong password #{accepted.n} was ACCEPTED ({accepted.show(reason=True)}): the PBX does not "
                      "check passwords (the binding it made was removed)")
    if not rb.answered:
        tries = obs.baseline_tries + len(obs.wrong) + len(obs.right_after)
        if not answered and not any(a.answered for a in obs.right_after):
            return result(Verdict.ERROR, None,
                          f"the PBX answered none of {tries} REGISTER{'s' if tries > 1 else ''} (the right password "
                          f"before the attack, each unanswered within {t:g} s): nothing to judge")
        return result(Verdict.ERROR, None,
                      f"the right password before the attack got no answer within {t:g} s: without a login that "
                      f"works there is nothing to compare the wrong ones with ({wrongs})")
    if not rb.accepted:
        same = bool(answered) and all(a.code == rb.code for a in answered)
        return result(Verdict.FAIL, f"right password refused ({rb.code})",
                      f"the right password was refused before any wrong one ({rb.show(reason=True)}); {wrongs}: "
                      + ("no difference between right and wrong passwords, so " if same else "")
                      + "refusals show no ban (a PBX that refuses everyone protects nothing; is the profile's "
                      "password right?)")
    if not obs.wrong:
        return result(Verdict.ERROR, None, "no wrong password was tried (the step ran out of time or packets)")
    if not obs.right_after:
        return result(Verdict.ERROR, None, f"{wrongs}; the right password was not tried after them (the step ran "
                      "out of time or packets): no ban can be shown")

    pre = f"right password before: {rb.timed(t)}; {wrongs}"
    after = obs.right_after
    banned = len(after) >= limits.confirm and not any(a.accepted for a in after)
    slowed = factor >= limits.slowdown_factor and added >= limits.slowdown_min_ms
    slow_text = (f"answers to wrong passwords went from {_ms(before_ms)} to {_ms(after_ms)} "
                 f"(x{factor:.1f}, +{added:.0f} ms)")
    after_text = f"the right password then, from the same source: {outcomes_plain(after, t)}"
    if banned:
        count = (f"after {blocked_after} wrong passwords" if change is not None and blocked_after is not None
                 else f"within {len(obs.wrong)} wrong passwords")
        n_blocked = blocked_after if change is not None else None
        ctl = obs.control
        if ctl is None:
            return result(Verdict.PASS, f"blocked {count}",
                          f"{pre}; {after_text} ({len(after)} of {len(after)} refused or unanswered: banned); "
                          "no control from another source (the PBX is not on loopback and this machine has one "
                          "address)" + (f"; {slow_text}" if slowed else ""), n_blocked)
        ctl_text = f"control: the right password from {obs.control_source}: {ctl.timed(t)}"
        if not ctl.answered:
            return result(Verdict.ERROR, None,
                          f"{pre}; {after_text}; {ctl_text}: the PBX stopped answering everyone, so a ban cannot "
                          "be told from a PBX that went down")
        if ctl.accepted:
            return result(Verdict.PASS, f"blocked {count}",
                          f"{pre}; {after_text} ({len(after)} of {len(after)} refused or unanswered) while the "
                          f"{ctl_text}: the source is banned" + (f"; {slow_text}" if slowed else ""), n_blocked)
        return result(Verdict.PASS, f"account locked {count}",
                      f"{pre}; {after_text}; {ctl_text} too: the account is locked, not the source (guessing "
                      "stops, but anyone can lock the user out)", n_blocked)
    if slowed:
        return result(Verdict.PASS, f"slowed x{factor:.1f}", f"{pre}; {slow_text}; {after_text}")
    if any(a.accepted for a in after):
        why = []
        if any(not a.answered for a in obs.wrong) or any(not a.answered for a in after):
            why.append("unanswered REGISTERs in between are not a ban: the right password still got in")
        refused = [a for a in obs.wrong if a.answered and a.code not in (401, 407)]
        if refused:
            why.append(f"a {refused[0].show(reason=True)} to a wrong password is a refusal, not a ban")
        if not why:
            why.append("every guess was answered and checked")
        return result(Verdict.FAIL, "none",
                      f"{pre}; {after_text}: {'; '.join(why)}"
                      + (f"; answers went from {_ms(before_ms)} to {_ms(after_ms)} (x{factor:.1f}: below "
                         f"x{limits.slowdown_factor:g} and +{limits.slowdown_min_ms:g} ms)" if answered else ""))
    return result(Verdict.ERROR, None, f"{pre}; {after_text}: too few right-password tries to tell")

