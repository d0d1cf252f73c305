"""The load engine's SIP user agent client: REGISTER, OPTIONS, calls (INVITE -> ACK -> hold re-INVITE
-> BYE) and CANCEL, written as generator flows that a :class:`~harness.load.scheduler.Scheduler` drives.

A flow yields the time it next needs to run (a timer: retransmission, timeout, end of hold) and is
resumed with ``(t_received, datagram)`` for a datagram of its call, or ``None`` when its time came
(or the run drains). No greenlet per call, no queue, no timer object per wait: that is what lets one
Python process keep up with SIPp-class rates. The flows never block and never touch a socket; they
``send(data) -> t_sent`` through a callable, so unit tests drive them with literal SIP text and a
fake clock.

Each transaction is a :class:`Txn` with RFC 3261 timers (:mod:`harness.load.timers`), matched to
responses by Via branch and CSeq method. 401/407 challenges are answered once with
:func:`harness.contracts.sipmsg.digest_authorization`. Dialogs follow RFC 3261 12.1.2: the remote target is the
2xx Contact and the route set is the Record-Route in reverse; the Request-URI and Route headers
follow it, while every packet goes to the target address (the outbound proxy).

Results go to ``report(name, t_start, ms, error)``: ``error`` is None, a SIP status ("486") or
"timeout". Names: ``REGISTER``, ``OPTIONS``, ``call:setup`` (INVITE -> 2xx), ``call:ringing``
(INVITE -> 180/183), ``call:reinvite``, ``BYE``, ``CANCEL``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Generator
from typing import Protocol

from harness.contracts.sipmsg import SipParseError, digest_authorization
from harness.load.plan import UacPlan
from harness.load.timers import Action, ClientTimers, TimerPolicy
from harness.load.wire import (
    Response,
    build_request,
    offer_sdp,
    parse_request,
    parse_response,
    reply_to,
    sdp_media_addr,
)

__all__ = ["Call", "Flow", "Item", "Reporter", "RtpControl", "Txn", "Uac"]

Item = tuple[float, bytes]  # (t_received, datagram)
#: yields "resume me at this time" (math.inf: only for a datagram), receives an Item or None
Flow = Generator[float, "Item | None", None]


class Reporter(Protocol):
    def __call__(self, name: str, t_start: float, ms: float, error: str | None) -> None: ...


class RtpControl(Protocol):
    """What a call needs of the RTP pump (:class:`harness.load.rtp.RtpPump`)."""

    port: int

    def open(self, ip: str, port: int, pt: int) -> int | None: ...

    def close_stream(self, sid: int | None) -> None: ...


class Txn:
    """One client transaction: what was sent, its timers, and what came back when."""

    __slots__ = ("ack", "branch", "data", "final", "method", "routes", "ruri", "t_1xx", "t_180", "t_final", "t_sent",
                 "t_start", "timed_out", "timers")

    def __init__(self, method: str, branch: str, data: bytes, timers: ClientTimers, t_sent: float, ruri: str = "",
                 routes: tuple[str, ...] = ()):
        self.method, self.branch, self.data, self.timers = method, branch, data, timers
        self.ruri, self.routes = ruri, routes
        self.t_sent = self.t_start = t_sent
        self.t_1xx: float | None = None
        self.t_180: float | None = None
        self.final: Response | None = None
        self.t_final: float | None = None
        self.timed_out = False
        self.ack: bytes | None = None  # the ACK of a non-2xx final response, resent if it comes again

    @property
    def done(self) -> bool:
        return self.final is not None or self.timed_out

    def on_response(self, r: Response, t: float) -> bool:
        """Take a response; False when it repeats a final response already taken."""
        if self.final is not None:
            return False
        if r.status < 200:
            if self.t_1xx is None:
                self.t_1xx = t
            if self.t_180 is None and r.status in (180, 183):
                self.t_180 = t
        else:
            self.final, self.t_final = r, t
        self.timers.response(r.status, t)
        return True


class Call:
    """One Call-ID: the dialog as the UAC sees it."""

    __slots__ = ("acks", "call_id", "cseq", "from_hdr", "ftag", "remote_bye", "routes", "ruri", "target", "to_hdr")

    def __init__(self, call_id: str, ruri: str, from_hdr: str, to_hdr: str, ftag: str):
        self.call_id, self.ruri = call_id, ruri
        self.from_hdr, self.to_hdr, self.ftag = from_hdr, to_hdr, ftag
        self.cseq = 0
        self.target = ruri  # remote target: the 2xx Contact once there is a dialog
        self.routes: tuple[str, ...] = ()
        self.acks: dict[int, bytes] = {}  # CSeq -> ACK of its 2xx, resent when the 2xx is retransmitted
        self.remote_bye = False


def _ms(a: float, b: float) -> float:
    return (b - a) * 1000.0


def _rang(txn: Txn) -> Callable[[], bool]:
    """Done once ``txn`` has a provisional or a final response (or timed out)."""
    return lambda: txn.done or txn.t_1xx is not None


class Uac:
    """Builds the flows. ``send(data) -> t_sent`` puts a datagram on the wire to the target;
    ``bind(call_id)``/``unbind(call_id)`` route a Call-ID's datagrams to the running flow."""

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

    def flow(self, kind: str) -> Flow:
        """The flow of one transaction kind of the profile's mix."""
        if kind == "call":
            return self.call()
        if kind == "options":
            return self.options()
        if kind == "register":
            return self.register()
        if kind == "cancel":
            return self.cancel()
        raise ValueError(f"unknown transaction kind {kind!r}")

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
            yield from self._pump(call, [txn], done=_rang(txn) if until_provisional else None)
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
            self.report(name, txn.t_start, _ms(txn.t_start, txn.t_final), None if ok else str(txn.final.status))
        else:
            self.report(name, txn.t_start, _ms(txn.t_start, self.now()), "timeout")

    # ---- transactions -----------------------------------------------------------------------------
    def options(self) -> Flow:
        p = self.plan
        call = self._new_call(f"sip:{p.host}:{p.port}", f"sip:{p.domain}")
        try:
            txn = yield from self._request(call, "OPTIONS", ruri=call.ruri)
            self._report_final("OPTIONS", txn)
        finally:
            self.unbind(call.call_id)

    def register(self) -> Flow:
        p = self.plan
        aor = f"sip:{p.from_user}@{p.domain}"
        call = self._new_call(f"sip:{p.domain}", aor, from_uri=aor)
        try:
            txn = yield from self._request(call, "REGISTER", ruri=call.ruri,
                                           extra=(f"Expires: {p.register_expires_s}",))
            self._report_final("REGISTER", txn)
        finally:
            self.unbind(call.call_id)

    def call(self) -> Flow:
        """INVITE -> (1xx) -> 2xx -> ACK -> hold (optional hold re-INVITE) -> BYE."""
        p = self.plan
        call = self._new_call(p.call_uri)
        sid: int | None = None
        try:
            inv = yield from self._request(call, "INVITE", ruri=call.ruri, body=self._offer(),
                                           invite_timeout=p.answer_timeout_s)
            t0 = inv.t_start
            if inv.t_180 is not None:
                self.report("call:ringing", t0, _ms(t0, inv.t_180), None)
            r = inv.final
            if r is None or inv.t_final is None:
                self.report("call:setup", t0, _ms(t0, self.now()), "timeout")
                if inv.t_1xx is not None:
                    yield from self._cancel_quietly(call, inv)
                return
            if r.status >= 300:
                self.report("call:setup", t0, _ms(t0, inv.t_final), str(r.status))
                return
            self.report("call:setup", t0, _ms(t0, inv.t_final), None)
            self._confirm(call, r)
            sid = self._start_rtp(r)
            self.up += 1
            try:
                yield from self._hold_and_bye(call)
            finally:
                self.up -= 1
        finally:
            if self.rtp is not None:
                self.rtp.close_stream(sid)
            self.unbind(call.call_id)

    def _offer(self, direction: str = "sendrecv") -> bytes:
        return offer_sdp(self.local_ip, self.rtp.port if self.rtp else 9, random.getrandbits(31), direction)

    def _confirm(self, call: Call, r: Response) -> None:
        """Take the dialog from the 2xx (To tag, Contact, Record-Route reversed) and ACK it."""
        call.to_hdr = r.to or call.to_hdr
        if r.contact:
            call.target = r.contact
        call.routes = tuple(reversed(r.record_route))
        self._ack_2xx(call, r)

    def _start_rtp(self, r: Response) -> int | None:
        if self.rtp is None or not self.plan.rtp:
            return None
        media = sdp_media_addr(r.body)
        if media is None:
            self.count("rtp_no_sdp")
            return None
        return self.rtp.open(*media)

    def _hold_and_bye(self, call: Call) -> Generator[float, Item | None, None]:
        p = self.plan
        jitter = p.hold_jitter_pct / 100.0
        hold = max(0.0, p.hold_s * (1.0 + random.uniform(-jitter, jitter)))
        end = self.now() + hold
        stop = self.stopping

        def over() -> bool:
            return call.remote_bye or stop()

        if p.reinvite:
            yield from self._pump(call, [], done=over, deadline=self.now() + hold / 2.0)
            if not over():
                yield from self._reinvite(call)
        if hold > 0.0 or p.reinvite:  # no hold: BYE right after the ACK, as SIPp's -d 0 does
            yield from self._pump(call, [], done=over, deadline=end)
        if call.remote_bye:
            self.count("remote_bye")
            return
        call.cseq += 1
        bye = self._send(call, "BYE", ruri=call.target, to_hdr=call.to_hdr, routes=call.routes, contact=False)
        yield from self._pump(call, [bye])
        self._report_final("BYE", bye)

    def _reinvite(self, call: Call) -> Generator[float, Item | None, None]:
        """Put the call on hold with a re-INVITE (a=sendonly), as a PBX's hold button does."""
        call.cseq += 1
        txn = self._send(call, "INVITE", ruri=call.target, to_hdr=call.to_hdr, routes=call.routes,
                         body=self._offer("sendonly"), invite_timeout=self.plan.answer_timeout_s)
        yield from self._pump(call, [txn])
        self._report_final("call:reinvite", txn)
        if txn.final is not None and 200 <= txn.final.status < 300:
            self._ack_2xx(call, txn.final)

    def _cancel_txn(self, call: Call, inv: Txn) -> Txn:
        """CANCEL: same branch, Request-URI, Call-ID, From, To (no tag) and CSeq number as the INVITE."""
        return self._send(call, "CANCEL", ruri=call.ruri, to_hdr=call.to_hdr, branch=inv.branch, cseq=call.cseq,
                          contact=False)

    def _cancel_quietly(self, call: Call, inv: Txn) -> Generator[float, Item | None, None]:
        """End a call that rang past the answer timeout (not reported: the setup failure already was)."""
        cancel = self._cancel_txn(call, inv)
        inv.timed_out = False
        inv.timers.extend(self.now() + self.policy.timeout)
        yield from self._pump(call, [cancel, inv])
        if inv.final is not None and inv.final.status < 300:
            self._confirm(call, inv.final)
            yield from self._bye_quietly(call)

    def cancel(self) -> Flow:
        """INVITE -> 1xx -> (cancel_after_s) -> CANCEL -> 200 (CANCEL) + 487 (INVITE) -> ACK."""
        p = self.plan
        call = self._new_call(p.ring_uri)
        try:
            inv = yield from self._request(call, "INVITE", ruri=call.ruri, body=self._offer(), until_provisional=True,
                                           invite_timeout=p.answer_timeout_s + p.cancel_after_s + 5.0)
            if inv.final is not None or inv.t_1xx is None:
                yield from self._cancel_outcome_early(call, inv)
                return
            t0 = inv.t_start
            if inv.t_180 is not None:
                self.report("call:ringing", t0, _ms(t0, inv.t_180), None)
            yield from self._pump(call, [inv], done=lambda: inv.done, deadline=self.now() + p.cancel_after_s)
            if inv.final is not None:
                yield from self._cancel_outcome_early(call, inv)
                return
            cancel = self._cancel_txn(call, inv)
            yield from self._pump(call, [cancel, inv])
            f = inv.final
            if f is not None and f.status < 300:  # answered although cancelled: hang the call up again
                self._confirm(call, f)
                yield from self._bye_quietly(call)
            c = cancel.final
            if c is None or cancel.t_final is None:
                self.report("CANCEL", cancel.t_sent, _ms(cancel.t_sent, self.now()), "timeout")
            elif c.status != 200:
                self.report("CANCEL", cancel.t_sent, _ms(cancel.t_sent, cancel.t_final), str(c.status))
            elif f is None or f.status != 487:
                self.report("CANCEL", cancel.t_sent, _ms(cancel.t_sent, cancel.t_final),
                            "timeout" if f is None else str(f.status))
            else:
                self.report("CANCEL", cancel.t_sent, _ms(cancel.t_sent, cancel.t_final), None)
        finally:
            self.unbind(call.call_id)

    def _cancel_outcome_early(self, call: Call, inv: Txn) -> Generator[float, Item | None, None]:
        """The INVITE to the ringing number ended before it could be cancelled: a CANCEL failure."""
        f = inv.final
        t0 = inv.t_start
        if f is None:
            self.report("CANCEL", t0, _ms(t0, self.now()), "timeout")
            return
        self.report("CANCEL", t0, _ms(t0, inv.t_final or self.now()), str(f.status))
        if f.status < 300:
            self._confirm(call, f)
            yield from self._bye_quietly(call)

    def _bye_quietly(self, call: Call) -> Generator[float, Item | None, None]:
        call.cseq += 1
        bye = self._send(call, "BYE", ruri=call.target, to_hdr=call.to_hdr, routes=call.routes, contact=False)
        yield from self._pump(call, [bye])
