"""A SIP party: one pjsua2 endpoint in its own process, driven over a pipe (see ``protocol``).

Run as ``python -m harness.sip.child``; the parent (:class:`harness.sip.party.Party`) speaks JSON lines
on stdin and reads replies and events from stdout. pjsua writes its own logs to fd 1, so the protocol
moves to a private copy of fd 1 and fd 1 is pointed at stderr before pjsua2 is imported.

Everything pjsua2 does runs on this process's main thread (``threadCnt = 0``); the loop alternates
``libHandleEvents`` with reading commands, so callbacks and commands never race.

The wheel's limits (4 calls, 8 accounts, ~55 new calls/s, 32 players) are enforced here, before
pjsua2 is asked: a command that would exceed one gets an error reply instead of an abort.
"""

from __future__ import annotations

import contextlib
import gc
import os
import resource
import select
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROTO_FD = os.dup(1)
os.dup2(2, 1)
# a pjsua2 assertion aborts the process: that is reported from the log, no core file is wanted
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
# Ctrl-C reaches the whole process group: the harness closes its parties in order, so a party must not
# die half-way on its own (pjsua would be left without libDestroy)
signal.signal(signal.SIGINT, signal.SIG_IGN)

import pjsua2 as pj  # noqa: E402  (must come after the fd shuffle above)

from harness.contracts.rtp import aggregate_stats  # noqa: E402
from harness.sip.health import HealthBook, Watchdog, make_clock_probe  # noqa: E402
from harness.sip.protocol import LIMITS, decode, encode  # noqa: E402
from harness.sip.realtime import Priority, elevate  # noqa: E402

STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}
MEDIA_STATUS = {
    pj.PJSUA_CALL_MEDIA_NONE: "none",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
    pj.PJSUA_CALL_MEDIA_ERROR: "error",
}
TRANSPORTS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP, "tls": pj.PJSIP_TRANSPORT_TLS}


class CommandError(Exception):
    """A command the child refuses; becomes an ``ok: false`` reply."""


@dataclass
class MediaPlan:
    """What to do with a call's audio once media is active."""

    play: str | None = None
    loop: bool = False
    record: str | None = None
    hold_mute: bool = True  # a phone stops sending its microphone while it holds a call
    hold_music: str | None = None  # ...and may play music on hold instead
    echo: bool = False  # send back what the call receives, as a PBX's echo-test number does


