"""The commands the parent sends (``cmd_<name>``, see :mod:`harness.sip.protocol`), each a method of :class:`Child`.

A command that would exceed one of the wheel's limits (calls, accounts, new calls per second) is refused
with a :class:`CommandError` before pjsua2 is asked: pjsua2 would abort the process instead.
"""

from __future__ import annotations

import os
import time
from typing import Any

from harness.contracts.errors import InputError
from harness.contracts.settings import Settings
from harness.sip.child.account import Acct
from harness.sip.child.call import PartyCall
from harness.sip.child.call_media import MediaPlan
from harness.sip.child.jbuf import set_jb_discard
from harness.sip.child.logfile import LineLog
from harness.sip.child.pjsua import TRANSPORTS, pj
from harness.sip.child.process import ChildProcess, CommandError
from harness.sip.health import Watchdog, make_clock_probe
from harness.sip.protocol import LIMITS
from harness.sip.realtime import elevate

__all__ = ["Child"]


class Child(ChildProcess):
    # ---- lookups ----------------------------------------------------------------------------------
    def call(self, cid: str) -> PartyCall:
        """The live call ``cid``."""
        c = self.known_call(cid)
        if c.done or not isinstance(c, PartyCall):
            raise CommandError(f"call {cid} has ended")
        return c

    def account(self, name: str) -> Acct:
        a = self.accounts.get(name)
        if a is None:
            raise CommandError(f"no account {name!r} in this party")
        return a

    # ---- the endpoint and its accounts ------------------------------------------------------------
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
        if a.get("log_file"):  # written a line at a time, not through pjsua's 8 KB stdio buffer (LineLog)
            self.log_writer = LineLog(str(a["log_file"]), int(a.get("console_level", 2)))
            cfg.logConfig.writer = self.log_writer
            cfg.logConfig.consoleLevel = cfg.logConfig.level  # pjsua2 hands a writer its console output only
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
        # How the jitter buffer sheds delay it no longer needs (HARNESS_JB_DISCARD). pjsua's default,
        # "progressive", drops a queued frame and plays the next one as lost (concealed): a 20 ms hole made
        # by the harness's own receiver (90 of 552 clean lab streams, and a dropout FAIL blamed on the PBX;
        # none with "static", benchmarks/README.md). Static's discards are not loss (contracts.rtp_stats).
        try:
            discard = str(a.get("jitter_buffer_discard") or Settings.load().jb_discard)
        except InputError as exc:
            raise CommandError(str(exc)) from None
        try:
            set_jb_discard(cfg.medConfig, discard)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
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

    # ---- calls ------------------------------------------------------------------------------------
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

    # ---- media ------------------------------------------------------------------------------------
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
        c = self.known_call(a["call"])
        t = time.monotonic()  # the recording's last moment: its WAV is finished after the bridge lets go
        if a.get("path"):
            if not isinstance(c, PartyCall):  # ended and released: its extra recordings went with it
                raise CommandError(f"no recording to {a['path']} on call {c.cid}")
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

    # ---- queries and the process ------------------------------------------------------------------
    def cmd_stats(self, a: dict[str, Any]) -> dict[str, Any]:
        c = self.known_call(a["call"])
        return c.last_stats if c.done or not isinstance(c, PartyCall) else c.stats()

    def cmd_info(self, a: dict[str, Any]) -> dict[str, Any]:
        return self.known_call(a["call"]).info_dict()

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
