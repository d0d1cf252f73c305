"""Hold steps: put a call on hold and take it off, and judge what the held party hears meanwhile.

``hold`` and ``resume`` judge the re-INVITE (``hold:<call>``, ``resume:<call>``); ``expect_hold_audio``
judges privacy (``hold:<call>:privacy``): the held party must never hear the holder's voice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from harness.contracts.checkname import CheckName
from harness.contracts.errors import PartyTimeout, StepFailed
from harness.contracts.verdict import CheckResult, Verdict
from harness.contracts.yamlsrc import Fields
from harness.scenarios.context import RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_call import call_of, leg_of, other_end

__all__: list[str] = []  # steps are reached through the registry


@step("hold")
@dataclass(frozen=True)
class Hold:
    """``party`` puts call ``call`` on hold (re-INVITE sendonly); the other end must see remote hold."""

    party: str
    alias: str
    resume = False

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Hold:
        return cls(scope.party(f, "party"), scope.call(f, "call", "main"))

    def run(self, ctx: RunContext) -> None:
        leg = leg_of(ctx, self.alias)
        cid = call_of(ctx, leg, self.party)
        me = ctx.party(self.party)
        mark = me.mark()
        want = "active" if self.resume else "local_hold"
        t0 = time.monotonic()
        if self.resume:
            me.resume(cid)
        else:
            me.hold(cid)
        name = CheckName("resume" if self.resume else "hold", call=self.alias)
        try:
            me.wait_event(lambda e: e["event"] == "media_state" and e.get("call") == cid and e.get("status") == want,
                          ctx.remaining(5.0), f"media state '{want}'", mark)
        except PartyTimeout:
            ctx.check(CheckResult.of(name, Verdict.FAIL, None, want, detail="the re-INVITE was not completed"))
            raise StepFailed(f"{name}: media did not become {want}") from None
        ctx.check(CheckResult.of(name, Verdict.PASS, round((time.monotonic() - t0) * 1000.0, 1), want, unit="ms"))


@step("resume")
@dataclass(frozen=True)
class Resume(Hold):
    """``party`` takes call ``call`` off hold."""

    resume = True


@step("expect_hold_audio")
@dataclass(frozen=True)
class ExpectHoldAudio:
    """While call ``call`` is on hold, ``party`` (the one held) must hear silence or music on hold,
    never the holder's voice. Records ``seconds`` and looks for the holder's reference in it, however much
    music is mixed in (:func:`harness.audio.match.voice_in_mix`): a voice found there louder than
    ``max_leak_dbov`` (-60 dBov, 34 dB under the nominal speech level) is a privacy FAIL."""

    party: str
    alias: str
    seconds: float
    max_leak_dbov: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> ExpectHoldAudio:
        return cls(scope.party(f, "party"), scope.call(f, "call", "main"),
                   f.number("seconds", 3.0, low=1.0, high=60), f.number("max_leak_dbov", -60.0, low=-120, high=0))

    def run(self, ctx: RunContext) -> None:
        from harness.audio import read_wav
        from harness.audio.match import voice_in_mix

        leg = leg_of(ctx, self.alias)
        holder, _ = other_end(leg, self.party)
        me = ctx.party(self.party)
        cid = call_of(ctx, leg, self.party)
        path = ctx.out_dir / f"{self.party}-{cid}-on-hold.wav"
        me.request("record", call=cid, path=str(path))
        time.sleep(self.seconds)
        me.request("stop_record", call=cid, path=str(path))
        ctx.artifacts[f"on_hold:{self.party}"] = path.name
        holder_audio = ctx.scenario.parties[holder].play
        rec, rate = read_wav(path)
        name = CheckName("hold", call=self.alias, metric="privacy")
        if holder_audio is None:
            ctx.check(CheckResult.error(name, f"{holder} plays nothing to look for"))
            return
        ref, _ = read_wav(holder_audio)
        v = voice_in_mix(rec, ref, rate)
        heard = ("the holder's voice" + (" under other sound" if v.mix_level_dbov > v.level_dbov + 3 else "")
                 if v.found else "silence" if v.mix_level_dbov < -55 else "music or tones on hold")
        ctx.check(CheckResult.compare(
            name, v.level_dbov, "<=", self.max_leak_dbov, "dBov",
            detail=f"{self.party} heard {heard} (level {v.mix_level_dbov:.1f} dBov; {holder}'s speech in it: "
                   + (f"{v.level_dbov:.1f} dBov, correlation {v.score:.2f}, steady in every block (t {v.t_stat:.1f})"
                      if v.found else f"not found (correlation {v.score:.2f}, t {v.t_stat:.1f})") + ")",
            metrics={"score": v.score, "t_stat": v.t_stat, "mix_level_dbov": round(v.mix_level_dbov, 2)}))
