"""One account of the party: its registration state, and how it meets incoming calls (its ``auto`` policy)."""

from __future__ import annotations

import time
from typing import Any

from harness.sip.child.call import PartyCall
from harness.sip.child.call_media import MediaPlan
from harness.sip.child.pjsua import pj
from harness.sip.child.process import ChildProcess

__all__ = ["Acct"]


class Acct(pj.Account):
    def __init__(self, child: ChildProcess, name: str, auto: dict[str, Any]):
        super().__init__()
        self.child, self.name, self.auto = child, name, dict(auto)

    def onRegState(self, prm: Any) -> None:
        info = self.getInfo()
        self.child.emit("reg_state", account=self.name, code=int(prm.code), reason=str(prm.reason),
                        expires=int(prm.expiration), active=bool(info.regIsActive))

    def onIncomingCall(self, prm: Any) -> None:
        child = self.child
        c = PartyCall(child, self, child.next_call_id(), MediaPlan(**self.auto.get("media", {})), prm.callId)
        c.t_invite = time.monotonic()
        child.calls[c.cid] = c  # keep a reference, or the GC hangs the call up
        ci = c.getInfo()
        child.emit("incoming", account=self.name, call=c.cid, remote_uri=ci.remoteUri, local_uri=ci.localUri,
                   sip_call_id=ci.callIdString)
        mode = self.auto.get("mode", "manual")
        code = int(self.auto.get("code", 200 if mode == "answer" else 486))
        delay = float(self.auto.get("delay_ms", 0)) / 1000.0
        if mode == "manual":
            c.respond(180)
            return
        if mode == "answer" or mode == "reject":
            if delay > 0:
                c.respond(180)
                child.after(delay, lambda: c.respond(code))
            else:
                c.respond(code)
        elif mode == "ring":
            c.respond(180)
