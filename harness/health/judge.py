"""Was the harness itself healthy while a check was measured? Limits, figures and the verdict.

A window's health comes from each party's own clocks (:mod:`harness.sip.health`: how late it woke,
how late its media clock ticked, which is when its RTP went out) and from the host's pressure
(:mod:`harness.health.host`). When they show that the harness was starved, a check measured in that
window cannot blame the PBX: its FAIL becomes ERROR, blamed on the harness, with the figures. Media
lateness alone (a media clock, the lab's media processes) spoils only checks judged on media
(:meth:`WindowHealth.spoils`); late wake-ups, memory stalls and steal spoil every check.

The limits (``thresholds: {health: {...}}`` in a target profile or scenario overrides them):

- ``max_media_late_ms`` 40: two packet times. A party's media clock that ticks later than this sends
  a burst after a gap, and the far end's jitter buffer grows by a frame or two: a delay jump and a
  lower MOS that no PBX caused. On a quiet host the clock keeps within a few ms (p99 1 ms under
  SCHED_RR with the unit tests running beside it).
- ``max_wake_late_ms`` 100: a party that wakes this late answers SIP and reads its pipe that late.
- ``max_memory_full_pct`` 10: in the worst second, every task on the host stalled on memory this share
  of the time.
- ``max_steal_pct`` 20: in the worst second, the hypervisor ran other guests on our CPUs this share
  of the time.
- ``max_lab_wait_ms`` 40: against the embedded lab, a lab process (rtpengine, kamailio, the IVR/queue
  services) that waited this long for a CPU within 100 ms relayed media late (:mod:`harness.health.procs`):
  the lab PBX shares the host, so that is the host's doing, not the PBX software's.

CPU pressure is reported but does not decide: the parties run under SCHED_RR where permitted, so
another process's CPU use delays them only when it shows in their own clocks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from harness.contracts.thresholds import HEALTH_LIMIT_KEYS, HealthLimits

__all__ = ["HEALTH_LIMIT_KEYS", "HealthLimits", "PartySeries", "WindowHealth", "assess"]




@dataclass(frozen=True)
class PartySeries:
    """One party's health buckets, as the child's ``health`` command returns them."""

    name: str
    t: list[float]
    wake_max_ms: list[float]
    clock_max_ms: list[float]
    clock_n: list[int]
    scheduling: str = ""

    @classmethod
    def from_reply(cls, name: str, reply: dict[str, Any]) -> PartySeries:
        prio = reply.get("priority") or {}
        sched = f"SCHED_RR {prio.get('priority')}" if prio.get("policy") == "SCHED_RR" else \
            f"normal ({prio.get('why')})" if prio.get("why") else "normal"
        return cls(name, list(reply.get("t", [])), list(reply.get("wake_max_ms", [])),
                   list(reply.get("clock_max_ms", [])), list(reply.get("clock_n", [])), sched)

    def window(self, t0: float, t1: float) -> dict[str, Any]:
        """Worst lateness in ``[t0, t1]``; ``None`` where no bucket of that kind was booked."""
        idx = [i for i, t in enumerate(self.t) if t0 - 0.1 <= t <= t1]
        wake = [self.wake_max_ms[i] for i in idx]
        clock = [self.clock_max_ms[i] for i in idx if self.clock_n[i] > 0]
        return {"wake_late_max_ms": round(max(wake), 1) if wake else None,
                "media_late_max_ms": round(max(clock), 1) if clock else None,
                "media_ticks": int(sum(self.clock_n[i] for i in idx)), "scheduling": self.scheduling}


@dataclass
class WindowHealth:
    """The harness's health over one measured window, and whether it was starved."""

    t0: float
    t1: float
    parties: dict[str, dict[str, Any]] = field(default_factory=dict)
    host: dict[str, Any] = field(default_factory=dict)
    overloaded: bool = False
    reasons: list[str] = field(default_factory=list)
    unmeasured: list[str] = field(default_factory=list)
    #: starved beyond the media clocks: a party woke late, memory stalls, steal. Only then can a check that
    #: is not about media (signalling, a flow's outcome) have been spoiled; a media clock that ticked 50 ms
    #: late delays RTP, not SIP, and cannot turn a call that never reached its agent into one that did.
    beyond_media: bool = False

    def spoils(self, media: bool) -> bool:
        """Whether this window's starvation can have spoiled a check (``media``: judged on media)."""
        return self.overloaded and (media or self.beyond_media)

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.t1 - self.t0, 2), "overloaded": self.overloaded, "reasons": self.reasons,
                "unmeasured": self.unmeasured, "parties": self.parties, "host": self.host}

    def diagnosis(self, shared_host: bool, before_s: float | None = None) -> str:
        """The "harness host overloaded" text; ``before_s``: the starvation was that long before the window
        (its media was still carrying it)."""
        when = ""
        if before_s is not None:
            when = (f" up to {before_s:.1f} s before this window, and the calls' jitter buffers were still"
                    " shedding the delay it added while the window was measured")
        text = f"harness host overloaded{when}: " + "; ".join(self.reasons)
        if shared_host:
            text += (" (the lab PBX runs on the same host, so its media relay was starved too: this says nothing"
                     " about the PBX under test)")
        return text


