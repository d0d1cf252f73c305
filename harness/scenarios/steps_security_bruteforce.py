"""The ``brute_force`` step: does the PBX stop a password guesser? PASS only on positive evidence.

::

    - brute_force: {account: caller, attempts: 10, confirm: 3}

Four measurements, all from one source of the step's own (on loopback a 127.x.y.z address, so a ban
hits only this step; against a remote PBX the ban hits this machine: put the step last):

1. the right password (a REGISTER with ``Expires: 0``, so no binding is left): it must work;
2. ``attempts`` wrong passwords in a row, each timed (stops early on two unanswered in a row);
3. the right password again, up to ``confirm`` times: refused or unanswered every time is a ban;
4. when a ban shows, the right password from another source (a control): it tells a banned source
   from a locked account and from a PBX that stopped answering everyone.

The judgement (:mod:`harness.probes.bruteforce`) reports the figures: answers and times per attempt,
where the answers changed, what the right password got during the ban and what the control got.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from harness.contracts.target import Account
from harness.contracts.yamlsrc import Fields
from harness.probes import ProbeConnectError, ProbeSession, SipProbe
from harness.probes.bruteforce import Attempt, Limits, Observation, judge
from harness.probes.probe_uac import register
from harness.scenarios.context import RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_probe import ProbeStep, probe_session
from harness.scenarios.steps_security_base import judged, need_account, open_probe, security_check, wrong_password

__all__ = ["BruteForce"]

NAME = security_check("brute_force", "protection")


@step("brute_force")
@dataclass(frozen=True)
class BruteForce(ProbeStep):
    """``attempts`` wrong passwords for ``account`` between right ones: is the source banned, or slowed?

    ``confirm`` right-password tries after the attack must all be refused or unanswered to count as a
    ban; a throttle must slow the answers by ``slowdown_factor`` and by ``slowdown_min_ms`` at least.
    """

    account: str | None
    attempts: int
    slowdown_factor: float
    timeout_s: float
    confirm: int = 3
    slowdown_min_ms: float = 100.0

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> BruteForce:
        return cls(f.opt("account", str, None), f.integer("attempts", 10, low=2, high=50),
                   f.number("slowdown_factor", 3.0, low=1.1, high=1000),
                   f.number("timeout_ms", 1500, low=100, high=10000) / 1000.0,
                   f.integer("confirm", 3, low=2, high=5),
                   f.number("slowdown_min_ms", 100.0, low=1, high=10000))

    @property
    def limits(self) -> Limits:
        return Limits(self.confirm, self.slowdown_factor, self.slowdown_min_ms, self.timeout_s)

    def run(self, ctx: RunContext) -> None:
        acc = need_account(ctx, self.account, NAME, "high")
        if acc is None:
            return
        packets = (self.attempts + self.confirm + 2) * 2 * 4
        with probe_session(ctx, packets=packets, timeout_s=self.timeout_s, isolated=True) as ps:
            probe = open_probe(ctx, ps, NAME, "high")
            if probe is None:
                return
            obs = self.observe(ctx, ps, probe, acc)
        j = judge(obs, self.limits)
        refs = [r for a in [obs.right_before, *obs.wrong, *obs.right_after, obs.control] if a is not None
                for r in a.refs]
        ctx.check(judged(NAME, j.verdict, j.value, self.limits.threshold, "high", f"{acc.name}: {j.detail}", refs,
                         **j.metrics))

    def _right(self, ctx: RunContext, probe: SipProbe, acc: Account, note: str) -> Attempt:
        """The right password, as a REGISTER that removes nothing but its own (absent) binding."""
        reg = register(probe, acc.username, acc.password.reveal(), auth_user=acc.auth_username, expires=0,
                       note=note, timeout=ctx.remaining(self.timeout_s))
        return Attempt.of(0, reg)

    def observe(self, ctx: RunContext, ps: ProbeSession, probe: SipProbe, acc: Account) -> Observation:
        obs = Observation(source=ps.source)
        obs.right_before = self._right(ctx, probe, acc, "brute force: the right password before the attack")
        if not obs.right_before.answered:  # a lost packet is no verdict: once more, then give up
            obs.right_before = self._right(ctx, probe, acc, "brute force: the right password before the attack "
                                           "(again: the first went unanswered)")
            obs.baseline_tries = 2
            if not obs.right_before.answered:
                return obs
        t0 = time.monotonic()
        silent = 0
        for i in range(1, self.attempts + 1):
            if time.monotonic() > ctx.deadline:
                break
            wrong = wrong_password()
            reg = register(probe, acc.username, wrong, auth_user=acc.auth_username,
                           note=f"brute force {i}/{self.attempts}", timeout=ctx.remaining(self.timeout_s))
            attempt = Attempt.of(i, reg)
            obs.wrong.append(attempt)
            if attempt.accepted:  # take the binding away again
                register(probe, acc.username, wrong, auth_user=acc.auth_username, expires=0,
                         note="remove the binding the wrong password made", timeout=ctx.remaining(self.timeout_s))
                break
            silent = 0 if attempt.answered else silent + 1
            if silent >= 2:  # unanswered twice in a row: see whether the right password still gets in
                break
        obs.elapsed_s = time.monotonic() - t0
        if any(a.accepted for a in obs.wrong) or not obs.right_before.accepted:
            return obs  # judged already: a wrong password got in, or the right one never did
        for k in range(1, self.confirm + 1):
            if time.monotonic() > ctx.deadline:
                break
            right = self._right(ctx, probe, acc, f"brute force: the right password after the attack ({k})")
            obs.right_after.append(right)
            if right.accepted:
                break
        if len(obs.right_after) >= self.confirm and not any(a.accepted for a in obs.right_after):
            self._control(ctx, ps, acc, obs)
        return obs

    def _control(self, ctx: RunContext, ps: ProbeSession, acc: Account, obs: Observation) -> None:
        """The right password from another source: only on loopback, where that source is ours to pick."""
        if ps.source is None:
            return
        other = ps.source
        for _ in range(5):
            other = ps.scope.isolated_source() or ps.source
            if other != ps.source:
                break
        try:
            control = ps.probe(source=other)
        except ProbeConnectError as exc:
            obs.control_source = other
            obs.control = Attempt(0, None, exc.reason)
            return
        obs.control_source = other
        obs.control = self._right(ctx, control, acc, f"brute force: control, the right password from {other}")
