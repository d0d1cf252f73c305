"""The run's view of the harness's health: which processes to watch, the lab services' own series,
the limits that apply, and which checks a starved media clock can spoil (harness.health judges)."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

from harness.contracts.verdict import CheckResult
from harness.health import HealthLimits, PartySeries
from harness.health.procs import descendants
from harness.lab.services import HEALTH_EVERY_S, HEALTH_FILE, HEALTH_REQUEST
from harness.lab.stack import LabStack
from harness.scenarios.context import RunContext

__all__ = ["CLOCK_KINDS", "LAB_HEALTH_SLACK_S", "MEDIA_KINDS", "clock_bound", "health_limits", "lab_media_pids",
           "lab_service_series", "media_check", "reaches"]


def lab_media_pids(lab: LabStack) -> dict[str, list[int]]:
    """The lab's processes that carry media: rtpengine, the impairment line, and the parties of the IVR
    and queue services (not the services' own control loop, whose timing no audio depends on)."""
    out = {name: [pid] for name, pid in lab.pids.items() if name in ("rtpengine", "netem")}
    if "services" in lab.pids:
        out["IVR/queue services"] = [p for p in descendants([lab.pids["services"]]) if p != lab.pids["services"]]
    return out


#: a lab service's health series counts as reaching a moment when its last 100 ms bucket is this close to it
LAB_HEALTH_SLACK_S = 0.25


def reaches(series: PartySeries, t: float) -> bool:
    return bool(series.t) and series.t[-1] >= t - LAB_HEALTH_SLACK_S


def lab_service_series(lab: LabStack, until: float | None = None) -> list[PartySeries]:
    """The health the lab's services wrote for their own parties (harness.lab.services), if any.

    The services rewrite their file every ``HEALTH_EVERY_S``, and at once when asked (``HEALTH_REQUEST``);
    with ``until`` (monotonic time) this asks, then waits at most two periods for a file whose series
    reach that moment, so that a window's last second is judged with the lab's parties too (what the
    file holds is returned either way).
    """
    deadline = time.monotonic() + 2 * HEALTH_EVERY_S + 0.5
    if until is not None:
        with contextlib.suppress(OSError):
            (lab.dir / HEALTH_REQUEST).touch()
    while True:
        try:
            data = json.loads((lab.dir / HEALTH_FILE).read_text())
        except (OSError, ValueError):
            data = None
        series = [PartySeries.from_reply(str(name), reply) for name, reply in data.items()
                  if isinstance(reply, dict)] if isinstance(data, dict) else []
        covered = until is None or all(reaches(s, until) for s in series)
        if not series or covered or time.monotonic() >= deadline:
            return series
        time.sleep(0.1)


def health_limits(ctx: RunContext) -> HealthLimits:
    """The health limits: scenario ``thresholds.health`` over target ``thresholds.health`` over defaults."""
    merged: dict[str, Any] = {}
    for source in (ctx.target.thresholds, ctx.scenario.thresholds):
        merged.update(source.get("health") or {})
    return HealthLimits.from_mapping(merged)


#: checks judged on what the parties' jitter buffers played out (a stall just before their window shows in them)
MEDIA_KINDS = frozenset({"audio", "prompt", "hold"})


#: checks whose measurement runs on the media clocks (RTP sent and played out, DTMF events, recordings):
#: a media clock that ran late can spoil them; the other checks only a starvation beyond media can
CLOCK_KINDS = MEDIA_KINDS | {"rtp", "recording", "dtmf", "line"}


def _kind(c: CheckResult) -> str:
    return c.id.kind if c.id is not None else c.name.split(":", 1)[0]


def media_check(c: CheckResult) -> bool:
    return _kind(c) in MEDIA_KINDS


def clock_bound(c: CheckResult) -> bool:
    return _kind(c) in CLOCK_KINDS