class Child:
    def __init__(self) -> None:
        self.ep: Any = None
        self.out: list[dict[str, Any]] = []
        self.accounts: dict[str, Acct] = {}
        self.calls: dict[str, PartyCall] = {}
        self.call_seq = 0
        self.timers: list[tuple[float, Callable[[], None]]] = []
        self.new_call_times: list[float] = []
        self.players = 0
        self.running = True
        self.health = HealthBook()
        self.watchdog: Watchdog | None = None
        self.clock_probe: Any = None
        self.priority = Priority("normal")

    # ---- output -----------------------------------------------------------------------------------
    def emit(self, event: str, **fields: Any) -> None:
        fields.setdefault("t", time.monotonic())
        fields["wall"] = time.time()
        self.out.append({"event": event, **fields})

    def flush(self) -> None:
        if self.out:
            data = b"".join(encode(o) for o in self.out)
            self.out.clear()
            view = memoryview(data)
            while view:
                n = os.write(PROTO_FD, view)
                view = view[n:]

    def next_call_id(self) -> str:
        self.call_seq += 1
        return f"c{self.call_seq}"

    def live_calls(self) -> list[PartyCall]:
        return [c for c in self.calls.values() if not c.done]

    def call(self, cid: str) -> PartyCall:
        c = self.calls.get(cid)
        if c is None:
            raise CommandError(f"no call {cid!r}")
        if c.done:
            raise CommandError(f"call {cid} has ended")
        return c

    def account(self, name: str) -> Acct:
        a = self.accounts.get(name)
        if a is None:
            raise CommandError(f"no account {name!r} in this party")
        return a

    def after(self, delay: float, fn: Callable[[], None]) -> None:
        self.timers.append((time.monotonic() + delay, fn))

    def run_timers(self) -> None:
        now = time.monotonic()
        due = [t for t in self.timers if t[0] <= now]
        if due:
            self.timers = [t for t in self.timers if t[0] > now]
            for _, fn in due:
                try:
                    fn()
                except pj.Error as exc:
                    self.emit("warning", message=f"timer action failed: {exc.info()}")

    # ---- commands ---------------------------------------------------------------------------------
    def cmd_init(self, a: dict[str, Any]) -> dict[str, Any]:
        if self.ep is not None:
            raise CommandError("already initialised")
        # before pjsua creates its media threads, which inherit the policy (see harness.sip.realtime)
        self.priority = elevate(str(a.get("priority", "realtime")))
        ep = pj.Endpoint()
        ep.libCreate()
        cfg = pj.EpConfig()
        cfg.uaConfig.threadCnt = 0
        cfg.uaConfig.mainThreadOnly = True
        cfg.uaConfig.maxCalls = LIMITS["max_calls"]
        cfg.uaConfig.userAgent = a.get("user_agent", "harness-party")
        cfg.logConfig.level = int(a.get("log_level", 4))
        cfg.logConfig.consoleLevel = int(a.get("console_level", 2))
        cfg.logConfig.msgLogging = True
        if a.get("log_file"):
            cfg.logConfig.filename = a["log_file"]
        cfg.medConfig.noVad = True
        cfg.medConfig.clockRate = int(a.get("clock_rate", 8000))
        cfg.medConfig.sndClockRate = cfg.medConfig.clockRate
        cfg.medConfig.ecTailLen = 0  # the harness measures echo; it must not cancel it
        # jitter_buffer_ms fixes the jitter buffer (pjsua's adaptive one is the default: measured here, a
        # fixed 60 ms one did worse under scheduling jitter, with larger jumps and a lower MOS)
        jb = int(a.get("jitter_buffer_ms", 0))
        if jb > 0:
            cfg.medConfig.jbInit = jb
            cfg.medConfig.jbMinPre = jb
            cfg.medConfig.jbMaxPre = jb
            cfg.medConfig.jbMax = max(4 * jb, 300)
        ep.libInit(cfg)
        ep.audDevManager().setNullDev()
        tc = pj.TransportConfig()
        tc.port = int(a.get("sip_port", 0))
        tc.boundAddress = a.get("local_ip", "127.0.0.1")
        if a.get("public_ip"):
            tc.publicAddress = a["public_ip"]
        transport = a.get("transport", "udp")
        if transport not in TRANSPORTS:
            raise CommandError(f"unknown transport {transport!r}")
        if transport == "tls":
            tc.tlsConfig.verifyServer = bool(a.get("tls_verify", False))
        self.transport_id = ep.transportCreate(TRANSPORTS[transport], tc)
        ep.libStart()
        codecs = [c.upper() for c in a.get("codecs", ["PCMU", "PCMA"])]
        for ci in ep.codecEnum2():
            name = ci.codecId.split("/")[0].upper()
            prio = 255 - codecs.index(name) if name in codecs else 0
            ep.codecSetPriority(ci.codecId, prio)
        self.ep = ep
        # a silent source on every recorder keeps its timeline continuous while a stream is down
        # (hold, re-INVITE): without it the bridge writes nothing and the WAV loses that time
        self.silence = pj.ToneGenerator()
        self.silence.createToneGenerator(cfg.medConfig.clockRate)
        # the party's own health: its wake-ups and its media clock (harness.sip.health)
        self.clock_probe = make_clock_probe(pj, self.health, cfg.medConfig.clockRate,
                                            int(cfg.medConfig.audioFramePtime or 20))
        self.silence.startTransmit(self.clock_probe)
        self.watchdog = Watchdog(self.health)
        self.watchdog.start()
        self.local_ip = tc.boundAddress
        self.rtp_port = int(a.get("rtp_port", 40000))
        self.rtp_range = int(a.get("rtp_range", 100))
        info = ep.transportGetInfo(self.transport_id)
        return {"sip_address": info.localName, "pid": os.getpid(), "limits": LIMITS,
                "priority": self.priority.as_dict()}

    def cmd_add_account(self, a: dict[str, Any]) -> dict[str, Any]:
        if self.ep is None:
            raise CommandError("init first")
        name = a["name"]
        if name in self.accounts:
            raise CommandError(f"account {name!r} exists")
        if len(self.accounts) >= LIMITS["max_accounts"]:
            raise CommandError(f"account limit reached: {LIMITS['max_accounts']} accounts per party process")
        ac = pj.AccountConfig()
        ac.idUri = a["id_uri"]
        ac.regConfig.registrarUri = a.get("registrar", "")
        ac.regConfig.registerOnAdd = bool(a.get("register", True))
        ac.regConfig.timeoutSec = int(a.get("expires", 300))
        ac.regConfig.retryIntervalSec = 0  # a failed registration is a test result, not something to retry
        for proxy in a.get("proxies", []):
            ac.sipConfig.proxies.append(proxy)
        ac.sipConfig.transportId = self.transport_id
        if a.get("username"):
            ac.sipConfig.authCreds.append(pj.AuthCredInfo(
                "digest", a.get("realm", "*"), a["auth_username"] or a["username"], 0, a["password"]))
        ac.mediaConfig.transportConfig.boundAddress = self.local_ip
        ac.mediaConfig.transportConfig.port = self.rtp_port
        ac.mediaConfig.transportConfig.portRange = self.rtp_range
        ac.natConfig.iceEnabled = False
        ac.natConfig.sipStunUse = pj.PJSUA_STUN_USE_DISABLED
        ac.natConfig.mediaStunUse = pj.PJSUA_STUN_USE_DISABLED
        acc = Acct(self, name, a.get("auto", {}))
        acc.create(ac)
        self.accounts[name] = acc
        return {"account": name}

    def cmd_set_auto(self, a: dict[str, Any]) -> dict[str, Any]:
        self.account(a["account"]).auto = dict(a.get("auto", {}))
        return {}

    def cmd_register(self, a: dict[str, Any]) -> dict[str, Any]:
        self.account(a["account"]).setRegistration(bool(a.get("renew", True)))
        return {}

    def cmd_call(self, a: dict[str, Any]) -> dict[str, Any]:
        acc = self.account(a["account"])
        if len(self.live_calls()) >= LIMITS["max_calls"]:
            raise CommandError(f"call limit reached: {LIMITS['max_calls']} concurrent calls per party process")
        now = time.monotonic()
        self.new_call_times = [t for t in self.new_call_times if now - t < 1.0]
        if len(self.new_call_times) >= LIMITS["max_new_calls_per_s"]:
            raise CommandError(f"call rate limit: {LIMITS['max_new_calls_per_s']:.0f} new calls/s per party process")
        self.new_call_times.append(now)
        c = PartyCall(self, acc, self.next_call_id(), MediaPlan(**a.get("media", {})))
        prm = pj.CallOpParam(True)
        for hname, hval in a.get("headers", {}).items():
            h = pj.SipHeader()
            h.hName, h.hValue = hname, hval
            prm.txOption.headers.append(h)
        c.t_invite = time.monotonic()
        self.calls[c.cid] = c
        try:
            c.makeCall(a["uri"], prm)
        except pj.Error as exc:
            c.done = True
            del self.calls[c.cid]
            raise CommandError(f"makeCall failed: {exc.info()}") from None
        return {"call": c.cid, "t_invite": c.t_invite}

    def cmd_answer(self, a: dict[str, Any]) -> dict[str, Any]:
        c = self.call(a["call"])
        if "media" in a:
            c.plan = MediaPlan(**a["media"])
        prm = pj.CallOpParam(True)
        prm.statusCode = int(a.get("code", 200))
        c.answer(prm)
        return {}

    def cmd_hangup(self, a: dict[str, Any]) -> dict[str, Any]:
        c = self.call(a["call"])
        prm = pj.CallOpParam(True)
        if a.get("code"):
            prm.statusCode = int(a["code"])
        c.hangup(prm)
        return {}

    def cmd_hold(self, a: dict[str, Any]) -> dict[str, Any]:
        self.call(a["call"]).setHold(pj.CallOpParam(True))
        return {}

    def cmd_resume(self, a: dict[str, Any]) -> dict[str, Any]:
        prm = pj.CallOpParam(True)
        prm.opt.flag = pj.PJSUA_CALL_UNHOLD
        self.call(a["call"]).reinvite(prm)
        return {}

    def cmd_dtmf(self, a: dict[str, Any]) -> dict[str, Any]:
        digits = str(a["digits"])
        if not digits or any(ch not in "0123456789*#ABCDabcd" for ch in digits):
            raise CommandError(f"invalid DTMF digits {digits!r}")
        prm = pj.CallSendDtmfParam()
        prm.digits = digits
        prm.method = pj.PJSUA_DTMF_METHOD_RFC2833
        prm.duration = int(a.get("duration_ms", 160))
        self.call(a["call"]).sendDtmf(prm)
        return {"t": time.monotonic()}

    def cmd_xfer(self, a: dict[str, Any]) -> dict[str, Any]:
        c = self.call(a["call"])
        c.t_xfer = time.monotonic()
        c.xfer(a["target"], pj.CallOpParam(True))
        return {"t": c.t_xfer}

    def cmd_xfer_replaces(self, a: dict[str, Any]) -> dict[str, Any]:
        c = self.call(a["call"])
        other = self.call(a["other"])
        c.t_xfer = time.monotonic()
        c.xferReplaces(other, pj.CallOpParam(True))
        return {"t": c.t_xfer}

    def cmd_play(self, a: dict[str, Any]) -> dict[str, Any]:
        c = self.call(a["call"])
        c.plan.play, c.plan.loop = a["wav"], bool(a.get("loop", False))
        c.start_player()
        return {"t": time.monotonic()}  # when the reference started (the start offset of a recording)

    def cmd_stop_play(self, a: dict[str, Any]) -> dict[str, Any]:
        self.call(a["call"]).stop_player()
        return {}

    def cmd_record(self, a: dict[str, Any]) -> dict[str, Any]:
        """An extra recording of what the call receives from now on (the call's own one goes on)."""
        c = self.call(a["call"])
        c.start_probe(str(a["path"]))
        return {"path": a["path"], "t": time.monotonic()}

    def cmd_stop_record(self, a: dict[str, Any]) -> dict[str, Any]:
        """Finish the extra recording ``path``, or with no path the call's own recording."""
        c = self.calls.get(a["call"])
        if c is None:
            raise CommandError(f"no call {a['call']!r}")
        t = time.monotonic()  # the recording's last moment: its WAV is finished after the bridge lets go
        if a.get("path"):
            return {"path": c.stop_probe(str(a["path"])), "t": t}
        return {"path": c.stop_recorder(), "t": t}

    def cmd_bridge(self, a: dict[str, Any]) -> dict[str, Any]:
        """Connect two calls' audio both ways, as a PBX bridges a caller to an agent."""
        first, second = self.call(a["call"]), self.call(a["other"])
        for c in (first, second):
            c.stop_player()
        first.bridged, second.bridged = second, first
        first.connect_bridge()
        return {}

    def cmd_unbridge(self, a: dict[str, Any]) -> dict[str, Any]:
        c = self.call(a["call"])
        c.disconnect_bridge()
        return {}

    def cmd_stats(self, a: dict[str, Any]) -> dict[str, Any]:
        c = self.calls.get(a["call"])
        if c is None:
            raise CommandError(f"no call {a['call']!r}")
        return c.last_stats if c.done else c.stats()

    def cmd_info(self, a: dict[str, Any]) -> dict[str, Any]:
        c = self.calls.get(a["call"])
        if c is None:
            raise CommandError(f"no call {a['call']!r}")
        return c.info_dict()

    def cmd_health(self, a: dict[str, Any]) -> dict[str, Any]:
        """The health buckets from monotonic time ``since`` (to ``until``), and the scheduling it runs under."""
        until = a.get("until")
        return {**self.health.since(float(a.get("since", 0.0)), None if until is None else float(until)),
                "priority": self.priority.as_dict(), "now": time.monotonic()}

    def cmd_ping(self, a: dict[str, Any]) -> dict[str, Any]:
        return {"calls": len(self.live_calls()), "accounts": list(self.accounts)}

    def cmd_crash(self, a: dict[str, Any]) -> dict[str, Any]:
        """Test hook: die the way a pjsua2 assertion does."""
        self.flush()
        os.abort()

    def cmd_quit(self, a: dict[str, Any]) -> dict[str, Any]:
        self.running = False
        return {}

    # ---- main loop --------------------------------------------------------------------------------
    def handle(self, msg: dict[str, Any]) -> None:
        mid = msg.get("id")
        cmd = msg.get("cmd", "")
        fn = getattr(self, f"cmd_{cmd}", None)
        if fn is None:
            self.out.append({"id": mid, "ok": False, "error": f"unknown command {cmd!r}"})
            return
        try:
            result = fn(msg.get("args", {}))
            self.out.append({"id": mid, "ok": True, "result": result})
        except CommandError as exc:
            self.out.append({"id": mid, "ok": False, "error": str(exc)})
        except pj.Error as exc:
            self.out.append({"id": mid, "ok": False, "error": f"pjsua2: {exc.info()}"})
        except (KeyError, TypeError, ValueError) as exc:
            self.out.append({"id": mid, "ok": False, "error": f"bad arguments for {cmd}: {exc!r}"})

    def loop(self) -> None:
        buf = b""
        os.set_blocking(0, False)
        self.out.append({"event": "hello", "pid": os.getpid(), "t": time.monotonic()})
        self.flush()
        while self.running:
            if self.ep is not None:
                self.ep.libHandleEvents(10)
                self.run_timers()
                ready = select.select([0], [], [], 0)[0]
            else:
                ready = select.select([0], [], [], 0.05)[0]
            if ready:
                try:
                    data = os.read(0, 1 << 16)
                except BlockingIOError:
                    data = None
                if data == b"":
                    break  # parent went away: shut down cleanly
                if data:
                    buf += data
                    *lines, buf = buf.split(b"\n")
                    for line in lines:
                        if line.strip():
                            try:
                                msg = decode(line)
                            except ValueError as exc:
                                self.out.append({"id": None, "ok": False, "error": f"bad protocol line: {exc}"})
                                continue
                            self.handle(msg)
            self.flush()
        self.shutdown()

    def pump(self, seconds: float, until: Callable[[], bool] | None = None) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.ep.libHandleEvents(20)
            if until is not None and until():
                return

    def shutdown(self) -> None:
        """FACTS' teardown order; a Call alive after libDestroy aborts the process."""
        if self.ep is None:
            self.flush()
            return
        self.ep.hangupAllCalls()
        self.pump(2.0, lambda: not self.live_calls())
        for c in self.calls.values():
            c.stop_player()
            c.stop_recorder(pump=False)
            c.stop_probes()
        self.pump(0.3)
        self.calls.clear()
        for acc in self.accounts.values():
            with contextlib.suppress(pj.Error):
                acc.shutdown()
        self.pump(0.5)
        self.accounts.clear()
        if self.watchdog is not None:
            self.watchdog.stop()
        if self.clock_probe is not None:
            with contextlib.suppress(pj.Error):
                self.silence.stopTransmit(self.clock_probe)
            self.clock_probe = None
        self.silence = None
        gc.collect()
        self.emit("bye")
        self.flush()
        self.ep.libDestroy()
        self.ep = None


