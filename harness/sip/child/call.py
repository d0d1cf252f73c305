"""One call of the party: its state and times, DTMF, transfers, its statistics, and what remains once it ends.

:class:`PartyCall` is the pjsua2 call (its audio is :class:`harness.sip.child.call_media.CallMedia`);
after DISCONNECTED the process keeps an :class:`EndedCall` in its place: the facts, no pjsua2 object.
"""

from __future__ import annotations

import time
from typing import Any

from harness.contracts.rtp_stats import aggregate_stats
from harness.sip.child.call_media import CallMedia, MediaPlan
from harness.sip.child.pjsua import MEDIA_STATUS, STATE_NAMES, pj
from harness.sip.child.process import ChildProcess
from harness.sip.child.stream_stats import stream_snapshot

__all__ = ["EndedCall", "PartyCall"]


class PartyCall(CallMedia, pj.Call):
    def __init__(self, child: ChildProcess, acc: Any, cid: str, plan: MediaPlan,
                 call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.child, self.acc, self.cid = child, acc, cid
        self.init_media(plan)
        self.done = False
        self.t_invite: float | None = None
        self.t_xfer: float | None = None
        self.times: dict[str, float] = {}
        self.last_stats: dict[str, Any] = {}
        self.stream_history: list[dict[str, Any]] = []
        self.sip_call_id = ""

    def respond(self, code: int) -> None:
        if self.done:
            return
        prm = pj.CallOpParam(True)
        prm.statusCode = code
        self.answer(prm)

    def info_dict(self) -> dict[str, Any]:
        if self.done:
            return {"call": self.cid, "state": "DISCONNECTED", "sip_call_id": self.sip_call_id, "times": self.times}
        ci = self.getInfo()
        return {"call": self.cid, "state": STATE_NAMES.get(ci.state, str(ci.state)), "code": ci.lastStatusCode,
                "reason": ci.lastReason, "sip_call_id": ci.callIdString, "remote_uri": ci.remoteUri,
                "local_uri": ci.localUri, "times": self.times,
                "media": [MEDIA_STATUS.get(m.status, str(m.status)) for m in ci.media]}

    def onCallState(self, prm: Any) -> None:
        now = time.monotonic()
        ci = self.getInfo()
        self.sip_call_id = ci.callIdString
        state = STATE_NAMES.get(ci.state, str(ci.state))
        code = int(ci.lastStatusCode)
        if state == "EARLY" and code in (180, 183):
            self.times.setdefault(f"t_{code}", now)
            self.times.setdefault("t_provisional", now)
        elif state == "CONNECTING":
            self.times.setdefault("t_200", now)
        elif state == "CONFIRMED":
            self.times.setdefault("t_200", now)
            self.times.setdefault("t_confirmed", now)
        elif state == "DISCONNECTED":
            self.times.setdefault("t_disconnected", now)
        self.child.emit("call_state", call=self.cid, state=state, code=code, reason=ci.lastReason,
                        sip_call_id=ci.callIdString, role="uac" if ci.role == pj.PJSIP_ROLE_UAC else "uas",
                        remote_uri=ci.remoteUri, t=now, times=dict(self.times),
                        t_invite=self.t_invite)
        if state == "DISCONNECTED":
            self.done = True
            self.stop_player()
            # Keep recorder finalisation for the parent's stop_record; drop the pjsua2 slot now: a stale
            # Call object dropped later would hang up whatever new call reuses this slot.
            self.child.after(0.0, lambda: self._release())

    def _release(self) -> None:
        self.probes.clear()
        if self.bridged is not None:
            self.bridged.bridged = None
            self.bridged = None
        self.hold_player = None
        path = self.stop_recorder(pump=False)
        if path:
            # the bridge drops the recorder asynchronously; the WAV is complete a few ticks later
            self.child.after(0.4, lambda: self.child.emit("recording_closed", call=self.cid, path=path))
        calls = self.child.calls
        if calls.get(self.cid) is self:
            calls[self.cid] = EndedCall(self)

    # ---- statistics -------------------------------------------------------------------------------
    def stream_stats(self) -> dict[str, Any]:
        idx = getattr(self, "media_index", None)
        if idx is None:
            return {}
        st = self.getStreamStat(idx)
        si = self.getStreamInfo(idx)
        return stream_snapshot(st, si)

    def onStreamDestroyed(self, prm: Any) -> None:
        # the last moment the stream's RTP/RTCP statistics exist; DISCONNECTED comes after. A re-INVITE
        # (hold, resume) replaces the stream, so keep each one's figures and add them up.
        try:
            snap = self.stream_stats()
        except pj.Error:
            return
        if snap:
            self.stream_history.append(snap)
            self.last_stats = aggregate_stats(self.stream_history)

    def stats(self) -> dict[str, Any]:
        """Figures over the whole call: every stream the call had so far, and the live one."""
        snaps = list(self.stream_history)
        if not self.done:
            try:
                live = self.stream_stats()
            except pj.Error:
                live = {}
            if live:
                snaps.append(live)
        return aggregate_stats(snaps)

    # ---- DTMF and transfers -----------------------------------------------------------------------
    def onDtmfDigit(self, prm: Any) -> None:
        self.child.emit("dtmf", call=self.cid, digit=prm.digit,
                        method="rfc2833" if prm.method == pj.PJSUA_DTMF_METHOD_RFC2833 else "info")

    def onCallTransferRequest(self, prm: Any) -> None:
        policy = self.acc.auto.get("transfer", "accept")
        if policy != "accept":
            prm.statusCode = int(self.acc.auto.get("transfer_code", 603))
            self.child.emit("xfer_request", call=self.cid, target=prm.dstUri, accepted=False,
                            code=prm.statusCode)
            return
        nc = PartyCall(self.child, self.acc, self.child.next_call_id(), MediaPlan(**vars(self.plan)))
        nc.t_invite = time.monotonic()
        self.child.calls[nc.cid] = nc
        prm.newCall = nc  # without this the transferred call has no callbacks and no audio
        self.child.emit("xfer_request", call=self.cid, target=prm.dstUri, accepted=True, new_call=nc.cid)

    def onCallTransferStatus(self, prm: Any) -> None:
        self.child.emit("xfer_status", call=self.cid, code=int(prm.statusCode), reason=prm.reason,
                        final=bool(prm.finalNotify))

    def onCallReplaced(self, prm: Any) -> None:
        nc = PartyCall(self.child, self.acc, self.child.next_call_id(), MediaPlan(**vars(self.plan)),
                       prm.newCallId)
        self.child.calls[nc.cid] = nc
        prm.newCall = nc
        self.child.emit("replaced", call=self.cid, new_call=nc.cid)


class EndedCall:
    """What remains of a call after DISCONNECTED: its facts, without a pjsua2 object."""

    def __init__(self, c: PartyCall):
        self.cid, self.done, self.times = c.cid, True, dict(c.times)
        self.last_stats, self.recorded, self.sip_call_id = c.last_stats, c.recorded, c.sip_call_id

    def stop_recorder(self, pump: bool = True) -> str | None:
        return self.recorded

    def stop_player(self) -> None:
        pass

    def stop_probes(self) -> None:
        pass

    def info_dict(self) -> dict[str, Any]:
        return {"call": self.cid, "state": "DISCONNECTED", "sip_call_id": self.sip_call_id, "times": self.times}
