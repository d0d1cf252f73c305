"""``noise_floor`` and ``snr``: received power where the reference is silent, and speech above it."""

from __future__ import annotations

import math

from harness.audio.checks.base import Context, Metric, r
from harness.audio.noise import measure_noise
from harness.contracts.verdict import CheckResult

__all__ = ["METRIC"]


def judge(ctx: Context) -> list[CheckResult]:
    a, t, al = ctx.a, ctx.t, ctx.al
    nz = measure_noise(al.aligned, al.valid, ctx.ref8, ctx.sr, ctx.rec_level.level_dbov)
    if math.isnan(nz.floor_dbov):
        why = f"the reference has only {nz.silence_s:.2f} s of silence to measure noise in (needs 0.2 s)"
        return [
            CheckResult.error("noise_floor", why, t.max_noise_floor_dbov, "dBov"),
            CheckResult.error("snr", why, t.min_snr_db, "dB"),
        ]
    a.noise_floor_dbov = r(nz.floor_dbov)
    a.noise_snr_db = r(nz.snr_db)
    return [
        CheckResult.compare(
            "noise_floor",
            a.noise_floor_dbov,
            "<=",
            t.max_noise_floor_dbov,
            "dBov",
            f"received power over {nz.silence_s:.1f} s of reference silence",
        ),
        CheckResult.compare("snr", a.noise_snr_db, ">=", t.min_snr_db, "dB", "speech level minus noise floor"),
    ]


METRIC = Metric(("noise_floor", "snr"), judge)
