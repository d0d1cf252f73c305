"""Operation-flow steps: transfers, live audio probes, hold privacy, IVR prompts, queue answers and
the PBX's own call recording.

They work the same against the lab and a real PBX: what they judge is what the parties see and hear
(SIP events, received audio) and what the PBX stores (its recording, found through the target profile).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.contracts.errors import HarnessError, PartyTimeout, StepFailed
from harness.contracts.verdict import CheckResult, Verdict
from harness.contracts.yamlsrc import Fields
from harness.scenarios.context import CallLeg, RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps import call_of, call_state_is, judge_direction, leg_of, rtp_stats
from harness.sip import Party

__all__: list[str] = []  # steps are reached through the registry

Event = dict[str, Any]
TRANSFER_OUTCOMES = ("complete", "busy", "no_answer", "rejected", "failed")


def _other_end(leg: CallLeg, party: str) -> tuple[str, str]:
    if party == leg.caller and leg.callee and leg.callee_call:
        return leg.callee, leg.callee_call
    if party == leg.callee:
        return leg.caller, leg.caller_call
    raise StepFailed(f"call '{leg.alias}' has no far end that is a party of this scenario")


@step("transfer")
@dataclass(frozen=True)
class Transfer:
    """``party`` transfers the far end of call ``call``.

    Blind: ``to`` names the target (party, profile number or URI); REFER. Attended: ``replaces`` names
    the consultation call to the target; REFER with Replaces. ``as`` names the resulting call between
    the transferee and the target. ``expect`` is ``complete`` (default), ``busy``, ``no_answer``,
    ``rejected`` (the REFER itself is refused) or ``failed`` (any failure). On a failure the transferee
    must still be connected to the transferor (checked as ``transfer:<call>:recovered``).
    """

    party: str
    alias: str
    to: str | None
    replaces: str | None
    new_alias: str
    expect: str
    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Transfer:
        party = scope.party(f, "party")
        alias = scope.call(f, "call", "main")
        to = f.opt("to", (str, int), None)
        replaces = scope.call(f, "replaces") if f.opt("replaces", str, None) is not None else None
        if (to is None) == (replaces is None):
            raise f.fail(None, "give either 'to' (blind transfer) or 'replaces' (attended transfer)")
        new_alias = f.opt("as", str, "transferred")
        if new_alias in scope.calls:
            raise f.fail("as", f"call name '{new_alias}' is already used by an earlier step")
        scope.calls.add(new_alias)
        expect = f.choice("expect", TRANSFER_OUTCOMES, "complete")
        return cls(party, alias, None if to is None else str(to), replaces, new_alias, expect,
                   f.number("timeout_s", 8.0, low=0.5, high=120))

    def run(self, ctx: RunContext) -> None:
        leg = leg_of(ctx, self.alias)
        me = ctx.party(self.party)
        my_call = call_of(ctx, leg, self.party)
        transferee_name, transferee_call = _other_end(leg, self.party)
        transferee = ctx.party(transferee_name)
        consult = leg_of(ctx, self.replaces) if self.replaces else None
        target_name = (consult.callee if consult else (self.to if self.to in ctx.scenario.parties else None))
        target = ctx.party(target_name) if target_name else None
        marks = {"me": me.mark(), "transferee": transferee.mark(), "target": target.mark() if target else 0}
        name = f"transfer:{self.alias}"
        t0 = time.monotonic()
        if consult is not None:
            me.transfer_replaces(my_call, call_of(ctx, consult, self.party))
            ctx.log(f"  {self.party} transfers '{self.alias}' onto '{self.replaces}' (REFER with Replaces)")
        else:
            assert self.to is not None
            me.transfer(my_call, ctx.dial_uri(self.to))
            ctx.log(f"  {self.party} transfers '{self.alias}' to {self.to} (REFER)")

        final, cancelled = self._final_notify(ctx, me, my_call, transferee, marks)
        elapsed = round((time.monotonic() - t0) * 1000.0, 1)
        # the transferee's REFER and the target's INVITE came before the NOTIFY the transferor saw, but
        # through other pipes: let those parties' events catch up before looking for them
        transferee.sync()
        if target is not None:
            target.sync()
        code = final.get("code") if final else None
        refer_refused = bool(final) and not transferee.find(
            lambda e: e["event"] == "xfer_request" and bool(e.get("accepted")), marks["transferee"])
        ctx.extra.setdefault("transfers", {})[self.alias] = {"notify_code": code, "elapsed_ms": elapsed,
                                                              "refer_refused": refer_refused}
        if self.expect == "complete":
            self._complete(ctx, leg, me, my_call, transferee_name, transferee_call, target_name, consult, marks,
                           code, t0)
        else:
            self._failed(ctx, leg, me, my_call, transferee, transferee_call, code, refer_refused, name,
                         _offer_evidence(ctx, transferee, marks, target_name, cancelled))

    def _final_notify(self, ctx: RunContext, me: Party, my_call: str, transferee: Party,
                      marks: dict[str, int]) -> tuple[Event | None, bool]:
        """The final NOTIFY (or REFER failure) at the transferor; on time-out the transferee gives up.
        The flag says the harness cancelled the transferee's new call (so a 487 after it is the harness's)."""
        try:
            return me.wait_event(lambda e: e["event"] == "xfer_status" and e.get("call") == my_call
                                 and bool(e.get("final")), ctx.remaining(self.timeout_s), "the transfer's final NOTIFY",
                                 marks["me"]), False
        except PartyTimeout:
            pass
        # like a phone's transfer-recall timer: the transferee abandons its new call (CANCEL)
        transferee.sync()
        req = transferee.find(lambda e: e["event"] == "xfer_request" and bool(e.get("accepted")), marks["transferee"])
        if req and req.get("new_call"):
            with contextlib.suppress(HarnessError):
                transferee.hangup(str(req["new_call"]))
            with contextlib.suppress(PartyTimeout):
                return me.wait_event(lambda e: e["event"] == "xfer_status" and e.get("call") == my_call
                                     and bool(e.get("final")), ctx.remaining(3.0), "the final NOTIFY",
                                     marks["me"]), True
            return None, True
        return None, False

    def _complete(self, ctx: RunContext, leg: CallLeg, me: Party, my_call: str, transferee_name: str,
                  transferee_call: str, target_name: str | None, consult: CallLeg | None, marks: dict[str, int],
                  code: Any, t0: float) -> None:
        name = f"transfer:{self.alias}"
        ok = code == 200
        ctx.check(CheckResult(f"{name}:notify", Verdict.PASS if ok else Verdict.FAIL, code, 200, op="==",
                              unit="SIP", detail="NOTIFY sipfrag of the transfer's outcome" if ok else
                              ("no final NOTIFY within the time-out" if code is None else "transfer not completed")))
        if not ok:
            raise StepFailed(f"transfer of '{self.alias}' did not complete (final NOTIFY {code})")
        transferee = ctx.party(transferee_name)
        req = transferee.find(lambda e: e["event"] == "xfer_request" and bool(e.get("accepted")), marks["transferee"])
        new_call = str(req["new_call"]) if req else ""
        new = CallLeg(self.new_alias, transferee_name, new_call, self.to or (consult.uri if consult else ""),
                      callee=target_name)
        if req:
            new.t_invite = float(req["t"])
            with contextlib.suppress(PartyTimeout):
                ev = transferee.wait_event(call_state_is(new_call, "CONFIRMED"), ctx.remaining(5.0),
                                           "the transferred call to be answered", marks["transferee"])
                new.times.update(ev.get("times", {}))
                new.sip_call_id = ev.get("sip_call_id", "")
                new.answered, new.final_code = True, 200
        if target_name:
            target = ctx.party(target_name)
            kind = "replaced" if consult else "incoming"
            found = target.find(lambda e: e["event"] == kind, marks["target"])
            if found:
                new.callee_call = str(found["new_call"] if consult else found["call"])
        ctx.calls[self.new_alias] = new
        # pjsua does not release the transferor after NOTIFY 200: a phone hangs up here
        with contextlib.suppress(HarnessError):
            me.hangup(my_call)
        if consult is not None:
            with contextlib.suppress(HarnessError):
                me.hangup(call_of(ctx, consult, self.party))
        t_answer = new.times.get("t_200")
        ctx.check(CheckResult.compare(f"{name}:time", round((t_answer - t0) * 1000.0, 1) if t_answer else None,
                                      "<=", float(ctx.threshold("transfer_time_ms")), "ms",
                                      detail="the transferor's REFER -> the transferred call answered"))
        dead = self._dead_legs(ctx, leg, transferee_name, transferee_call, consult, new)
        ctx.check(CheckResult(f"{name}:released", Verdict.FAIL if dead else Verdict.PASS,
                              len(dead), 0, op="==", unit="legs",
                              detail=("still up: " + ", ".join(dead)) if dead else
                              "the transferor's legs are released; the transferee talks to the target"))
        leg.ended = True
        if consult is not None:
            consult.ended = True

    def _dead_legs(self, ctx: RunContext, leg: CallLeg, transferee_name: str, transferee_call: str,
                   consult: CallLeg | None, new: CallLeg) -> list[str]:
        """Calls that should have ended and did not, and the new call if it is not up at both ends."""
        should_end = [(self.party, call_of(ctx, leg, self.party)), (transferee_name, transferee_call)]
        if consult is not None:
            should_end.append((self.party, call_of(ctx, consult, self.party)))
            if consult.callee and consult.callee_call:
                should_end.append((consult.callee, consult.callee_call))
        dead = []
        for party, cid in should_end:
            try:
                ctx.party(party).wait_event(call_state_is(cid, "DISCONNECTED"), ctx.remaining(5.0),
                                            f"{party}'s call {cid} to end")
            except PartyTimeout:
                dead.append(f"{party} ({cid})")
        if not new.answered:
            dead.append(f"{transferee_name}'s new call was not answered")
        if new.callee and not new.callee_call:
            dead.append(f"{new.callee} never got the transferred call")
        return dead

    def _failed(self, ctx: RunContext, leg: CallLeg, me: Party, my_call: str, transferee: Party,
                transferee_call: str, code: Any, refer_refused: bool, name: str, offer: Offer) -> None:
        """A transfer expected to fail PASSes on evidence only: the REFER's outcome (the final NOTIFY
        sipfrag, or none where the target profile documents that the PBX sends none), and, unless the
        REFER itself was refused, that the target was offered the call."""
        wanted = {"busy": "NOTIFY 486/600", "no_answer": "NOTIFY 408/480/487", "rejected": "REFER refused",
                  "failed": "NOTIFY 4xx-6xx"}[self.expect]
        silent_ok = ctx.target.failed_transfer_notify == "none"
        if refer_refused:
            ok, outcome = self.expect in ("rejected", "failed"), "REFER refused"
        elif code is None:
            # no final NOTIFY: only a PBX documented to send none may end a failed transfer that way, and then
            # the transferee's own final response says how it failed
            final = offer.final_code
            ok = silent_ok and self.expect != "rejected" and final is not None and _fits(self.expect, final)
            outcome = "no final NOTIFY" + (f" (documented; the target answered {final})" if silent_ok and final
                                           else "")
        else:
            ok, outcome = self.expect != "rejected" and _fits(self.expect, int(code)), f"final NOTIFY {code}"
        why = f"expected the transfer to fail ({self.expect})"
        if code is None and not refer_refused and not silent_ok:
            why += ("; the transferor was never told the outcome (no final NOTIFY sipfrag). If this PBX sends none "
                    "by design, say so in the target profile: behaviour: {failed_transfer_notify: none}")
        ctx.check(CheckResult(f"{name}:outcome", Verdict.PASS if ok else Verdict.FAIL, outcome, wanted, detail=why))
        if not refer_refused and self.expect != "rejected":
            ctx.check(CheckResult(f"{name}:offered", Verdict.PASS if offer.offered else Verdict.FAIL,
                                  "offered" if offer.offered else "not offered", "offered", detail=offer.detail))
        # the transferee must still be connected to the transferor
        time.sleep(0.3)
        transferee.sync()
        me.sync()
        alive = not transferee.find(call_state_is(transferee_call, "DISCONNECTED")) and not me.find(
            call_state_is(my_call, "DISCONNECTED"))
        ctx.check(CheckResult(f"{name}:recovered", Verdict.PASS if alive else Verdict.FAIL,
                              "connected" if alive else "dropped", "connected",
                              detail="" if alive else "the caller lost the call when the transfer failed"))
        if not alive:
            leg.ended = True
            raise StepFailed(f"the failed transfer of '{self.alias}' dropped the call")


@dataclass(frozen=True)
class Offer:
    """Evidence that a transfer's target was offered the call."""

    offered: bool
    detail: str
    final_code: int | None = None  #: the final response the transferee's INVITE got, unless the harness cancelled


