"""``emodel_r``: the ITU-T G.107 R-factor from the RTP statistics (needs ``rtp``).

Network statistics do not depend on the recording: this check is judged even when the gate fails.
Concealed packet loss leaves no gap in the waveform; this is the check that sees it.
"""

from __future__ import annotations

from harness.audio.checks.base import Context, Metric, r
from harness.audio.emodel import emodel
from harness.audio.result import Analysis, RtpStats
from harness.audio.thresholds import Thresholds
from harness.verdict import CheckResult

__all__ = ["METRIC", "emodel_check"]


def emodel_check(a: Analysis, t: Thresholds, rtp: RtpStats) -> CheckResult:
    """Compute the E-model into ``a.emodel`` and judge it."""
    try:
        em = emodel(rtp.codec, rtp.loss_pct, rtp.jitter_ms, rtp.rtt_ms, rtp.burst_ratio, rtp.jitter_buffer_ms)
    except ValueError as exc:
        return CheckResult.error("emodel_r", f"E-model not computed: {exc}", t.min_emodel_r)
    a.emodel = em
    return CheckResult.compare(
        "emodel_r",
        r(em.r),
        ">=",
        t.min_emodel_r,
        "R",
        f"G.107 R {em.r:.1f} (MOS-CQE {em.mos:.2f}) for {em.codec}, loss {em.ppl:.2f} %, "
        f"one-way delay {em.one_way_delay_ms:.0f} ms",
        em.to_dict(),
    )


def judge(ctx: Context) -> list[CheckResult]:
    assert ctx.rtp is not None
    return [emodel_check(ctx.a, ctx.t, ctx.rtp)]


# no rtp: not judged, and not listed as skipped
METRIC = Metric(("emodel_r",), judge, needs="rtp", network=emodel_check)
