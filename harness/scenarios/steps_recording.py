"""The ``expect_recording`` step: the PBX's own recording of a call, found, as long as the call, and
holding both directions' reference audio, aligned.

Checks are ``recording:<call>:found``, ``:duration``, ``:alignment``, and the audio engine's checks of
each direction, ``recording:<call>:<src>-><dst>:<metric>``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from harness.contracts.checkname import CheckName
from harness.contracts.errors import HarnessError
from harness.contracts.verdict import CheckResult, Verdict
from harness.contracts.yamlsrc import Fields
from harness.scenarios.context import RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_audio import audio_key, judge_direction
from harness.scenarios.steps_call import leg_of

__all__: list[str] = []  # steps are reached through the registry

#: the audio checks a PBX recording is held to (it has no jitter buffer of its own to judge)
RECORDING_CHECKS = ("audio_present", "reference_match", "coverage", "dropouts", "mos")


@step("expect_recording")
@dataclass(frozen=True)
class ExpectRecording:
    """After call ``call`` ended, the PBX's own recording must exist, last as long as the call, and hold
    both directions' reference audio, aligned. Found through the target profile's ``recordings``:
    a directory (rtpengine pcaps or WAVs, ``{call_id}`` in the glob) or an HTTP URL template."""

    alias: str
    wait_s: float | None
    max_duration_diff_s: float
    max_misalignment_ms: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> ExpectRecording:
        return cls(scope.call(f, "call", "main"), f.number("wait_s", None, low=0, high=3600),
                   f.number("max_duration_diff_s", 1.5, low=0, high=600),
                   f.number("max_misalignment_ms", 250.0, low=0, high=10000))

    def run(self, ctx: RunContext) -> None:
        from harness.scenarios.pbx_recording import fetch_recording

        leg = leg_of(ctx, self.alias)
        name = CheckName("recording", call=self.alias)
        found = name.with_metric("found")
        source = ctx.target.recordings
        if source is None:
            ctx.check(CheckResult.error(found, "the target profile has no 'recordings' section"))
            return
        if not leg.sip_call_id:
            ctx.check(CheckResult.error(found, "the call has no SIP Call-ID (it never started)"))
            return
        wait = self.wait_s if self.wait_s is not None else source.wait_s
        try:
            rec = fetch_recording(source, leg.sip_call_id, ctx.out_dir, f"pbx-{self.alias}", wait)
        except HarnessError as exc:
            ctx.check(CheckResult.of(found, Verdict.FAIL, None, "a recording", detail=str(exc)))
            return
        start = leg.times.get("t_200", leg.t_invite)
        if start is not None:  # the PBX recorded the whole call
            ctx.measured(start, leg.times.get("t_disconnected", time.monotonic()))
        shown = rec.mix or rec.dir1 or rec.dir2
        if shown is not None:
            ctx.artifacts[f"pbx_recording:{self.alias}"] = shown.name
        ctx.check(CheckResult.of(found, Verdict.PASS, rec.source_name, "a recording",
                                 detail=f"{rec.kind} for Call-ID {leg.sip_call_id}"))
        call_s = leg.timings().get("duration_s")
        diff = abs(rec.duration_s - call_s) if call_s is not None else None
        ctx.check(CheckResult.compare(name.with_metric("duration"), None if diff is None else round(diff, 2), "<=",
                                      self.max_duration_diff_s, "s",
                                      detail=f"recording {rec.duration_s:.2f} s, call {call_s} s"))
        delays = {}
        for src, path in ((leg.caller, rec.dir1), (leg.callee, rec.dir2)):
            if src is None or path is None:
                continue
            reference = ctx.scenario.parties[src].expected_audio
            if reference is None:
                continue
            dst = leg.callee if src == leg.caller else leg.caller
            # a callee that is no party of the scenario (an IVR, a number) has been named "None" all along
            base = CheckName("recording", call=self.alias, direction=(src, str(dst)))
            before = len(ctx.checks)
            judge_direction(ctx, base, path, reference, None, None, only=RECORDING_CHECKS)
            if len(ctx.checks) > before:
                delays[src] = ctx.audio.get(audio_key(base), {}).get("delay_ms")
        if len(delays) == 2 and None not in delays.values():
            d1, d2 = (float(v) for v in delays.values())
            # where each side's speech sits on the recording's clock: its WAV's start plus its delay
            skew = round(abs(d1 - (d2 + rec.start_skew_ms)), 1)
            ctx.check(CheckResult.compare(name.with_metric("alignment"), skew, "<=", self.max_misalignment_ms, "ms",
                                          detail="how far apart the two directions sit in the recording, "
                                                 "against the live call"))
