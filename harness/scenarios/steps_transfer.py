"""The ``transfer`` step: blind (REFER) and attended (REFER with Replaces) transfers, and the evidence a
failed transfer is judged on.

Checks are ``transfer:<call>:<what>``: ``notify``, ``time`` and ``released`` for a completed transfer;
``outcome``, ``offered`` and ``recovered`` for one expected to fail.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

from harness.contracts.checkname import CheckName
from harness.contracts.errors import HarnessError, PartyTimeout, StepFailed
from harness.contracts.verdict import CheckResult, Verdict
from harness.contracts.yamlsrc import Fields
from harness.scenarios.context import CallLeg, RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_call import call_of, call_state_is, leg_of, other_end
from harness.sip import Party

__all__ = ["TRANSFER_OUTCOMES", "Offer", "Transfer"]

Event = dict[str, Any]
TRANSFER_OUTCOMES = ("complete", "busy", "no_answer", "rejected", "failed")


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
        new_alias = scope.new_call(f, "as", "transferred")
        expect = f.choice("expect", TRANSFER_OUTCOMES, "complete")
        return cls(party, alias, None if to is None else str(to), replaces, new_alias, expect,
                   f.number("timeout_s", 8.0, low=0.5, high=120))

    def run(self, ctx: RunContext) -> None:
        leg = leg_of(ctx, self.alias)
        me = ctx.party(self.party)
        my_call = call_of(ctx, leg, self.party)
        transferee_name, transferee_call = other_end(leg, self.party)
        transferee = ctx.party(transferee_name)
        consult = leg_of(ctx, self.replaces) if self.replaces else None
        target_name = (consult.callee if consult else (self.to if self.to in ctx.scenario.parties else None))
        target = ctx.party(target_name) if target_name else None
        marks = {"me": me.mark(), "transferee": transferee.mark(), "target": target.mark() if target else 0}
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
            self._failed(ctx, leg, me, my_call, transferee, transferee_call, code, refer_refused,
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
        name = CheckName("transfer", call=self.alias)
        ok = code == 200
        ctx.check(CheckResult.of(name.with_metric("notify"), Verdict.PASS if ok else Verdict.FAIL, code, 200, op="==",
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
        took = round((t_answer - t0) * 1000.0, 1) if t_answer else None
        ctx.check(CheckResult.compare(name.with_metric("time"), took, "<=", float(ctx.threshold("transfer_time_ms")),
                                      "ms", detail="the transferor's REFER -> the transferred call answered"))
        dead = self._dead_legs(ctx, leg, transferee_name, transferee_call, consult, new)
        ctx.check(CheckResult.of(name.with_metric("released"), Verdict.FAIL if dead else Verdict.PASS,
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
                transferee_call: str, code: Any, refer_refused: bool, offer: Offer) -> None:
        """A transfer expected to fail PASSes on evidence only: the REFER's outcome (the final NOTIFY
        sipfrag, or none where the target profile documents that the PBX sends none), and, unless the
        REFER itself was refused, that the target was offered the call."""
        name = CheckName("transfer", call=self.alias)
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
        ctx.check(CheckResult.of(name.with_metric("outcome"), Verdict.PASS if ok else Verdict.FAIL, outcome, wanted,
                                 detail=why))
        if not refer_refused and self.expect != "rejected":
            ctx.check(CheckResult.of(name.with_metric("offered"), Verdict.PASS if offer.offered else Verdict.FAIL,
                                     "offered" if offer.offered else "not offered", "offered", detail=offer.detail))
        # the transferee must still be connected to the transferor
        time.sleep(0.3)
        transferee.sync()
        me.sync()
        alive = not transferee.find(call_state_is(transferee_call, "DISCONNECTED")) and not me.find(
            call_state_is(my_call, "DISCONNECTED"))
        ctx.check(CheckResult.of(name.with_metric("recovered"), Verdict.PASS if alive else Verdict.FAIL,
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
