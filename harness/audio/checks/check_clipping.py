"""``clipping``: a pile-up of received samples at their own maximum (see :mod:`harness.audio.clipping`)."""

from __future__ import annotations

import math

from harness.audio.checks.base import Context, Metric, r
from harness.contracts.verdict import CheckResult

__all__ = ["METRIC"]


def judge(ctx: Context) -> list[CheckResult]:
    clip = ctx.a.clipping
    assert clip is not None  # measured on the whole recording before the gate
    detail = (
        f"{clip.clipped_samples} samples piled up at {20 * math.log10(clip.clip_level):.2f} dBFS "
        f"({clip.runs} flat tops)"
        if clip.clipped
        else "no pile-up at the peak: not clipped"
    )
    return [
        CheckResult.compare("clipping", r(clip.ratio_pct, 4), "<=", ctx.t.max_clipping_pct, "%", detail, clip.to_dict())
    ]


METRIC = Metric(("clipping",), judge)
