"""``mos`` and ``mos_drop``: the perceptual MOS, absolute and relative to the clip's own ceiling.

The same clean call scores 3.94-3.99 with ``agent.wav`` and 4.05-4.22 with ``caller.wav``: the clip
sets the ceiling (see :mod:`harness.audio.ceiling`). ``mos_drop`` (the ceiling through the negotiated
codec minus the MOS) means the same for every clip and decides; ``mos`` keeps an absolute floor
from the standards (G.107 Annex B: MOS 3.1 is R 60, the bottom of G.109's "many users dissatisfied"),
low enough that no clip's ceiling minus the allowed drop falls under it.
"""

from __future__ import annotations

from harness.audio.ceiling import mos_ceiling
from harness.audio.checks.base import Context, Metric, r
from harness.audio.mos import perceptual_mos, warped_frames
from harness.contracts.verdict import CheckResult

__all__ = ["METRIC"]


def judge(ctx: Context) -> list[CheckResult]:
    a, t, sr = ctx.a, ctx.t, ctx.sr
    al = ctx.al
    warped = warped_frames(len(al.aligned), al.delay_map, al.fillers + al.skips)
    m = perceptual_mos(ctx.ref8, al.aligned, sr, spectra=(ctx.ref_spectra, ctx.rx_spectra), warped=warped)
    a.mos_detail = m
    a.mos = r(m.mos)
    ceiling = mos_ceiling(ctx.ref8, ctx.codec)
    a.codec = ceiling.codec
    a.mos_ceiling = r(ceiling.mos)
    a.mos_drop = r(ceiling.mos - m.mos)
    note = f"; {ceiling.note}" if ceiling.note else ""
    return [
        CheckResult.compare(
            "mos",
            a.mos,
            ">=",
            t.min_mos,
            "MOS-LQO",
            f"perceptual disturbance model (narrowband); this clip scores {ceiling.mos:.2f} through "
            f"{ceiling.codec} alone",
            {"ceiling": a.mos_ceiling},
        ),
        CheckResult.compare(
            "mos_drop",
            a.mos_drop,
            "<=",
            t.max_mos_drop,
            "MOS",
            f"MOS {m.mos:.2f} is {a.mos_drop:.2f} below the {ceiling.mos:.2f} this clip scores through "
            f"{ceiling.codec} ({ceiling.coded_with} coded) alone{note}",
            {"mos": a.mos, "ceiling": a.mos_ceiling, "codec": ceiling.codec, "coded_with": ceiling.coded_with},
        ),
    ]


METRIC = Metric(("mos", "mos_drop"), judge)