class Acct(pj.Account):
    def __init__(self, child: Child, name: str, auto: dict[str, Any]):
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


class PartyCall(pj.Call):
    def __init__(self, child: Child, acc: Acct, cid: str, plan: MediaPlan, call_id: int = pj.PJSUA_INVALID_ID):
        super().__init__(acc, call_id)
        self.child, self.acc, self.cid, self.plan = child, acc, cid, plan
        self.done = False
        self.player: Any = None
        self.hold_player: Any = None
        self.recorder: Any = None
        self.probes: dict[str, Any] = {}
        self.bridged: PartyCall | None = None
        self.on_hold = False
        self.recorded: str | None = None
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
            calls[self.cid] = _EndedCall(self)  # type: ignore[assignment]

    def onCallMediaState(self, prm: Any) -> None:
        try:
            self._media_changed()
        except pj.Error as exc:
            self.child.emit("error", call=self.cid, message=f"media set-up failed: {exc.info()}")

    def _media_changed(self) -> None:
        ci = self.getInfo()
        for mi in ci.media:
            if mi.type != pj.PJMEDIA_TYPE_AUDIO:
                continue
            status = MEDIA_STATUS.get(mi.status, str(mi.status))
            try:
                si = self.getStreamInfo(mi.index)
                codec, remote = si.codecName, si.remoteRtpAddress
            except pj.Error:
                codec, remote = "", ""
            self.child.emit("media_state", call=self.cid, status=status, codec=codec, remote_rtp=remote,
                            dir=int(mi.dir))
            if mi.status in (pj.PJSUA_CALL_MEDIA_ACTIVE, pj.PJSUA_CALL_MEDIA_REMOTE_HOLD,
                             pj.PJSUA_CALL_MEDIA_LOCAL_HOLD):
                self.media_index = mi.index
                am = self.getAudioMedia(mi.index)
                holding = mi.status == pj.PJSUA_CALL_MEDIA_LOCAL_HOLD
                # a re-INVITE (hold/resume) recreates the stream: everything reconnects to the new port
                if holding and self.plan.hold_mute:
                    self.on_hold = True
                    if self.player is not None:
                        self.player.stopTransmit(am)
                    if self.bridged is not None:
                        self.bridged.audio().stopTransmit(am)
                    if self.plan.hold_music and self.hold_player is None:
                        self.hold_player = pj.AudioMediaPlayer()
                        self.hold_player.createPlayer(self.plan.hold_music, 0)
                        self.hold_player.startTransmit(am)
                else:
                    self.on_hold = False
                    self.hold_player = None
                    if self.plan.play and self.player is None:
                        self.start_player()
                    elif self.player is not None:
                        self.player.startTransmit(am)
                    if self.bridged is not None:
                        self.connect_bridge()
                    if self.plan.echo:
                        am.startTransmit(am)
                if self.plan.record and self.recorder is None:
                    self.start_recorder()
                elif self.recorder is not None:
                    am.startTransmit(self.recorder)
                for rec in self.probes.values():
                    am.startTransmit(rec)
            break

    def audio(self) -> Any:
        return self.getAudioMedia(getattr(self, "media_index", -1))

    def connect_bridge(self) -> None:
        other = self.bridged
        if other is None or other.done or self.done:
            return
        mine, theirs = self.audio(), other.audio()
        mine.startTransmit(theirs)
        theirs.startTransmit(mine)

    def disconnect_bridge(self) -> None:
        other, self.bridged = self.bridged, None
        if other is None:
            return
        other.bridged = None
        if not other.done and not self.done:
            with contextlib.suppress(pj.Error):
                self.audio().stopTransmit(other.audio())
                other.audio().stopTransmit(self.audio())

    def start_player(self) -> None:
        if self.plan.play is None:
            return
        if self.child.players >= LIMITS["max_players"]:
            self.child.emit("warning", call=self.cid, message="player limit reached; not playing")
            return
        self.stop_player()
        player = pj.AudioMediaPlayer()
        player.createPlayer(self.plan.play, 0 if self.plan.loop else pj.PJMEDIA_FILE_NO_LOOP)
        self.child.players += 1
        self.player = player
        player.startTransmit(self.getAudioMedia(getattr(self, "media_index", -1)))
        self.child.emit("playing", call=self.cid, wav=self.plan.play)

    def stop_player(self) -> None:
        if self.player is not None:
            self.player = None
            self.child.players -= 1

    def start_recorder(self) -> None:
        if self.plan.record is None:
            return
        path = self.plan.record.replace("{call}", self.cid)
        self.recorder = self._new_recorder(path)
        self.recorded = path
        self.child.emit("recording", call=self.cid, path=path)

    def _new_recorder(self, path: str) -> Any:
        rec = pj.AudioMediaRecorder()
        rec.createRecorder(path)
        self.child.silence.startTransmit(rec)
        self.audio().startTransmit(rec)
        return rec

    def start_probe(self, path: str) -> None:
        if path in self.probes:
            raise CommandError(f"already recording to {path}")
        self.probes[path] = self._new_recorder(path)

    def stop_probe(self, path: str) -> str:
        if self.probes.pop(path, None) is None:
            raise CommandError(f"no recording to {path} on call {self.cid}")
        self.child.pump(0.3)  # removal from the conference bridge is asynchronous
        return path

    def stop_probes(self) -> None:
        self.probes.clear()

    def stop_recorder(self, pump: bool = True) -> str | None:
        if self.recorder is None:
            return self.recorded
        self.recorder = None  # deleting the recorder writes the WAV header
        if pump:
            self.child.pump(0.3)  # removal from the conference bridge is asynchronous
        return self.recorded

    def stream_stats(self) -> dict[str, Any]:
        idx = getattr(self, "media_index", None)
        if idx is None:
            return {}
        st = self.getStreamStat(idx)
        si = self.getStreamInfo(idx)
        rtcp = st.rtcp
        rx, tx = rtcp.rxStat, rtcp.txStat
        return {
            "codec": si.codecName, "clock_rate": si.codecClockRate, "remote_rtp": si.remoteRtpAddress,
            "rx_packets": rx.pkt, "rx_bytes": rx.bytes, "rx_lost": rx.loss, "rx_dup": rx.dup,
            "rx_reorder": rx.reorder, "rx_discard": rx.discard,
            # a statistic with no samples is not measured: None, never 0 (harness.audio.RtpStats)
            "rx_jitter_ms": rx.jitterUsec.mean / 1000.0 if rx.jitterUsec.n else None,
            "rx_jitter_max_ms": rx.jitterUsec.max / 1000.0 if rx.jitterUsec.n else None,
            # each loss event's length (pjmedia's loss_period): with rx_lost it gives the burst ratio
            "rx_loss_events": rx.lossPeriodUsec.n,
            "rx_loss_period_mean_ms": rx.lossPeriodUsec.mean / 1000.0 if rx.lossPeriodUsec.n else None,
            "tx_packets": tx.pkt, "tx_lost": tx.loss,
            "tx_jitter_ms": tx.jitterUsec.mean / 1000.0 if tx.jitterUsec.n else None,
            "rtt_ms": rtcp.rttUsec.mean / 1000.0 if rtcp.rttUsec.n else None,
            "jb_avg_delay_ms": st.jbuf.avgDelayMsec, "jb_lost": st.jbuf.lost, "jb_discard": st.jbuf.discard,
        }

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


class _EndedCall:
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


def main() -> None:
    child = Child()
    try:
        child.loop()
    except Exception:  # an unexpected bug: report it on the pipe, then exit non-zero
        child.out.append({"event": "fatal", "error": traceback.format_exc()})
        child.flush()
        sys.exit(3)


if __name__ == "__main__":
    main()