def _fits(expect: str, code: int) -> bool:
    if expect == "busy":
        return code in (486, 600)
    if expect == "no_answer":
        return code in (408, 480, 487)
    return 400 <= code <= 699


def _offer_evidence(ctx: RunContext, transferee: Party, marks: dict[str, int], target_name: str | None,
                    cancelled: bool) -> Offer:
    """Was the target offered the call? The target's own INVITE when it is a party of the scenario, else
    what the transferee's INVITE to it got back from the PBX: ringing, or a final response that the
    harness's own CANCEL did not cause."""
    req = transferee.find(lambda e: e["event"] == "xfer_request" and bool(e.get("accepted")), marks["transferee"])
    new_call = str(req["new_call"]) if req and req.get("new_call") else None
    states = [e for e in transferee.call_events(new_call) if e["event"] == "call_state"] if new_call else []
    rang = next((int(e.get("code") or 0) for e in states if e.get("state") == "EARLY"
                 and int(e.get("code") or 0) in (180, 183)), None)
    ended = next((int(e.get("code") or 0) for e in states if e.get("state") == "DISCONNECTED"), None)
    final = None if ended is None or (cancelled and ended == 487) else ended
    heard = ""
    if new_call:
        heard = f"; the transferee's INVITE {f'rang ({rang})' if rang else 'got no ringing'}" + (
            f" and ended with {ended}" + (" after the harness cancelled it" if cancelled else "")
            if ended is not None else " and had not ended")
    if target_name is not None:
        target = ctx.party(target_name)
        inc = target.find(lambda e: e["event"] == "incoming", marks["target"])
        if inc is None:
            return Offer(False, f"{target_name} never saw the transferred call's INVITE{heard}", final)
        answers = [e for e in target.call_events(str(inc["call"])) if e["event"] == "call_state"
                   and e.get("state") == "DISCONNECTED"]
        said = f" and ended it with {answers[0].get('code')}" if answers else ""
        return Offer(True, f"{target_name} was offered the call (INVITE received{said}){heard}", final)
    if new_call is None:
        return Offer(False, "the transferee never placed the transferred call (no REFER accepted)", final)
    if rang is not None or final is not None:
        return Offer(True, f"the PBX {'rang the target' if rang else f'answered {final}'}{heard}", final)
    return Offer(False, f"no sign that the PBX offered the target the call{heard}", final)


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
        return cls(alias, f.number("seconds", 0.0, low=0.0, high=120), f.opt("label", str, alias))

    def run(self, ctx: RunContext) -> None:
        from harness.audio import read_wav

        leg = leg_of(ctx, self.alias)
        if not (leg.callee and leg.callee_call):
            ctx.check(CheckResult.error(f"audio:{self.label}", "the far end is not a party of this scenario"))
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
            reference = ctx.scenario.parties[src].expected_audio
            if reference is None:
                ctx.check(CheckResult.error(f"audio:{self.label}:{src}->{dst}", f"{src} plays nothing"))
                continue
            offset = t_rec[dst] - t_play[src] if src in t_play else None
            # no echo judgement here: the players restart at slightly different moments, so the listener's
            # own signal has no well-defined timeline in the probe (expect_audio judges echo on whole calls)
            judge_direction(ctx, f"{src}->{dst}", paths[dst], reference, None,
                            rtp_stats(ctx, dst, dst_call), prefix=f"audio:{self.label}", start_offset_s=offset,
                            expected_s=t_stop[dst] - t_rec[dst])


