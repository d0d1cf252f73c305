"""``level_stability``: the spread of the per-second gain over the reference's speech.

Dropouts and a jitter buffer's fillers are left out: a gap is not a level change.
"""

from __future__ import annotations

import math

from harness.audio.checks.base import Context, Metric, r
from harness.audio.level import gain_track, level_stability
from harness.contracts.verdict import CheckResult

__all__ = ["METRIC"]


def judge(ctx: Context) -> list[CheckResult]:
    a, t, al, sr = ctx.a, ctx.t, ctx.al, ctx.sr
    t0 = al.start / sr
    mask = ctx.speech & ~ctx.unsteady & al.valid
    for d in a.dropouts:
        mask[round((d.start_s - t0) * sr) : round((d.end_s - t0) * sr)] = False
    track = gain_track(al.aligned, ctx.ref8, sr, mask)
    stab = level_stability(track)
    if math.isnan(stab):
        return [
            CheckResult.error(
                "level_stability", "fewer than two seconds of speech to compare", t.max_level_variation_db, "dB"
            )
        ]
    a.level_stability_db = r(stab)
    return [
        CheckResult.compare(
            "level_stability",
            a.level_stability_db,
            "<=",
            t.max_level_variation_db,
            "dB",
            f"per-second gain spread over {len(track)} blocks",
        )
    ]


METRIC = Metric(("level_stability",), judge)
