"""IVR and queue steps: the prompt a caller hears, and which agent a call reaches.

``expect_prompt`` recognises a prompt by matching the received audio against the expected prompt WAV
(``prompt:<call>:<prompt>``); ``expect_answered_by`` follows a call into an IVR choice or a queue to the
party that answers it (``answered_by:<call>``, ``answer_time:<call>``, ``skipped:<call>:<party>``).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.contracts.checkname import CheckName
from harness.contracts.errors import HarnessError, PartyTimeout, StepFailed
from harness.contracts.verdict import CheckResult, Verdict
from harness.contracts.yamlsrc import Fields
from harness.scenarios.context import RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_call import call_of, call_state_is, leg_of

__all__: list[str] = []  # steps are reached through the registry

Event = dict[str, Any]


@step("expect_prompt")
@dataclass(frozen=True)
class ExpectPrompt:
    """``party`` must hear ``prompt`` (an audio fixture) on call ``call``: recognised by matching the
    received audio against the expected prompt WAV, no speech recognition needed."""

    party: str
    alias: str
    prompt: str
    seconds: float
    min_match: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> ExpectPrompt:
        prompt = scope.fixture(f, "prompt")
        if prompt is None:
            raise f.fail(None, "missing required field 'prompt'")
        try:  # the prompt's file name names the check
            CheckName("prompt", subject=Path(prompt).stem)
        except ValueError as exc:
            raise f.fail("prompt", str(exc)) from None
        return cls(scope.party(f, "party"), scope.call(f, "call", "main"), prompt,
                   f.number("seconds", 3.0, low=1.0, high=60), f.number("min_match", 0.6, low=0.0, high=1.0))

    def run(self, ctx: RunContext) -> None:
        from harness.audio import read_wav
        from harness.audio.match import find_in_loop

        leg = leg_of(ctx, self.alias)
        me = ctx.party(self.party)
        cid = call_of(ctx, leg, self.party)
        prompt = Path(self.prompt).stem
        name = CheckName("prompt", call=self.alias, subject=prompt)
        path = ctx.out_dir / f"{self.party}-{cid}-prompt-{prompt}.wav"
        me.request("record", call=cid, path=str(path))
        time.sleep(self.seconds)
        me.request("stop_record", call=cid, path=str(path))
        rec, rate = read_wav(path)
        ref, ref_rate = read_wav(self.prompt)
        if rate != ref_rate:
            ctx.check(CheckResult.error(name, f"prompt at {ref_rate} Hz, call at {rate} Hz"))
            return
        m = find_in_loop(rec, ref, rate, max_window_s=self.seconds)
        ctx.artifacts[f"prompt:{prompt}"] = path.name
        # the match follows the listener's jitter buffer: each jump it followed is named, with the score
        # a single lag would have given (a jump in mid-window splits that one in two)
        followed = f"; {m.jumps_text()}, {m.single_lag:.2f} at a single lag" if m.jumps else ""
        ctx.check(CheckResult.compare(
            name, m.score, ">=", self.min_match, "match",
            detail=f"heard at {m.level_dbov:.1f} dBov; best match {m.score:.2f} at {m.offset_s:.2f} s into the "
                   f"prompt{followed}",
            metrics={"offset_s": m.offset_s, "level_dbov": m.level_dbov, "judged_s": m.judged_s,
                     "single_lag": m.single_lag,
                     "jumps": [{"at_s": at, "jump_ms": ms} for at, ms in m.jumps]}))


@step("expect_answered_by")
@dataclass(frozen=True)
class ExpectAnsweredBy:
    """Call ``call`` (to an IVR choice or a queue) must reach ``party``, which answers it; the call's
    far end becomes that party. ``skipped`` parties must have been offered the call and not taken it.
    The answer time (the caller's INVITE to the agent's answer) is held to ``max_answer_ms``."""

    party: str
    alias: str
    timeout_s: float
    skipped: tuple[str, ...]
    max_answer_ms: float | None

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> ExpectAnsweredBy:
        skipped = f.opt("skipped", list, [])
        names = tuple(scope.party(f, "skipped", s) for s in skipped)
        return cls(scope.party(f, "party"), scope.call(f, "call", "main"), f.number("timeout_s", 15.0, low=0.5,
                                                                                   high=600),
                   names, f.number("max_answer_ms", None, low=1, high=600000))

    def run(self, ctx: RunContext) -> None:
        leg = leg_of(ctx, self.alias)
        since = leg.t_invite or 0.0
        me = ctx.party(self.party)
        name = CheckName("answered_by", call=self.alias)
        try:
            inc = me.wait_event(lambda e: e["event"] == "incoming" and e["t"] >= since, ctx.remaining(self.timeout_s),
                                f"call '{self.alias}' to reach {self.party}")
            ev: Event = me.wait_event(call_state_is(str(inc["call"]), "CONFIRMED", "DISCONNECTED"), ctx.remaining(5.0),
                               f"{self.party} to answer")
        except PartyTimeout:
            for p in ctx.parties.values():
                with contextlib.suppress(HarnessError):
                    p.sync()
            others = [n for n, p in ctx.parties.items() if n != self.party
                      and p.find(lambda e: e["event"] == "incoming" and e["t"] >= since)]
            ctx.check(CheckResult.of(name, Verdict.FAIL, ", ".join(others) or "nobody", self.party,
                                     detail=f"no call reached {self.party} within {self.timeout_s:.0f} s"
                                            + (f"; offered to {', '.join(others)} instead" if others else "")))
            raise StepFailed(f"call '{self.alias}' did not reach {self.party}") from None
        answered = ev["state"] == "CONFIRMED"
        ctx.check(CheckResult.of(name, Verdict.PASS if answered else Verdict.FAIL, self.party if answered else
                                 f"{self.party} ({ev.get('code')})", self.party,
                                 detail="" if answered else f"{self.party} was offered the call but it ended"))
        if not answered:
            raise StepFailed(f"{self.party} did not answer call '{self.alias}'")
        leg.callee, leg.callee_call = self.party, str(inc["call"])
        answer_ms = round((float(ev["t"]) - since) * 1000.0, 1) if since else None
        ctx.extra.setdefault("answer_ms", {})[self.alias] = answer_ms
        ctx.check(CheckResult.compare(CheckName("answer_time", call=self.alias), answer_ms, "<=",
                                      float(ctx.threshold("answer_time_ms", self.max_answer_ms)), "ms",
                                      detail=f"the caller's INVITE -> {self.party} answered"))
        for other in self.skipped:
            ctx.party(other).sync()
            offered = ctx.party(other).find(lambda e: e["event"] == "incoming" and e["t"] >= since)
            took = offered and ctx.party(other).find(call_state_is(str(offered["call"]), "CONFIRMED"))
            ok = bool(offered) and not took
            ctx.check(CheckResult.of(CheckName("skipped", call=self.alias, subject=other),
                                     Verdict.PASS if ok else Verdict.FAIL,
                                     "offered, not taken" if ok else ("took the call" if took else "never offered"),
                                     "offered, not taken"))
