"""Call steps: place a call, let it run, hang it up, send and receive DTMF, judge the setup time.

Action steps (``call``, ``hangup``, ...) add a check for their own outcome and raise :class:`StepFailed`
when the scenario cannot sensibly go on; ``expect_*`` steps only judge. The helpers here
(:func:`call_state_is`, :func:`leg_of`, :func:`call_of`, :func:`other_end`) are shared by every step that
acts on a named call.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from harness.contracts.checkname import CheckName
from harness.contracts.errors import PartyTimeout, StepFailed
from harness.contracts.verdict import CheckResult, Verdict
from harness.contracts.yamlsrc import Fields
from harness.scenarios.context import CallLeg, RunContext
from harness.scenarios.registry import ParseScope, step

__all__ = ["call_of", "call_state_is", "event_for", "latest_times", "leg_of", "other_end"]

Event = dict[str, Any]
EXPECT_OUTCOMES = ("answer", "busy", "reject", "no_answer", "not_found", "any_failure")


# ---- what every call step shares ---------------------------------------------------------------------
def call_state_is(call: str, *states: str) -> Any:
    return lambda e: e["event"] == "call_state" and e.get("call") == call and e.get("state") in states


def event_for(kind: str, call: str) -> Callable[[Event], bool]:
    return lambda e: e["event"] == kind and e.get("call") == call


def latest_times(events: list[Event]) -> dict[str, float]:
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


def other_end(leg: CallLeg, party: str) -> tuple[str, str]:
    """The far end of ``leg`` from ``party``: (party name, its call id)."""
    if party == leg.caller and leg.callee and leg.callee_call:
        return leg.callee, leg.callee_call
    if party == leg.callee:
        return leg.caller, leg.caller_call
    raise StepFailed(f"call '{leg.alias}' has no far end that is a party of this scenario")


# ---- call ------------------------------------------------------------------------------------------
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
        alias = scope.new_call(f, "as", "main")
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
        cid = CheckName("call", call=self.alias)
        timeout = ctx.remaining(self.timeout_s or float(ctx.threshold("call_timeout_s")))
        try:
            ev = caller.wait_event(call_state_is(leg.caller_call, "CONFIRMED", "DISCONNECTED"), timeout,
                                   f"the answer to call '{self.alias}'", caller_mark)
        except PartyTimeout:
            ev = None
        if ev is None:
            leg.times.update(latest_times(caller.call_events(leg.caller_call)))
            if self.expect == "no_answer":
                caller.hangup(leg.caller_call)  # CANCEL
                ctx.check(CheckResult.of(cid, Verdict.PASS, "no answer", "no answer",
                                         detail=f"no final response within {timeout:.1f} s, as expected"))
                return
            ctx.check(CheckResult.of(cid, Verdict.FAIL, "no answer", self._wanted(),
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
        ctx.check(CheckResult.of(cid, Verdict.PASS if ok else Verdict.FAIL, leg.final_code, self._wanted(),
                                 unit="SIP", detail=outcome))
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
        ctx.check(CheckResult.of(CheckName("hangup", call=self.alias), Verdict.FAIL if missing else Verdict.PASS,
                                 elapsed if not missing else None, "both ends released", unit="ms",
                                 detail=f"still up at: {', '.join(missing)}" if missing else ""))


# ---- DTMF and setup time ---------------------------------------------------------------------------------
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
        ctx.check(CheckResult.of(CheckName("dtmf", call=self.alias, subject=self.party, subject_first=True),
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
        ctx.check(CheckResult.compare(CheckName("setup_time", call=self.alias), leg.ms("t_200"), "<=", limit, "ms",
                                      detail="" if leg.answered else "the call was not answered"))
