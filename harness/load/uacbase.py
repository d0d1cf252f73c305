"""The machinery under the load UAC's flows (:mod:`harness.load.uac`): identifiers, sending requests and
ACKs, and pumping a call's datagrams into its transactions while their timers run.

Each transaction is a :class:`~harness.load.txn.Txn` matched to responses by Via branch and CSeq method.
401/407 challenges are answered once with :func:`harness.contracts.sipmsg.digest_authorization`. A
request from the far end inside a call (BYE, re-INVITE, OPTIONS) is answered 200. Nothing here blocks or
touches a socket: ``send(data) -> t_sent`` is a callable.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Generator

from harness.contracts.sipmsg import SipParseError, digest_authorization
from harness.load.plan import UacPlan
from harness.load.timers import Action, ClientTimers, TimerPolicy
from harness.load.txn import Call, Item, Reporter, RtpControl, Txn, ms_between, rang
from harness.load.wire import Response, build_request, offer_sdp, parse_request, parse_response, reply_to

__all__ = ["UacBase"]


class UacBase:
    """``send(data) -> t_sent`` puts a datagram on the wire to the target; ``bind(call_id)``/``unbind(call_id)``
    route a Call-ID's datagrams to the running flow. :class:`~harness.load.uac.Uac` adds the flows."""

    def __init__(self, plan: UacPlan, *, send: Callable[[bytes], float], via: str, report: Reporter,
                 bind: Callable[[str], None] = lambda _c: None, unbind: Callable[[str], None] = lambda _c: None,
                 rtp: RtpControl | None = None, stopping: Callable[[], bool] = lambda: False,
                 count: Callable[[str], None] = lambda _n: None, now: Callable[[], float] = time.perf_counter):
        self.plan, self.send, self.via, self.report = plan, send, via, report
        self.bind, self.unbind, self.rtp, self.stopping, self.count, self.now = bind, unbind, rtp, stopping, count, now
        self.policy = TimerPolicy(plan.t1_s, plan.t2_s)
        self.up = 0  # calls established right now (2xx ACKed, no BYE yet)
        self._n = 0
        self._prefix = f"{random.getrandbits(40):010x}"
        self.local_ip = via.rsplit(":", 1)[0]
        self.contact = f"<sip:{plan.from_user}@{via}>"

    # ---- identifiers ------------------------------------------------------------------------------
    # Unique without a random draw each: this process's random 40-bit prefix, then a counter.
    def _branch(self) -> str:
        self._n += 1
        return f"z9hG4bK{self._prefix}{self._n:x}"

    def _new_call(self, ruri: str, to_uri: str | None = None, *, from_uri: str | None = None) -> Call:
        self._n += 1
        ftag = f"{self._prefix}{self._n:x}"
        cid = f"{ftag}@harness-load"
        self.bind(cid)
        return Call(cid, ruri, f"<{from_uri or self.plan.from_uri}>;tag={ftag}", f"<{to_uri or ruri}>", ftag)

    # ---- sending ----------------------------------------------------------------------------------
    def _send(self, call: Call, method: str, *, ruri: str, to_hdr: str, routes: tuple[str, ...] = (),
              extra: tuple[str, ...] = (), body: bytes = b"", contact: bool = True, branch: str | None = None,
              cseq: int | None = None, invite_timeout: float | None = None) -> Txn:
        br = branch or self._branch()
        data = build_request(method, ruri, via=self.via, branch=br, from_=call.from_hdr, to=to_hdr,
                             call_id=call.call_id, cseq=call.cseq if cseq is None else cseq,
                             contact=self.contact if contact else "", routes=routes, extra=extra, body=body)
        t = self.send(data)
        timers = ClientTimers(invite=method == "INVITE", now=t, policy=self.policy, proceeding_timeout=invite_timeout)
        return Txn(method, br, data, timers, t, ruri, routes)

    def _request(self, call: Call, method: str, *, ruri: str, routes: tuple[str, ...] = (),
                 extra: tuple[str, ...] = (), body: bytes = b"", until_provisional: bool = False,
                 invite_timeout: float | None = None) -> Generator[float, Item | None, Txn]:
        """Send a request and wait for its final response (or a 1xx, ``until_provisional``),
        answering one 401/407 challenge. The returned transaction's ``t_start`` is the first send."""
        auth: tuple[str, ...] = ()
        t_start: float | None = None
        while True:
            call.cseq += 1
            txn = self._send(call, method, ruri=ruri, to_hdr=call.to_hdr, routes=routes, extra=extra + auth,
                             body=body, invite_timeout=invite_timeout)
            if t_start is None:
                t_start = txn.t_sent
            txn.t_start = t_start
            yield from self._pump(call, [txn], done=rang(txn) if until_provisional else None)
            r = txn.final
            if r is None or r.status not in (401, 407) or auth or self.plan.password is None or r.challenge is None:
                return txn
            try:
                value = digest_authorization(r.challenge[1], method, ruri, self.plan.auth_user or self.plan.from_user,
                                             self.plan.password.reveal())
            except SipParseError:
                return txn  # a challenge we cannot answer: the 401/407 is the outcome
            auth = (("Authorization: " if r.status == 401 else "Proxy-Authorization: ") + value,)

    def _ack_failure(self, call: Call, txn: Txn) -> None:
        """ACK of a non-2xx final response, sent as soon as it arrives: part of the INVITE
        transaction (same branch, Request-URI, Route and CSeq number; the response's To tag)."""
        assert txn.final is not None
        txn.ack = build_request("ACK", txn.ruri, via=self.via, branch=txn.branch, from_=call.from_hdr,
                                to=txn.final.to or call.to_hdr, call_id=call.call_id,
                                cseq=txn.final.cseq_num or call.cseq, cseq_method="ACK", routes=txn.routes)
        self.send(txn.ack)

    def _ack_2xx(self, call: Call, r: Response) -> None:
        """ACK of a 2xx: its own transaction, along the dialog's route set."""
        ack = build_request("ACK", call.target, via=self.via, branch=self._branch(), from_=call.from_hdr,
                            to=call.to_hdr, call_id=call.call_id, cseq=r.cseq_num, cseq_method="ACK",
                            routes=call.routes)
        call.acks[r.cseq_num] = ack
        self.send(ack)

    # ---- waiting ----------------------------------------------------------------------------------
    def _pump(self, call: Call, txns: list[Txn], *, done: Callable[[], bool] | None = None,
              deadline: float | None = None) -> Generator[float, Item | None, None]:
        """Feed the call's datagrams to ``txns`` and run their timers until ``done()`` (default: all
        transactions complete) or ``deadline``."""
        now = self.now
        while True:
            if done is not None:
                if done():
                    return
            else:
                for t in txns:
                    if not t.done:
                        break
                else:
                    return
            due = math.inf if deadline is None else deadline
            for t in txns:
                if not t.done:
                    d = t.timers.next_due()
                    if d < due:
                        due = d
            item = yield due
            if item is None:  # our time came (or the run drains: ``done`` says)
                t_now = now()
                if deadline is not None and t_now >= deadline:
                    return
                for t in txns:
                    if t.done:
                        continue
                    action = t.timers.fire(t_now)
                    if action is Action.RETRANSMIT:
                        self.send(t.data)
                        self.count("retransmits")
                    elif action is Action.TIMEOUT:
                        t.timed_out = True
                continue
            t_rx, data = item
            try:
                r = parse_response(data)
            except ValueError:
                self.count("garbled")
                continue
            if r is None:
                self._incoming(call, data)
                continue
            for t in txns:
                if t.branch == r.branch and t.method == r.cseq_method:
                    if not t.on_response(r, t_rx):
                        self._repeat(call, t, r)
                    elif r.status >= 300 and t.method == "INVITE":
                        self._ack_failure(call, t)
                    break
            else:
                self._late(call, r)

    def _repeat(self, call: Call, t: Txn, r: Response) -> None:
        """A final response came again: our ACK was lost (or is still on its way); send it again."""
        if r.status >= 300 and t.ack is not None:
            self.send(t.ack)
        elif 200 <= r.status < 300 and r.cseq_num in call.acks:
            self.send(call.acks[r.cseq_num])

    def _late(self, call: Call, r: Response) -> None:
        if r.cseq_method == "INVITE" and 200 <= r.status < 300 and r.cseq_num in call.acks:
            self.send(call.acks[r.cseq_num])
        else:
            self.count("stray_responses")

    def _incoming(self, call: Call, data: bytes) -> None:
        """A request from the far end inside our call: BYE ends the call; anything else gets a 200."""
        req = parse_request(data)
        if req is None or req.method == "ACK":
            return
        body = b""
        if req.method == "BYE":
            call.remote_bye = True
        elif req.method == "INVITE":
            body = self._offer()
        self.send(reply_to(req, 200, "OK", body=body, extra=(f"Contact: {self.contact}",)))

    def _report_final(self, name: str, txn: Txn) -> None:
        if txn.final is not None and txn.t_final is not None:
            ok = 200 <= txn.final.status < 300
            self.report(name, txn.t_start, ms_between(txn.t_start, txn.t_final), None if ok else str(txn.final.status))
        else:
            self.report(name, txn.t_start, ms_between(txn.t_start, self.now()), "timeout")

    def _offer(self, direction: str = "sendrecv") -> bytes:
        return offer_sdp(self.local_ip, self.rtp.port if self.rtp else 9, random.getrandbits(31), direction)
