"""``emodel_r``: the ITU-T G.107 R-factor from the RTP statistics (needs ``rtp``).

Network statistics do not depend on the recording: this check is judged even when the gate fails.
Concealed packet loss leaves no gap in the waveform; this is the check that sees it.
"""

from __future__ import annotations

import math

from harness.audio.checks.base import Context, Metric, r
from harness.audio.emodel import emodel
from harness.audio.result import Analysis, RtpStats
from harness.contracts.thresholds import Thresholds
from harness.contracts.verdict import CheckResult

__all__ = ["METRIC", "emodel_check"]


def emodel_check(a: Analysis, t: Thresholds, rtp: RtpStats) -> CheckResult:
    """Compute the E-model into ``a.emodel`` and judge it, from measured figures only.

    Loss and its pattern are needed (ERROR without them: a missing figure never scores as no loss). The
    delay comes from the RTCP round trip plus the jitter buffer, or, without a round trip, from the
    mouth-to-ear delay the audio engine measured on this very recording; the detail says which.
    """
    if rtp.loss_pct is None:
        return CheckResult.error("emodel_r", "E-model not computed: packet loss not measured (the listener counted "
                                 "no RTP packets)", t.min_emodel_r, "R")
    if rtp.burst_ratio is None:
        return CheckResult.error("emodel_r", "E-model not computed: packets were lost but their pattern (burst ratio) "
                                 "was not measured", t.min_emodel_r, "R")
    notes = []
    audio_delay = a.delay_ms if isinstance(a.delay_ms, int | float) and math.isfinite(a.delay_ms) else None
    measured_delay: float | None = None
    if rtp.rtt_ms is None or (rtp.jitter_buffer_ms is None and rtp.jitter_ms is None):
        if audio_delay is None or audio_delay < 0:
            lacked = "RTCP round-trip time" if rtp.rtt_ms is None else "jitter and the jitter buffer's delay"
            return CheckResult.error("emodel_r", f"E-model not computed: no {lacked}, and no delay measured from "
                                     "the audio either", t.min_emodel_r, "R")
        measured_delay = audio_delay
        notes.append("one-way delay measured on the audio (no RTCP round trip)" if rtp.rtt_ms is None
                     else "one-way delay measured on the audio (no jitter figures)")
    try:
        em = emodel(rtp.codec, rtp.loss_pct, rtp.jitter_ms or 0.0, rtp.rtt_ms or 0.0, rtp.burst_ratio,
                    rtp.jitter_buffer_ms, one_way_ms=measured_delay)
    except ValueError as exc:
        return CheckResult.error("emodel_r", f"E-model not computed: {exc}", t.min_emodel_r, "R")
    a.emodel = em
    burst = f", burst ratio {rtp.burst_ratio:.2f}" if rtp.burst_ratio != 1.0 else ""
    return CheckResult.compare(
        "emodel_r",
        r(em.r),
        ">=",
        t.min_emodel_r,
        "R",
        f"G.107 R {em.r:.1f} (MOS-CQE {em.mos:.2f}) for {em.codec}, loss {em.ppl:.2f} %{burst}, "
        f"one-way delay {em.one_way_delay_ms:.0f} ms" + (f"; {'; '.join(notes)}" if notes else ""),
        {**em.to_dict(), "lacked": rtp.lacks()},
    )


def judge(ctx: Context) -> list[CheckResult]:
    assert ctx.rtp is not None
    return [emodel_check(ctx.a, ctx.t, ctx.rtp)]


# no rtp: not judged, and not listed as skipped
METRIC = Metric(("emodel_r",), judge, needs="rtp", network=emodel_check)
