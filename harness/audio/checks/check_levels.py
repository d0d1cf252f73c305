"""``gain`` and ``speech_level``: the received P.56 active speech level, against the reference's."""

from __future__ import annotations

from harness.audio.checks.base import Context, Metric, r
from harness.contracts.verdict import CheckResult

__all__ = ["METRIC"]


def judge(ctx: Context) -> list[CheckResult]:
    a, t = ctx.a, ctx.t
    rec, ref = ctx.rec_level.level_dbov, ctx.ref_level.level_dbov
    gain = rec - ref
    a.gain_db = r(gain)
    return [
        CheckResult.compare(
            "gain",
            r(abs(gain)),
            "<=",
            t.max_abs_gain_db,
            "dB",
            f"received is {abs(gain):.1f} dB {'louder' if gain >= 0 else 'quieter'} than the reference "
            f"({rec:.1f} vs {ref:.1f} dBov)",
            {"gain_db": a.gain_db},
        ),
        CheckResult.compare(
            "speech_level", a.level_dbov, ">=", t.min_speech_level_dbov, "dBov", "ITU-T P.56 active speech level"
        ),
    ]


METRIC = Metric(("gain", "speech_level"), judge)
