"""Media quality under load: real calls between two pjsua2 parties in every step, judged afterwards.

While the load runs, a caller party calls a callee party through the target ``calls_per_step``
times per step (at most ``lanes`` at once: a pjsua2 process holds 4 calls). Each side plays a clip
of its reference speech and records what it hears; after the run (so that numpy never stalls the
load generator's event loop) :func:`harness.audio.analyze_files` judges both directions, with the
parties' RTP statistics for the E-model. A step shorter than one media call gets none::

    sampler = MediaSampler(profile.media, target, out / "media", profile.timeline)
    sampler.prepare()              # parties up and registered, before the load starts
    sampler.start(t0_wall)         # schedules the calls along the timeline
    ...                            # the load runs
    sampler.stop()
    results = sampler.analyze()    # one dict per media call: step, directions with MOS and loss
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.errors import HarnessError, PartyTimeout
from harness.contracts.target import Target
from harness.load.profile import MediaSpec
from harness.load.shapes import Timeline

__all__ = ["MediaCall", "MediaSampler", "plan_slots"]

SLOT_MARGIN_S = 2.5  # set-up, hang-up and recorder close around each call's talk time


@dataclass
class MediaCall:
    step: int
    offset_s: float  # planned start, seconds after the load started
    started: float | None = None  # wall clock
    ok: bool = False
    error: str = ""
    caller_call: str = ""
    callee_call: str = ""
    setup_ms: float | None = None
    stats: dict[str, Any] = field(default_factory=dict)  # party -> RTP statistics
    directions: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "offset_s": round(self.offset_s, 3), "started": self.started, "ok": self.ok,
                "error": self.error, "setup_ms": self.setup_ms, "directions": self.directions}


def plan_slots(spec: MediaSpec, timeline: Timeline) -> list[MediaCall]:
    """Where the media calls go: ``calls_per_step`` per step that offers load, spread over the step in
    up to ``lanes`` parallel lanes; calls that would not end inside their step are left out."""
    if spec.calls_per_step <= 0:
        return []
    slot = spec.talk_s + SLOT_MARGIN_S
    out = []
    for i, stage in enumerate(timeline.stages):
        if stage.peak <= 0:
            continue
        start, end = timeline.window(i)
        per_lane = math.floor((end - start - 0.5) / slot)
        lanes = min(spec.lanes, spec.calls_per_step)
        for k in range(min(spec.calls_per_step, per_lane * lanes)):
            lane, m = k % lanes, k // lanes
            out.append(MediaCall(i, start + 0.5 + m * slot + lane * (slot / lanes)))
    return out


class MediaSampler:
    def __init__(self, spec: MediaSpec, target: Target, out_dir: Path, timeline: Timeline,
                 log: Callable[[str], None] = lambda _m: None):
        self.spec, self.target, self.dir, self.timeline, self.log = spec, target, out_dir, timeline, log
        self.calls = plan_slots(spec, timeline)
        self.caller: Any = None
        self.callee: Any = None
        self.refs: dict[str, Path] = {}
        self._greenlets: list[Any] = []
        self._failed = False

    @property
    def enabled(self) -> bool:
        return bool(self.calls)

    # ---- set-up -----------------------------------------------------------------------------------
    def prepare(self) -> None:
        """Reference clips, both parties started and registered. Raises HarnessError on failure."""
        if not self.enabled:
            return
        from harness.sip import AutoPolicy, Party

        self.dir.mkdir(parents=True, exist_ok=True)
        clip_s = max(1.5, self.spec.talk_s - 1.0)
        self.refs = {"caller": self._clip(self.spec.caller_play, "caller-ref.wav", clip_s),
                     "callee": self._clip(self.spec.callee_play, "callee-ref.wav", clip_s)}
        caller_acc, callee_acc = self.target.account(self.spec.caller), self.target.account(self.spec.callee)
        self.caller = Party("media-caller", self.dir, transport=self.target.transport, codecs=self.target.codecs)
        self.callee = Party("media-callee", self.dir, transport=self.target.transport, codecs=self.target.codecs)
        self.caller.start()
        self.callee.start()
        self.caller.add_account(caller_acc, self.target, auto=AutoPolicy(mode="reject", code=486))
        self.callee.add_account(callee_acc, self.target, auto=AutoPolicy(
            mode="answer", play=str(self.refs["callee"]), record=str(self.dir / "callee-{call}.wav")))
        for party, acc in ((self.caller, caller_acc), (self.callee, callee_acc)):
            reg = party.wait_registered(acc.name, timeout=10)
            if not reg.ok:
                raise HarnessError(f"media party {party.name}: REGISTER of {acc.name} failed with {reg.code} "
                                   f"{reg.reason}")

    def _clip(self, src: str, name: str, seconds: float) -> Path:
        """The first ``seconds`` of a fixture, so the whole clip fits in one call's talk time."""
        from harness.audio import read_wav, write_wav

        x, rate = read_wav(src)
        return write_wav(self.dir / name, x[: int(seconds * rate)], rate)

    def fail_all(self, reason: str) -> None:
        """No media call can be placed (the parties did not come up): each is an error, not a silence."""
        for mc in self.calls:
            mc.error = reason
        self._failed = True

    # ---- during the run ---------------------------------------------------------------------------
    def start(self, t0_perf: float) -> None:
        """Schedule every media call relative to ``t0_perf`` (time.perf_counter when the load started)."""
        import gevent

        if self._failed:
            return
        for mc in self.calls:
            delay = max(0.0, t0_perf + mc.offset_s - time.perf_counter())
            self._greenlets.append(gevent.spawn_later(delay, self._one, mc))

    def _one(self, mc: MediaCall) -> None:
        mc.started = time.time()
        uri = self.target.aor(self.target.account(self.spec.callee).username)
        try:
            self._call(mc, uri)
        except HarnessError as exc:
            mc.error = mc.error or str(exc).splitlines()[0]
            with contextlib.suppress(HarnessError):
                if mc.caller_call:
                    self.caller.hangup(mc.caller_call)

    def _call(self, mc: MediaCall, uri: str) -> None:
        def state(call: str, *states: str) -> Callable[[dict[str, Any]], bool]:
            return lambda e: e["event"] == "call_state" and e.get("call") == call and e.get("state") in states

        caller, callee = self.caller, self.callee
        mark_callee = callee.mark()
        t0 = time.perf_counter()
        res = caller.call(self.spec.caller, uri, play=str(self.refs["caller"]),
                          record=str(self.dir / "caller-{call}.wav"))
        mc.caller_call = res["call"]
        ev = caller.wait_event(state(mc.caller_call, "CONFIRMED", "DISCONNECTED"), 10.0, "the media call's answer")
        if ev["state"] != "CONFIRMED":
            mc.error = f"the media call was not answered ({ev.get('code') or ev.get('reason') or 'no answer'})"
            return
        mc.setup_ms = round((time.perf_counter() - t0) * 1000.0, 1)
        sip_id = ev.get("sip_call_id", "")
        inc = callee.wait_event(lambda e: e["event"] == "incoming", 5.0, "the media call at the callee", mark_callee)
        same = callee.find(lambda e: e["event"] == "incoming" and e.get("sip_call_id") == sip_id, mark_callee)
        mc.callee_call = (same or inc)["call"]
        import gevent

        gevent.sleep(self.spec.talk_s)
        mc.stats = {"caller": caller.stats(mc.caller_call), "callee": callee.stats(mc.callee_call)}
        mark_caller = caller.mark()
        caller.hangup(mc.caller_call)
        for party, call in ((caller, mc.caller_call), (callee, mc.callee_call)):
            party.wait_event(state(call, "DISCONNECTED"), 5.0, "the media call to end")
        for party, call, mark in ((caller, mc.caller_call, mark_caller), (callee, mc.callee_call, mark_callee)):
            with contextlib.suppress(PartyTimeout):
                party.wait_event(lambda e, c=call: e["event"] == "recording_closed" and e.get("call") == c, 3.0,
                                 "the recording to close", mark)
        mc.ok = True

    def stop(self) -> None:
        """Cancel calls not yet placed, wait for the ones in progress (bounded), close the parties."""
        import gevent

        for g in self._greenlets:
            if not g and not g.dead:  # scheduled but not running yet: this call will not be placed
                g.kill(block=False)
        gevent.joinall(self._greenlets, timeout=self.spec.talk_s + 15.0)
        gevent.killall(self._greenlets, block=True, timeout=2)
        for mc in self.calls:
            if mc.started is None and not mc.error:
                mc.error = "not placed: the load ended first"
        for party in (self.caller, self.callee):
            if party is not None:
                with contextlib.suppress(HarnessError):
                    party.close()

    # ---- after the run ----------------------------------------------------------------------------
    def analyze(self) -> list[dict[str, Any]]:
        """Judge every answered media call in both directions; one dict per planned call."""
        if not self.enabled:
            return []
        from harness.audio import AudioInputError, RtpStats, analyze_files

        for mc in self.calls:
            if not mc.ok:
                continue
            for src, dst, call, party in (("caller", "callee", mc.callee_call, "callee"),
                                          ("callee", "caller", mc.caller_call, "caller")):
                name = f"{src}->{dst}"
                received = self.dir / f"{dst}-{call}.wav"
                st = mc.stats.get(party) or {}
                rtp = RtpStats.from_party(st)  # what was not measured stays None, never a best-case zero
                loss = rtp.loss_pct if rtp is not None else None
                entry: dict[str, Any] = {"received": received.name, "jitter_ms": st.get("rx_jitter_ms"),
                                         "loss_pct": None if loss is None else round(loss, 3)}
                try:
                    a = analyze_files(received, self.refs[src], direction=name, rtp=rtp)
                except AudioInputError as exc:
                    entry["error"] = f"unusable recording: {exc}"
                    mc.directions[name] = entry
                    continue
                d = a.to_dict()
                entry.update({"mos": d.get("mos"), "emodel_mos": (d.get("emodel") or {}).get("mos"),
                              "verdict": d.get("verdict"), "delay_ms": d.get("delay_ms"),
                              "failed_checks": [c["name"] for c in d.get("checks", []) if c["verdict"] != "PASS"]})
                mc.directions[name] = entry
        return [mc.to_dict() for mc in self.calls]
