"""Audio steps: judge what each end of a call heard against what the other end played.

``expect_audio`` judges a whole call's recordings after it ended; ``check_audio`` restarts both ends'
references on a live call and judges that stretch. Both hand each direction to :func:`judge_direction`,
which runs the audio engine (:mod:`harness.audio`) and names its checks: the engine names them by metric
only (``mos``, ``delay``, ...), the step gives them their place, ``audio[:<call>]:<src>-><dst>:<metric>``
(a :class:`~harness.contracts.checkname.CheckName`).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.contracts.checkname import CheckName
from harness.contracts.errors import HarnessError
from harness.contracts.verdict import CheckResult
from harness.contracts.yamlsrc import Fields
from harness.scenarios.context import CallLeg, RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_call import leg_of

__all__ = ["RECORD_MARGIN_S", "audio_key", "audio_thresholds", "call_alias_of", "judge_direction", "recording_times",
           "rtp_stats"]

#: a check_audio recording holds its whole reference plus this: the path's delay and the players' start
RECORD_MARGIN_S = 0.6


@step("expect_audio")
@dataclass(frozen=True)
class ExpectAudio:
    """Judge the audio each end received against what the other end played (the audio engine).

    ``direction``: ``both`` (default), ``caller->callee`` or ``callee->caller``.
    ``echo: true``: the far end is an echo-test number (most PBXs have one; ``numbers.echo`` in the lab):
    the caller's own speech must come back, judged against what it sent, with the round-trip delay.
    Calls to a PBX's own numbers can be judged that way without a harness party at the far end.
    """

    alias: str
    direction: str
    echo: bool = False

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> ExpectAudio:
        echo = f.opt("echo", bool, False)
        direction = f.choice("direction", ("both", "caller->callee", "callee->caller"), "both")
        if echo and direction != "both":
            raise f.fail("direction", "an echo test judges what comes back to the caller; leave out 'direction'")
        return cls(scope.call(f, "call", "main"), direction, echo)

    @property
    def _call(self) -> str:
        """The call part of the check names: none for the scenario's main call."""
        return "" if self.alias == "main" else self.alias

    def run(self, ctx: RunContext) -> None:
        leg = leg_of(ctx, self.alias)
        if self.echo:
            self._echo(ctx, leg)
            return
        if leg.callee is None or leg.callee_call is None:
            ctx.check(CheckResult.error(CheckName("audio", call=self.alias),
                                        "the callee is not a party of this scenario; its received audio cannot be "
                                        "judged"))
            return
        start = leg.times.get("t_200", leg.t_invite)
        if start is not None:  # the recordings cover the call: that is when the harness had to keep time
            ctx.measured(start, leg.times.get("t_disconnected", time.monotonic()))
        directions = [(leg.caller, leg.callee, leg.callee_call), (leg.callee, leg.caller, leg.caller_call)]
        if self.direction == "caller->callee":
            directions = directions[:1]
        elif self.direction == "callee->caller":
            directions = directions[1:]
        for src, dst, dst_call in directions:
            base = CheckName("audio", call=self._call, direction=(src, dst))
            reference = ctx.scenario.parties[src].expected_audio
            received = ctx.out_dir / f"{dst}-{dst_call}.wav"
            sent = ctx.scenario.parties[dst].play
            if reference is None:
                ctx.check(CheckResult.error(base, f"party '{src}' plays nothing: no reference"))
                continue
            if not received.exists():
                ctx.check(CheckResult.error(base, f"{dst} made no recording ({received.name})"))
                continue
            src_call = leg.caller_call if src == leg.caller else leg.callee_call
            offset, planned = recording_times(ctx, src, src_call, dst, dst_call)
            judge_direction(ctx, base, received, reference, sent, rtp_stats(ctx, dst, dst_call),
                            start_offset_s=offset, expected_s=planned)

    def _echo(self, ctx: RunContext, leg: CallLeg) -> None:
        """The caller hears itself: its received audio is judged against what it played; the delay is the
        round trip (the one-way limit counts twice)."""
        base = CheckName("audio", call=self._call, subject="echo", direction=(leg.caller, leg.caller))
        reference = ctx.scenario.parties[leg.caller].expected_audio
        received = ctx.out_dir / f"{leg.caller}-{leg.caller_call}.wav"
        start = leg.times.get("t_200", leg.t_invite)
        if start is not None:
            ctx.measured(start, leg.times.get("t_disconnected", time.monotonic()))
        if not leg.answered:
            ctx.check(CheckResult.error(base, "the echo-test call was not answered"))
            return
        if reference is None:
            ctx.check(CheckResult.error(base, f"party '{leg.caller}' plays nothing: no reference"))
            return
        if not received.exists():
            ctx.check(CheckResult.error(base, f"{leg.caller} made no recording ({received.name})"))
            return
        offset, planned = recording_times(ctx, leg.caller, leg.caller_call, leg.caller, leg.caller_call)
        judge_direction(ctx, base, received, reference, None, rtp_stats(ctx, leg.caller, leg.caller_call),
                        round_trip=True, start_offset_s=offset, expected_s=planned)


