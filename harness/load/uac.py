"""The load engine's SIP user agent client: REGISTER, OPTIONS, calls (INVITE -> ACK -> hold re-INVITE
-> BYE) and CANCEL, written as generator flows that a :class:`~harness.load.scheduler.Scheduler` drives.

A flow yields the time it next needs to run (a timer: retransmission, timeout, end of hold) and is
resumed with ``(t_received, datagram)`` for a datagram of its call, or ``None`` when its time came
(or the run drains). No greenlet per call, no queue, no timer object per wait: that is what lets one
Python process keep up with SIPp-class rates. The flows never block and never touch a socket; they
``send(data) -> t_sent`` through a callable, so unit tests drive them with literal SIP text and a
fake clock.

Transactions, dialogs and the flow types are :mod:`harness.load.txn`'s; sending, ACKs and matching
responses to transactions :mod:`harness.load.uacbase`'s. Dialogs follow RFC 3261 12.1.2: the remote
target is the 2xx Contact and the route set is the Record-Route in reverse; the Request-URI and Route
headers follow it, while every packet goes to the target address (the outbound proxy). The RTP of an
answered call goes where the answer's SDP says (:func:`harness.contracts.sdp.first_audio`).

Results go to ``report(name, t_start, ms, error)``: ``error`` is None, a SIP status ("486") or
"timeout". Names: ``REGISTER``, ``OPTIONS``, ``call:setup`` (INVITE -> 2xx), ``call:ringing``
(INVITE -> 180/183), ``call:reinvite``, ``BYE``, ``CANCEL``.
"""

from __future__ import annotations

import random
from collections.abc import Generator

from harness.contracts.sdp import first_audio
from harness.load.txn import Call, Flow, Item, Txn, ms_between
from harness.load.uacbase import UacBase
from harness.load.wire import Response

__all__ = ["Uac"]


class Uac(UacBase):
    """Builds the flows (see :class:`~harness.load.uacbase.UacBase` for what it is given)."""

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
                self.report("call:ringing", t0, ms_between(t0, inv.t_180), None)
            r = inv.final
            if r is None or inv.t_final is None:
                self.report("call:setup", t0, ms_between(t0, self.now()), "timeout")
                if inv.t_1xx is not None:
                    yield from self._cancel_quietly(call, inv)
                return
            if r.status >= 300:
                self.report("call:setup", t0, ms_between(t0, inv.t_final), str(r.status))
                return
            self.report("call:setup", t0, ms_between(t0, inv.t_final), None)
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
        media = first_audio(r.body)
        if media is None or media.connectable is None or not media.port:
            self.count("rtp_no_sdp")
            return None
        return self.rtp.open(media.connectable, media.port, media.payloads[0] if media.payloads else -1)

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
                self.report("call:ringing", t0, ms_between(t0, inv.t_180), None)
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
                self.report("CANCEL", cancel.t_sent, ms_between(cancel.t_sent, self.now()), "timeout")
            elif c.status != 200:
                self.report("CANCEL", cancel.t_sent, ms_between(cancel.t_sent, cancel.t_final), str(c.status))
            elif f is None or f.status != 487:
                self.report("CANCEL", cancel.t_sent, ms_between(cancel.t_sent, cancel.t_final),
                            "timeout" if f is None else str(f.status))
            else:
                self.report("CANCEL", cancel.t_sent, ms_between(cancel.t_sent, cancel.t_final), None)
        finally:
            self.unbind(call.call_id)

    def _cancel_outcome_early(self, call: Call, inv: Txn) -> Generator[float, Item | None, None]:
        """The INVITE to the ringing number ended before it could be cancelled: a CANCEL failure."""
        f = inv.final
        t0 = inv.t_start
        if f is None:
            self.report("CANCEL", t0, ms_between(t0, self.now()), "timeout")
            return
        self.report("CANCEL", t0, ms_between(t0, inv.t_final or self.now()), str(f.status))
        if f.status < 300:
            self._confirm(call, f)
            yield from self._bye_quietly(call)

    def _bye_quietly(self, call: Call) -> Generator[float, Item | None, None]:
        call.cseq += 1
        bye = self._send(call, "BYE", ruri=call.target, to_hdr=call.to_hdr, routes=call.routes, contact=False)
        yield from self._pump(call, [bye])