#: a check_audio recording holds its whole reference plus this: the path's delay and the players' start
RECORD_MARGIN_S = 0.6


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
        holder, _ = _other_end(leg, self.party)
        me = ctx.party(self.party)
        cid = call_of(ctx, leg, self.party)
        path = ctx.out_dir / f"{self.party}-{cid}-on-hold.wav"
        me.request("record", call=cid, path=str(path))
        time.sleep(self.seconds)
        me.request("stop_record", call=cid, path=str(path))
        ctx.artifacts[f"on_hold:{self.party}"] = path.name
        holder_audio = ctx.scenario.parties[holder].play
        rec, rate = read_wav(path)
        if holder_audio is None:
            ctx.check(CheckResult.error(f"hold:{self.alias}:privacy", f"{holder} plays nothing to look for"))
            return
        ref, _ = read_wav(holder_audio)
        v = voice_in_mix(rec, ref, rate)
        heard = ("the holder's voice" + (" under other sound" if v.mix_level_dbov > v.level_dbov + 3 else "")
                 if v.found else "silence" if v.mix_level_dbov < -55 else "music or tones on hold")
        ctx.check(CheckResult.compare(
            f"hold:{self.alias}:privacy", v.level_dbov, "<=", self.max_leak_dbov, "dBov",
            detail=f"{self.party} heard {heard} (level {v.mix_level_dbov:.1f} dBov; {holder}'s speech in it: "
                   + (f"{v.level_dbov:.1f} dBov, correlation {v.score:.2f}, steady in every block (t {v.t_stat:.1f})"
                      if v.found else f"not found (correlation {v.score:.2f}, t {v.t_stat:.1f})") + ")",
            metrics={"score": v.score, "t_stat": v.t_stat, "mix_level_dbov": round(v.mix_level_dbov, 2)}))


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
        return cls(scope.party(f, "party"), scope.call(f, "call", "main"), prompt,
                   f.number("seconds", 3.0, low=1.0, high=60), f.number("min_match", 0.6, low=0.0, high=1.0))

    def run(self, ctx: RunContext) -> None:
        from harness.audio import read_wav
        from harness.audio.match import find_in_loop

        leg = leg_of(ctx, self.alias)
        me = ctx.party(self.party)
        cid = call_of(ctx, leg, self.party)
        name = Path(self.prompt).stem
        path = ctx.out_dir / f"{self.party}-{cid}-prompt-{name}.wav"
        me.request("record", call=cid, path=str(path))
        time.sleep(self.seconds)
        me.request("stop_record", call=cid, path=str(path))
        rec, rate = read_wav(path)
        ref, ref_rate = read_wav(self.prompt)
        if rate != ref_rate:
            ctx.check(CheckResult.error(f"prompt:{self.alias}:{name}", f"prompt at {ref_rate} Hz, call at {rate} Hz"))
            return
        m = find_in_loop(rec, ref, rate, max_window_s=self.seconds)
        ctx.artifacts[f"prompt:{name}"] = path.name
        # the match follows the listener's jitter buffer: each jump it followed is named, with the score
        # a single lag would have given (a jump in mid-window splits that one in two)
        followed = f"; {m.jumps_text()}, {m.single_lag:.2f} at a single lag" if m.jumps else ""
        ctx.check(CheckResult.compare(
            f"prompt:{self.alias}:{name}", m.score, ">=", self.min_match, "match",
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
        name = f"answered_by:{self.alias}"
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
            ctx.check(CheckResult(name, Verdict.FAIL, ", ".join(others) or "nobody", self.party,
                                  detail=f"no call reached {self.party} within {self.timeout_s:.0f} s"
                                         + (f"; offered to {', '.join(others)} instead" if others else "")))
            raise StepFailed(f"call '{self.alias}' did not reach {self.party}") from None
        answered = ev["state"] == "CONFIRMED"
        ctx.check(CheckResult(name, Verdict.PASS if answered else Verdict.FAIL, self.party if answered else
                              f"{self.party} ({ev.get('code')})", self.party,
                              detail="" if answered else f"{self.party} was offered the call but it ended"))
        if not answered:
            raise StepFailed(f"{self.party} did not answer call '{self.alias}'")
        leg.callee, leg.callee_call = self.party, str(inc["call"])
        answer_ms = round((float(ev["t"]) - since) * 1000.0, 1) if since else None
        ctx.extra.setdefault("answer_ms", {})[self.alias] = answer_ms
        ctx.check(CheckResult.compare(f"answer_time:{self.alias}", answer_ms, "<=",
                                      float(ctx.threshold("answer_time_ms", self.max_answer_ms)), "ms",
                                      detail=f"the caller's INVITE -> {self.party} answered"))
        for other in self.skipped:
            ctx.party(other).sync()
            offered = ctx.party(other).find(lambda e: e["event"] == "incoming" and e["t"] >= since)
            took = offered and ctx.party(other).find(call_state_is(str(offered["call"]), "CONFIRMED"))
            ok = bool(offered) and not took
            ctx.check(CheckResult(f"skipped:{self.alias}:{other}", Verdict.PASS if ok else Verdict.FAIL,
                                  "offered, not taken" if ok else ("took the call" if took else "never offered"),
                                  "offered, not taken"))


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
        name = f"recording:{self.alias}"
        source = ctx.target.recordings
        if source is None:
            ctx.check(CheckResult.error(f"{name}:found", "the target profile has no 'recordings' section"))
            return
        if not leg.sip_call_id:
            ctx.check(CheckResult.error(f"{name}:found", "the call has no SIP Call-ID (it never started)"))
            return
        wait = self.wait_s if self.wait_s is not None else source.wait_s
        try:
            rec = fetch_recording(source, leg.sip_call_id, ctx.out_dir, f"pbx-{self.alias}", wait)
        except HarnessError as exc:
            ctx.check(CheckResult(f"{name}:found", Verdict.FAIL, None, "a recording", detail=str(exc)))
            return
        start = leg.times.get("t_200", leg.t_invite)
        if start is not None:  # the PBX recorded the whole call
            ctx.measured(start, leg.times.get("t_disconnected", time.monotonic()))
        shown = rec.mix or rec.dir1 or rec.dir2
        if shown is not None:
            ctx.artifacts[f"pbx_recording:{self.alias}"] = shown.name
        ctx.check(CheckResult(f"{name}:found", Verdict.PASS, rec.source_name, "a recording",
                              detail=f"{rec.kind} for Call-ID {leg.sip_call_id}"))
        call_s = leg.timings().get("duration_s")
        diff = abs(rec.duration_s - call_s) if call_s is not None else None
        ctx.check(CheckResult.compare(f"{name}:duration", None if diff is None else round(diff, 2), "<=",
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
            before = len(ctx.checks)
            judge_direction(ctx, f"{src}->{dst}", path, reference, None, None, prefix=name,
                            only=("audio_present", "reference_match", "coverage", "dropouts", "mos"))
            if len(ctx.checks) > before:
                delays[src] = ctx.audio.get(f"{name}:{src}->{dst}", {}).get("delay_ms")
        if len(delays) == 2 and None not in delays.values():
            d1, d2 = (float(v) for v in delays.values())
            # where each side's speech sits on the recording's clock: its WAV's start plus its delay
            skew = round(abs(d1 - (d2 + rec.start_skew_ms)), 1)
            ctx.check(CheckResult.compare(f"{name}:alignment", skew, "<=", self.max_misalignment_ms, "ms",
                                          detail="how far apart the two directions sit in the recording, "
                                                 "against the live call"))