def assess(t0: float, t1: float, series: list[PartySeries], host: dict[str, Any],
           limits: HealthLimits) -> WindowHealth:
    """Judge one window from the parties' series and the host's shares."""
    wh = WindowHealth(t0, t1, host=host)
    media: list[str] = []  # reasons that concern media alone
    for s in series:
        w = s.window(t0, t1)
        wh.parties[s.name] = w
        if w["media_late_max_ms"] is None:
            wh.unmeasured.append(f"{s.name}'s media clock")
        elif w["media_late_max_ms"] > limits.max_media_late_ms:
            media.append(f"party {s.name}'s media clock (its RTP sending) ran {w['media_late_max_ms']:.0f} ms "
                         f"late (limit {limits.max_media_late_ms:.0f} ms; {w['scheduling']})")
            wh.reasons.append(media[-1])
        if w["wake_late_max_ms"] is None:
            wh.unmeasured.append(f"{s.name}'s wake-ups")
        elif w["wake_late_max_ms"] > limits.max_wake_late_ms:
            wh.reasons.append(f"party {s.name} woke {w['wake_late_max_ms']:.0f} ms late "
                              f"(limit {limits.max_wake_late_ms:.0f} ms)")
    worst = host.get("worst_1s") or {}
    mem, steal = worst.get("memory_full_pct"), worst.get("steal_pct")
    if mem is not None and mem > limits.max_memory_full_pct:
        wh.reasons.append(f"every task stalled on memory {mem:.0f} % of the worst second "
                          f"(limit {limits.max_memory_full_pct:.0f} %)")
    if steal is not None and steal > limits.max_steal_pct:
        wh.reasons.append(f"the hypervisor took {steal:.0f} % of the CPUs in the worst second "
                          f"(limit {limits.max_steal_pct:.0f} %)")
    for component, wait in sorted((host.get("lab_wait_ms") or {}).items()):
        if wait is not None and wait > limits.max_lab_wait_ms:
            media.append(f"the lab's {component} waited {wait:.0f} ms for a CPU within 100 ms "
                         f"(limit {limits.max_lab_wait_ms:.0f} ms)")  # the lab's media relay and media parties
            wh.reasons.append(media[-1])
    if not host.get("measured"):
        wh.unmeasured.append("host pressure")
    wh.overloaded = bool(wh.reasons)
    wh.beyond_media = len(wh.reasons) > len(media)
    if wh.overloaded and worst.get("cpu_some_pct") is not None:
        wh.reasons.append(f"CPU pressure {worst['cpu_some_pct']:.0f} % in the worst second")
    return wh
