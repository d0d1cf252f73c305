"""The ``expect_connected`` step: is a call still up at both ends, and does its audio flow? Judged over a
few seconds from what the parties see, against any PBX; meant to be run before and after a fault.

A dropped end is reported with where its BYE came from (the PBX, or somewhere else: a BYE from nowhere),
read from the party's SIP log. Checks: ``call:<label>:connected`` and ``rtp:<label>:<src>-><dst>:flowing``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from dataclasses import dataclass

from harness.contracts.checkname import CheckName
from harness.contracts.errors import PartyError
from harness.contracts.siplog import read_messages
from harness.contracts.target import Target
from harness.contracts.verdict import CheckResult, Verdict
from harness.contracts.yamlsrc import Fields
from harness.scenarios.context import CallLeg, RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_call import call_state_is, leg_of

__all__ = ["ExpectConnected", "drop_story"]

PTIME_PPS = 50.0  #: RTP packets per second at the usual 20 ms packetisation


@step("expect_connected")
@dataclass(frozen=True)
class ExpectConnected:
    """Call ``call`` is still up at both ends and its audio flows: over ``seconds`` (default 2) each end
    must stay CONFIRMED and receive at least ``min_share`` (default 0.5) of the RTP packets a 20 ms
    stream sends in that time (media is judged when both ends are parties of the scenario).

    A dropped end is reported with where its BYE came from (the PBX, or somewhere else: a BYE from
    nowhere); stalled media with the packets received before and during the window. ``label`` (default:
    the call's name) names the checks, ``call:<label>:connected`` and ``rtp:<label>:<src>-><dst>:flowing``,
    so a scenario can judge the same call before and after a fault.
    """

    alias: str
    seconds: float
    min_share: float
    label: str

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> ExpectConnected:
        alias = scope.call(f, "call", "main")
        return cls(alias, f.number("seconds", 2.0, low=0.5, high=60), f.number("min_share", 0.5, low=0.0, high=1.0),
                   scope.name_part(f, "label", alias))

    def run(self, ctx: RunContext) -> None:
        leg = leg_of(ctx, self.alias)
        ends = [(leg.caller, leg.caller_call)] + ([(leg.callee, leg.callee_call)] if leg.callee and
                                                  leg.callee_call else [])
        before = {party: _rx_packets(ctx, party, cid) for party, cid in ends}
        time.sleep(min(self.seconds, max(0.0, ctx.deadline - time.monotonic())))
        dropped = [(party, cid) for party, cid in ends if _ended(ctx, party, cid)]
        name = CheckName("call", call=self.label, metric="connected")
        if dropped:
            why = "; ".join(drop_story(ctx, leg, party, cid) for party, cid in dropped)
            up = [party for party, cid in ends if (party, cid) not in dropped]
            ctx.check(CheckResult.of(name, Verdict.FAIL, "dropped", "connected", detail=why + (
                f"; still up at {', '.join(up)}" if up else "")))
            if len(dropped) == len(ends):
                leg.ended = True
        else:
            ctx.check(CheckResult.of(name, Verdict.PASS, "connected", "connected",
                                     detail=f"both ends CONFIRMED for {self.seconds:g} s" if len(ends) == 2 else
                                     f"{leg.caller}'s end CONFIRMED for {self.seconds:g} s"))
        want = self.min_share * PTIME_PPS * self.seconds
        for (dst, cid), (src, _) in zip(ends, reversed(ends), strict=True):
            if dropped or len(ends) < 2:
                continue  # a dropped end sends and takes nothing: call:<label>:connected says it all
            after, start = _rx_packets(ctx, dst, cid), before[dst]
            got = None if after is None or start is None else after - start
            ctx.check(CheckResult.compare(
                CheckName("rtp", call=self.label, direction=(src, dst), metric="flowing"),
                float(got) if got is not None else None, ">=", want, "packets", detail=("" if got is None else
                                   f"{dst} received {got} RTP packets in {self.seconds:g} s ({before[dst]} before)"
                                   + ("" if got >= want else ": the media stopped while the call stayed up (a dead "
                                      "media relay, a cut media path; an RTP timeout ends such calls)"))))


def _rx_packets(ctx: RunContext, party: str, cid: str) -> int | None:
    try:
        st = ctx.party(party).stats(cid)
    except PartyError:
        return None
    got = st.get("rx_packets") if st else None
    return int(got) if isinstance(got, int) else None


def _ended(ctx: RunContext, party: str, cid: str) -> bool:
    p = ctx.party(party)
    if not p.alive:
        return True
    with contextlib.suppress(PartyError):
        p.sync()  # an event still in the pipe is not an event that did not happen
    return p.find(call_state_is(cid, "DISCONNECTED")) is not None


def drop_story(ctx: RunContext, leg: CallLeg, party: str, cid: str) -> str:
    """Why ``party``'s end of the call ended, from its event and its SIP log: who sent the BYE."""
    p = ctx.party(party)
    if not p.alive:
        return f"{party}'s SIP stack is gone"
    ev = p.find(call_state_is(cid, "DISCONNECTED")) or {}
    sip_call_id = str(ev.get("sip_call_id") or leg.sip_call_id)
    byes = [e for e in read_messages(p.sip_log_file, party)
            if e.direction == "RX" and e.first_line.startswith("BYE ") and e.call_id == sip_call_id]
    if not byes:
        return f"{party}'s end ended ({ev.get('code')} {ev.get('reason', '')}) without a BYE received".rstrip()
    source = byes[0].peer.split()[-1]
    pbx = _pbx_address(ctx.target)
    if source != pbx:
        return f"{party} received a BYE from {source}, which is not the PBX ({pbx}): a BYE from nowhere"
    other = leg.caller if party == leg.callee else leg.callee
    if other is not None and other in ctx.parties and any(
            e.direction == "TX" and e.first_line.startswith("BYE ") and e.call_id == sip_call_id
            for e in read_messages(ctx.party(other).sip_log_file, other)):
        return f"{other} hung up: {party} received its BYE through the PBX"
    return (f"{party} received a BYE from the PBX ({source}) that {other or 'the other end'} never sent: the PBX "
            "ended the call (an RTP timeout, a maximum call length, a restart)")


def _pbx_address(target: Target) -> str:
    try:
        host = socket.gethostbyname(target.host)
    except OSError:
        host = target.host
    return f"{host}:{target.port}"