@step("check_audio")
@dataclass(frozen=True)
class CheckAudio:
    """Two-way audio on call ``call`` now: both ends restart their reference and record it whole.

    Both recorders start first, then both players, so each recording holds its reference from the first
    sample; each records at least ``seconds`` and always the whole reference plus room for the delay
    (``RECORD_MARGIN_S``), so the end of the reference is judged too. The moments the recorders and
    players started are measured in the parties and passed to the audio engine: the offset is taken out
    of the delay, and a recording that ended early is told from one that was planned short.
    Checks are named ``audio:<label>:<src>-><dst>:<check>``; ``label`` defaults to the call's name.
    """

    alias: str
    seconds: float
    label: str

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> CheckAudio:
        alias = scope.call(f, "call", "main")
        return cls(alias, f.number("seconds", 0.0, low=0.0, high=120), scope.name_part(f, "label", alias))

    def run(self, ctx: RunContext) -> None:
        from harness.audio import read_wav

        leg = leg_of(ctx, self.alias)
        if not (leg.callee and leg.callee_call):
            ctx.check(CheckResult.error(CheckName("audio", call=self.label),
                                        "the far end is not a party of this scenario"))
            return
        ends = [(leg.caller, leg.caller_call), (leg.callee, leg.callee_call)]
        refs = [r for party, _ in ends if (r := ctx.scenario.parties[party].expected_audio) is not None]
        lengths = [len(x) / rate for x, rate in map(read_wav, refs)]
        seconds = max([self.seconds, *(n + RECORD_MARGIN_S for n in lengths)])
        paths, t_rec, t_play, t_stop = {}, {}, {}, {}
        for party, cid in ends:
            path = ctx.out_dir / f"{party}-{cid}-{self.label}.wav"
            t_rec[party] = float(ctx.party(party).request("record", call=cid, path=str(path))["t"])
            paths[party] = path
        for party, cid in ends:
            play = ctx.scenario.parties[party].play
            if play:
                t_play[party] = float(ctx.party(party).request("play", call=cid, wav=play)["t"])
        time.sleep(seconds)
        for party, cid in ends:
            t_stop[party] = float(ctx.party(party).request("stop_record", call=cid, path=str(paths[party]))["t"])
        for (src, _), (dst, dst_call) in ((ends[0], ends[1]), (ends[1], ends[0])):
            base = CheckName("audio", call=self.label, direction=(src, dst))
            reference = ctx.scenario.parties[src].expected_audio
            if reference is None:
                ctx.check(CheckResult.error(base, f"{src} plays nothing"))
                continue
            offset = t_rec[dst] - t_play[src] if src in t_play else None
            # no echo judgement here: the players restart at slightly different moments, so the listener's
            # own signal has no well-defined timeline in the probe (expect_audio judges echo on whole calls)
            judge_direction(ctx, base, paths[dst], reference, None, rtp_stats(ctx, dst, dst_call),
                            start_offset_s=offset, expected_s=t_stop[dst] - t_rec[dst])


# ---- one direction through the audio engine --------------------------------------------------------------
def recording_times(ctx: RunContext, src: str, src_call: str | None, dst: str,
                    dst_call: str) -> tuple[float | None, float | None]:
    """For a whole call's recording at ``dst``: when it started relative to ``src``'s first playback (both
    from the parties' own events), and how long it ran until the call ended. None where not known."""
    def first(party: str, call: str | None, kind: str) -> float | None:
        if call is None:
            return None
        ev = next((e for e in ctx.party(party).call_events(call) if e["event"] == kind), None)
        return float(ev["t"]) if ev is not None and isinstance(ev.get("t"), int | float) else None

    t_rec, t_play = first(dst, dst_call, "recording"), first(src, src_call, "playing")
    end = next((float(e["t"]) for e in ctx.party(dst).call_events(dst_call)
                if e["event"] == "call_state" and e.get("state") == "DISCONNECTED"), None)
    offset = t_rec - t_play if t_rec is not None and t_play is not None else None
    planned = end - t_rec if end is not None and t_rec is not None else None
    return offset, planned


