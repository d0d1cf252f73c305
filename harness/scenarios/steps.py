"""The step types a scenario can use. Each parses its YAML at load time and acts at run time.

Action steps (``call``, ``hangup``, ``hold``, ...) add a check for their own outcome and raise
:class:`StepFailed` when the scenario cannot sensibly go on. ``expect_*`` steps only judge.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.contracts.errors import HarnessError, PartyTimeout, StepFailed
from harness.contracts.verdict import CheckResult, Verdict
from harness.contracts.yamlsrc import Fields
from harness.scenarios.context import CallLeg, RunContext
from harness.scenarios.registry import ParseScope, step

__all__: list[str] = []  # steps are reached through the registry

Event = dict[str, Any]
EXPECT_OUTCOMES = ("answer", "busy", "reject", "no_answer", "not_found", "any_failure")


def call_state_is(call: str, *states: str) -> Any:
    return lambda e: e["event"] == "call_state" and e.get("call") == call and e.get("state") in states


@step("call")
@dataclass(frozen=True)
class Call:
    """Place a call from a party to a party, a profile number, or a URI, and wait for the outcome.

    ``expect`` is what should happen: ``answer`` (default), ``busy`` (486/600), ``reject`` (403/480/603),
    ``no_answer`` (no final answer within ``timeout_s``), ``not_found`` (404/484), ``any_failure``,
    or a SIP status code.
    """

    frm: str
    to: str
    alias: str
    expect: str
    expect_code: int | None
    timeout_s: float | None

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Call:
        frm = scope.party(f, "from")
        to: str | int = f.req("to", (str, int))
        alias = f.opt("as", str, "main")
        if alias in scope.calls:
            raise f.fail("as", f"call name '{alias}' is already used by an earlier step")
        scope.calls.add(alias)
        raw = f.opt("expect", (str, int), "answer")
        code = None
        if isinstance(raw, int):
            if not 200 <= raw <= 699:
                raise f.fail("expect", f"SIP status {raw} is out of range 200-699")
            code, raw = raw, "code"
        elif raw not in EXPECT_OUTCOMES:
            raise f.fail("expect", f"must be a SIP status or one of {', '.join(EXPECT_OUTCOMES)}, got {raw!r}")
        timeout = f.number("timeout_s", None, low=0.5, high=600)
        return cls(frm, str(to), alias, raw, code, timeout)

    def run(self, ctx: RunContext) -> None:
        caller = ctx.party(self.frm)
        callee_name = self.to if self.to in ctx.scenario.parties else None
        callee = ctx.party(callee_name) if callee_name else None
        callee_mark = callee.mark() if callee else 0
        caller_mark = caller.mark()
        uri = ctx.dial_uri(self.to)
        spec = ctx.scenario.parties[self.frm]
        res = caller.call(ctx.account_of(self.frm), uri, play=spec.play, loop=spec.loop,
                          record=ctx.record_path(self.frm) if spec.record else None, hold_mute=spec.hold_mute,
                          hold_music=spec.hold_music)
        leg = CallLeg(self.alias, self.frm, res["call"], uri, callee=callee_name, t_invite=res["t_invite"])
        ctx.calls[self.alias] = leg
        ctx.log(f"  {self.frm} calls {uri} as '{self.alias}'")
        timeout = ctx.remaining(self.timeout_s or float(ctx.threshold("call_timeout_s")))
        try:
            ev = caller.wait_event(call_state_is(leg.caller_call, "CONFIRMED", "DISCONNECTED"), timeout,
                                   f"the answer to call '{self.alias}'", caller_mark)
        except PartyTimeout:
            ev = None
        if ev is None:
            leg.times.update(_latest_times(caller.call_events(leg.caller_call)))
            if self.expect == "no_answer":
                caller.hangup(leg.caller_call)  # CANCEL
                ctx.check(CheckResult(f"call:{self.alias}", Verdict.PASS, "no answer", "no answer",
                                      detail=f"no final response within {timeout:.1f} s, as expected"))
                return
            ctx.check(CheckResult(f"call:{self.alias}", Verdict.FAIL, "no answer", self._wanted(),
                                  detail=f"no final response within {timeout:.1f} s"))
            caller.hangup(leg.caller_call)
            raise StepFailed(f"call '{self.alias}' was not answered within {timeout:.1f} s")
        leg.times.update(ev.get("times", {}))
        leg.sip_call_id = ev.get("sip_call_id", "")
        leg.final_code = int(ev.get("code", 0))
        leg.answered = ev["state"] == "CONFIRMED"
        if leg.answered and callee is not None:
            inc = callee.wait_event(lambda e: e["event"] == "incoming", ctx.remaining(5.0),
                                    f"the incoming side of call '{self.alias}'", callee_mark)
            same = callee.find(lambda e: e["event"] == "incoming" and e.get("sip_call_id") == leg.sip_call_id,
                               callee_mark)
            leg.callee_call = (same or inc)["call"]  # a B2BUA PBX changes the Call-ID: take the first
            callee.wait_event(call_state_is(leg.callee_call, "CONFIRMED", "DISCONNECTED"), ctx.remaining(5.0),
                              f"the callee side of call '{self.alias}' to be confirmed", callee_mark)
        ok, outcome = self._judge(leg)
        ctx.check(CheckResult(f"call:{self.alias}", Verdict.PASS if ok else Verdict.FAIL, leg.final_code,
                              self._wanted(), unit="SIP", detail=outcome))
        if not ok:
            if leg.answered:
                caller.hangup(leg.caller_call)
            raise StepFailed(f"call '{self.alias}': {outcome}")
        if not leg.answered:
            leg.ended = True

    def _wanted(self) -> str:
        return str(self.expect_code) if self.expect == "code" else self.expect

    def _judge(self, leg: CallLeg) -> tuple[bool, str]:
        code = leg.final_code or 0
        outcome = "answered" if leg.answered else f"ended with {code}"
        match self.expect:
            case "answer":
                return leg.answered, outcome
            case "busy":
                return code in (486, 600), outcome
            case "reject":
                return code in (403, 480, 603), outcome
            case "not_found":
                return code in (404, 484), outcome
            case "any_failure":
                return not leg.answered, outcome
            case "no_answer":
                return False, outcome + " (expected no answer)"
            case _:
                return code == self.expect_code, outcome


def event_for(kind: str, call: str) -> Callable[[Event], bool]:
    return lambda e: e["event"] == kind and e.get("call") == call


def _latest_times(events: list[Event]) -> dict[str, float]:
    times: dict[str, float] = {}
    for e in events:
        times.update(e.get("times", {}))
    return times


def leg_of(ctx: RunContext, alias: str) -> CallLeg:
    return ctx.calls[alias]


def call_of(ctx: RunContext, leg: CallLeg, party: str) -> str:
    if party == leg.caller:
        return leg.caller_call
    if party == leg.callee and leg.callee_call:
        return leg.callee_call
    raise StepFailed(f"party '{party}' is not on call '{leg.alias}'")


@step("talk")
@dataclass(frozen=True)
class Talk:
    """Let the call(s) run for ``seconds`` while the parties play and record."""

    seconds: float
    shorthand = "seconds"

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Talk:
        return cls(f.number("seconds", None, low=0, high=3600, required=True))

    def run(self, ctx: RunContext) -> None:
        end = time.monotonic() + min(self.seconds, max(0.0, ctx.deadline - time.monotonic()))
        while time.monotonic() < end:
            for name, p in ctx.parties.items():
                if not p.alive:
                    p.wait_event(lambda e: False, 0.01, f"talk time (party {name} is gone)")
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))


@step("wait")
@dataclass(frozen=True)
class Wait(Talk):
    """Alias of ``talk``."""


@step("hangup")
@dataclass(frozen=True)
class Hangup:
    """``party`` ends call ``call`` (BYE); both ends must see the call end."""

    party: str
    alias: str

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Hangup:
        return cls(scope.party(f, "party"), scope.call(f, "call", "main"))

    def run(self, ctx: RunContext) -> None:
        leg = leg_of(ctx, self.alias)
        if leg.ended:
            return
        ends = [(leg.caller, leg.caller_call)]
        if leg.callee and leg.callee_call:
            ends.append((leg.callee, leg.callee_call))
        marks = {name: ctx.party(name).mark() for name, _ in ends}
        own = call_of(ctx, leg, self.party)
        t0 = time.monotonic()
        ctx.party(self.party).hangup(own)
        missing = []
        for name, cid in ends:
            try:
                ev = ctx.party(name).wait_event(call_state_is(cid, "DISCONNECTED"),
                                                ctx.remaining(float(ctx.threshold("hangup_timeout_s"))),
                                                f"call '{self.alias}' to end", 0)
                if name == leg.caller:
                    leg.times.update(ev.get("times", {}))
            except PartyTimeout:
                missing.append(name)
        leg.ended = True
        elapsed = round((time.monotonic() - t0) * 1000.0, 1)
        for name, cid in ends:  # the recorders close just after DISCONNECTED
            p = ctx.party(name)
            if p.find(event_for("recording", cid)):
                with contextlib.suppress(PartyTimeout):
                    p.wait_event(event_for("recording_closed", cid), ctx.remaining(3.0), "the recording to close",
                                 marks[name])
        ctx.check(CheckResult(f"hangup:{self.alias}", Verdict.FAIL if missing else Verdict.PASS,
                              elapsed if not missing else None, "both ends released", unit="ms",
                              detail=f"still up at: {', '.join(missing)}" if missing else ""))


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
        name = f"{'resume' if self.resume else 'hold'}:{self.alias}"
        try:
            me.wait_event(lambda e: e["event"] == "media_state" and e.get("call") == cid and e.get("status") == want,
                          ctx.remaining(5.0), f"media state '{want}'", mark)
        except PartyTimeout:
            ctx.check(CheckResult(name, Verdict.FAIL, None, want, detail="the re-INVITE was not completed"))
            raise StepFailed(f"{name}: media did not become {want}") from None
        ctx.check(CheckResult(name, Verdict.PASS, round((time.monotonic() - t0) * 1000.0, 1), want, unit="ms"))


@step("resume")
@dataclass(frozen=True)
class Resume(Hold):
    """``party`` takes call ``call`` off hold."""

    resume = True


@step("dtmf")
@dataclass(frozen=True)
class Dtmf:
    """``party`` sends RFC 2833 DTMF ``digits`` on call ``call``."""

    party: str
    alias: str
    digits: str
    gap_ms: int

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Dtmf:
        digits = str(f.req("digits", (str, int)))
        if any(ch not in "0123456789*#ABCD" for ch in digits):
            raise f.fail("digits", f"DTMF digits must be 0-9, *, #, A-D; got {digits!r}")
        return cls(scope.party(f, "party"), scope.call(f, "call", "main"), digits,
                   f.integer("gap_ms", 250, low=0, high=10000))

    def run(self, ctx: RunContext) -> None:
        leg = leg_of(ctx, self.alias)
        me = ctx.party(self.party)
        cid = call_of(ctx, leg, self.party)
        for d in self.digits:
            me.dtmf(cid, d)
            time.sleep(self.gap_ms / 1000.0)


@step("expect_dtmf")
@dataclass(frozen=True)
class ExpectDtmf:
    """``party`` must receive exactly ``digits`` on call ``call`` within ``timeout_s``."""

    party: str
    alias: str
    digits: str
    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> ExpectDtmf:
        return cls(scope.party(f, "party"), scope.call(f, "call", "main"), str(f.req("digits", (str, int))),
                   f.number("timeout_s", 5.0, low=0.1, high=120))

    def run(self, ctx: RunContext) -> None:
        leg = leg_of(ctx, self.alias)
        me = ctx.party(self.party)
        cid = call_of(ctx, leg, self.party)
        deadline = time.monotonic() + self.timeout_s

        def got() -> str:
            return "".join(e["digit"] for e in me.call_events(cid) if e["event"] == "dtmf")

        while time.monotonic() < deadline and len(got()) < len(self.digits):
            time.sleep(0.05)
        received = got()
        ctx.check(CheckResult(f"dtmf:{self.party}:{self.alias}",
                              Verdict.PASS if received == self.digits else Verdict.FAIL,
                              received, self.digits, op="==", unit="digits"))


@step("expect_setup")
@dataclass(frozen=True)
class ExpectSetup:
    """Call setup time (INVITE -> 200 OK at the caller) must be at most ``max_ms``."""

    alias: str
    max_ms: float | None

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> ExpectSetup:
        return cls(scope.call(f, "call", "main"), f.number("max_ms", None, low=1, high=600000))

    def run(self, ctx: RunContext) -> None:
        leg = leg_of(ctx, self.alias)
        limit = float(ctx.threshold("setup_time_ms", self.max_ms))
        ctx.check(CheckResult.compare(f"setup_time:{self.alias}", leg.ms("t_200"), "<=", limit, "ms",
                                      detail="" if leg.answered else "the call was not answered"))


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

    def run(self, ctx: RunContext) -> None:
        leg = leg_of(ctx, self.alias)
        if self.echo:
            self._echo(ctx, leg)
            return
        if leg.callee is None or leg.callee_call is None:
            ctx.check(CheckResult.error(f"audio:{self.alias}", "the callee is not a party of this scenario; "
                                        "its received audio cannot be judged"))
            return
        prefix = "audio" if self.alias == "main" else f"audio:{self.alias}"
        start = leg.times.get("t_200", leg.t_invite)
        if start is not None:  # the recordings cover the call: that is when the harness had to keep time
            ctx.measured(start, leg.times.get("t_disconnected", time.monotonic()))
        directions = [(leg.caller, leg.callee, leg.callee_call), (leg.callee, leg.caller, leg.caller_call)]
        if self.direction == "caller->callee":
            directions = directions[:1]
        elif self.direction == "callee->caller":
            directions = directions[1:]
        for src, dst, dst_call in directions:
            name = f"{src}->{dst}"
            reference = ctx.scenario.parties[src].expected_audio
            received = ctx.out_dir / f"{dst}-{dst_call}.wav"
            sent = ctx.scenario.parties[dst].play
            if reference is None:
                ctx.check(CheckResult.error(f"{prefix}:{name}", f"party '{src}' plays nothing: no reference"))
                continue
            if not received.exists():
                ctx.check(CheckResult.error(f"{prefix}:{name}", f"{dst} made no recording ({received.name})"))
                continue
            src_call = leg.caller_call if src == leg.caller else leg.callee_call
            offset, planned = recording_times(ctx, src, src_call, dst, dst_call)
            judge_direction(ctx, name, received, reference, sent, rtp_stats(ctx, dst, dst_call), prefix=prefix,
                            start_offset_s=offset, expected_s=planned)

    def _echo(self, ctx: RunContext, leg: CallLeg) -> None:
        """The caller hears itself: its received audio is judged against what it played; the delay is the
        round trip (the one-way limit counts twice)."""
        prefix = "audio:echo" if self.alias == "main" else f"audio:{self.alias}:echo"
        name = f"{leg.caller}->{leg.caller}"
        reference = ctx.scenario.parties[leg.caller].expected_audio
        received = ctx.out_dir / f"{leg.caller}-{leg.caller_call}.wav"
        start = leg.times.get("t_200", leg.t_invite)
        if start is not None:
            ctx.measured(start, leg.times.get("t_disconnected", time.monotonic()))
        if not leg.answered:
            ctx.check(CheckResult.error(f"{prefix}:{name}", "the echo-test call was not answered"))
            return
        if reference is None:
            ctx.check(CheckResult.error(f"{prefix}:{name}", f"party '{leg.caller}' plays nothing: no reference"))
            return
        if not received.exists():
            ctx.check(CheckResult.error(f"{prefix}:{name}", f"{leg.caller} made no recording ({received.name})"))
            return
        offset, planned = recording_times(ctx, leg.caller, leg.caller_call, leg.caller, leg.caller_call)
        judge_direction(ctx, name, received, reference, None, rtp_stats(ctx, leg.caller, leg.caller_call),
                        prefix=prefix, round_trip=True, start_offset_s=offset, expected_s=planned)


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


def judge_direction(ctx: RunContext, name: str, received: Path, reference: str, sent: str | None, rtp: Any,
                    prefix: str = "audio", only: tuple[str, ...] | None = None, round_trip: bool = False,
                    start_offset_s: float | None = None, expected_s: float | None = None) -> None:
    """Analyse one direction's received WAV against the reference its source played; add the checks.

    ``coverage`` says how much of the reference the recording let the engine judge, and why not all.
    ``start_offset_s``: when the recording started minus when the reference started playing (measured in
    the parties), taken out of the delay. ``expected_s``: how long the recorder was meant to run, which
    tells a recording that ended early from one planned too short. ``only`` keeps a subset of the audio
    checks (by name). ``round_trip``: the audio went there and back (an echo test), so the one-way delay
    limit counts twice.
    """
    from harness.audio import AudioInputError, analyze, read_wav

    ctx.artifacts[f"received:{prefix}:{name}"] = received.name
    ctx.artifacts[f"reference:{prefix}:{name}"] = str(reference)
    try:
        rec, rate = read_wav(received)
        ref, ref_rate = read_wav(reference)
        own = read_wav(sent)[0] if sent else None
    except AudioInputError as exc:
        ctx.check(CheckResult.error(f"{prefix}:{name}", f"unusable recording: {exc}"))
        return
    if rate != ref_rate:
        ctx.check(CheckResult.error(f"{prefix}:{name}", f"recording at {rate} Hz, reference at {ref_rate} Hz"))
        return
    try:
        limits = audio_thresholds(ctx)
        if round_trip:
            limits = dataclasses.replace(limits, max_delay_ms=2 * limits.max_delay_ms)
        analysis = analyze(rec, ref, rate, limits, direction=name, sent=own, rtp=rtp, start_offset_s=start_offset_s,
                           expected_s=expected_s)
    except ValueError as exc:
        ctx.check(CheckResult.error(f"{prefix}:{name}", f"cannot analyse: {exc}"))
        return
    ctx.audio[f"{prefix}:{name}" if prefix != "audio" else name] = analysis.to_dict()
    for c in analysis.checks:
        if only is not None and c.name not in only:
            continue
        c.name = f"{prefix}:{name}:{c.name}"
        ctx.check(c)


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
