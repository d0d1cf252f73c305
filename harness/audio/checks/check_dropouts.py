"""``dropouts``: stretches where the received speech vanished while the reference talked.

The gap a jitter buffer's delay jump leaves in mid-speech is the jump's (judged by
``delay_variation``), not a dropout. See :mod:`harness.audio.dropouts` for the rule.
"""

from __future__ import annotations

from harness.audio.checks.base import Context, Metric, r
from harness.audio.dropouts import Dropout, find_dropouts
from harness.contracts.verdict import CheckResult

__all__ = ["METRIC", "at_jump"]


def at_jump(d: Dropout, spans: list[tuple[int, int]], rate: int, slack_s: float = 0.02) -> bool:
    """Whether dropout ``d`` is no more than the gap a delay jump left (``spans``: sample ranges).

    It must touch the jump's stretch (give or take ``slack_s``) and last no longer than it (plus the
    slack): two jitter-buffer events close together leave their gap a little off the merged jump's.
    """
    return any(
        d.start_s < b / rate + slack_s
        and d.end_s > f / rate - slack_s
        and d.duration_ms <= ((b - f) / rate + slack_s) * 1000.0
        for f, b in spans
    )


def judge(ctx: Context) -> list[CheckResult]:
    a, t, al, sr = ctx.a, ctx.t, ctx.al, ctx.sr
    t0 = al.start / sr
    found = find_dropouts(
        al.aligned,
        ctx.ref8,
        sr,
        ctx.gain_db,
        t.dropout_depth_db,
        t.dropout_min_ms,
        spectra=(ctx.rx_spectra, ctx.ref_spectra),
    )
    jump_gaps = al.fillers + al.skips
    a.dropouts = [Dropout(d.start_s + t0, d.end_s + t0) for d in found if not at_jump(d, jump_gaps, sr)]
    listed = ", ".join(f"{d.start_s:.2f}-{d.end_s:.2f} s" for d in a.dropouts[:5])
    more = f" (+{len(a.dropouts) - 5} more)" if len(a.dropouts) > 5 else ""
    judged = (
        f" (judged {a.overlap_s[0]:.2f}-{a.overlap_s[1]:.2f} s of the reference: the recording holds no more)"
        if a.overlap_s
        else ""
    )
    return [
        CheckResult.compare(
            "dropouts",
            float(len(a.dropouts)),
            "<=",
            t.max_dropouts,
            "events",
            f"{len(a.dropouts)} dropout(s)" + (f": {listed}{more}" if a.dropouts else "") + judged,
            {"total_ms": r(sum(d.duration_ms for d in a.dropouts), 1)},
        )
    ]


METRIC = Metric(("dropouts",), judge)