def audio_key(base: CheckName) -> str:
    """Where a direction's analysis is kept in the scenario's ``audio`` results: ``<src>-><dst>`` for the main
    call's plain audio checks, else the whole base name (``audio:transferred:caller->agent_b``,
    ``recording:main:caller->agent``)."""
    if base.kind == "audio" and not base.call and not base.subject:
        return f"{base.source}->{base.destination}"
    return str(base)


def judge_direction(ctx: RunContext, base: CheckName, received: Path, reference: str, sent: str | None, rtp: Any,
                    only: tuple[str, ...] | None = None, round_trip: bool = False,
                    start_offset_s: float | None = None, expected_s: float | None = None) -> None:
    """Analyse one direction's received WAV against the reference its source played; add the checks.

    ``base`` names the direction (its kind, call and ``direction``); each audio check is ``base`` with the
    engine's metric. ``coverage`` says how much of the reference the recording let the engine judge, and why
    not all. ``start_offset_s``: when the recording started minus when the reference started playing
    (measured in the parties), taken out of the delay. ``expected_s``: how long the recorder was meant to
    run, which tells a recording that ended early from one planned too short. ``only`` keeps a subset of the
    audio checks (by metric). ``round_trip``: the audio went there and back (an echo test), so the one-way
    delay limit counts twice.
    """
    from harness.audio import AudioInputError, analyze, read_wav

    key = audio_key(base)
    ctx.artifacts[f"received:{base}"] = received.name  # artifact keys the report finds the WAVs by
    ctx.artifacts[f"reference:{base}"] = str(reference)
    try:
        rec, rate = read_wav(received)
        ref, ref_rate = read_wav(reference)
        own = read_wav(sent)[0] if sent else None
    except AudioInputError as exc:
        ctx.check(CheckResult.error(base, f"unusable recording: {exc}"))
        return
    if rate != ref_rate:
        ctx.check(CheckResult.error(base, f"recording at {rate} Hz, reference at {ref_rate} Hz"))
        return
    try:
        limits = audio_thresholds(ctx)
        if round_trip:
            limits = dataclasses.replace(limits, max_delay_ms=2 * limits.max_delay_ms)
        analysis = analyze(rec, ref, rate, limits, direction=f"{base.source}->{base.destination}", sent=own,
                           rtp=rtp, start_offset_s=start_offset_s, expected_s=expected_s)
    except ValueError as exc:
        ctx.check(CheckResult.error(base, f"cannot analyse: {exc}"))
        return
    ctx.audio[key] = analysis.to_dict()
    for c in analysis.checks:
        if only is not None and c.name not in only:
            continue
        ctx.check(c.named(base.with_metric(c.name)))


def audio_thresholds(ctx: RunContext) -> Any:
    """Audio thresholds: scenario ``thresholds.audio`` over target ``thresholds.audio`` over defaults
    (both were validated when their files were loaded)."""
    from harness.audio import Thresholds

    merged: dict[str, Any] = {}
    for source in (ctx.target.thresholds, ctx.scenario.thresholds):
        merged.update(source.get("audio") or {})
    return Thresholds.from_mapping(merged)


def rtp_stats(ctx: RunContext, party: str, call: str) -> Any:
    """The receiving end's RTP/RTCP figures for the E-model, or None when the party has none. What the
    party did not measure stays None (harness.audio.RtpStats): never a best-case zero."""
    from harness.audio import RtpStats

    try:
        st = ctx.party(party).stats(call)
    except HarnessError:
        return None
    if not st or not st.get("codec"):
        return None
    ctx.rtp.setdefault(call_alias_of(ctx, party, call), {})[party] = st
    return RtpStats.from_party(st)


def call_alias_of(ctx: RunContext, party: str, call: str) -> str:
    for alias, leg in ctx.calls.items():
        if (leg.caller, leg.caller_call) == (party, call) or (leg.callee, leg.callee_call) == (party, call):
            return alias
    return call
