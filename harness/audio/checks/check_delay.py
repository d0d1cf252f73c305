"""``delay`` and ``delay_variation``: the one-way delay, with a lower bound, and the delay track.

The alignment measures where the reference starts in the recording (``Analysis.recording_lag_ms``).
That lag is the path's delay only when the recording and the playback started together; the caller
knows the difference and passes it as ``start_offset_s`` (the recording's start minus the playback's
start, seconds), which is taken out: ``delay = lag + start_offset_s``. A recorder started 200 ms
before the player (offset -0.2) sees the reference 200 ms later than the path delays it.

A causal path cannot deliver audio before it was played: a delay below ``min_delay_ms`` (a small
tolerance for the skew of starting recorder and player, one 20 ms media frame and a little) FAILs.
"""

from __future__ import annotations

from harness.audio.checks.base import Context, Metric, r
from harness.contracts.verdict import CheckResult, Verdict

__all__ = ["METRIC"]


def judge(ctx: Context) -> list[CheckResult]:
    a, t, al, sr = ctx.a, ctx.t, ctx.al, ctx.sr
    offset_ms = 1000.0 * ctx.start_offset_s if ctx.start_offset_s is not None else 0.0
    a.recording_lag_ms = r(al.delay_ms, 3)
    a.delay_ms = r(al.delay_ms + offset_ms, 3)
    a.delay_variation_ms = r(al.delay_range_ms(sr), 3)
    a.delay_track = [
        {
            "start_s": r(b.start_s, 3),
            "delay_ms": r(b.delay_ms + offset_ms, 3),
            "corr": r(b.corr, 3),
            "measured": b.measured,
        }
        for b in al.track
    ]
    gaps = {al.start + b: (b - f) * 1000.0 / sr for f, b in al.fillers}  # keyed by where the jump lands
    a.delay_jumps = [
        {"at_s": r(ts, 3), "jump_ms": r(j, 3), "gap_ms": r(gaps.get(round(ts * sr), 0.0), 1)} for ts, j in al.jumps(sr)
    ]
    in_speech = sum(1 for j in a.delay_jumps if j["gap_ms"] > 0)
    how = f"GCC-PHAT, confidence {al.peak:.0f}"
    if ctx.start_offset_s is not None:
        how += (
            f"; the reference starts {al.delay_ms:.1f} ms into the recording, which started "
            f"{ctx.start_offset_s:+.3f} s after the playback"
        )
    if a.delay_ms < t.min_delay_ms:
        why = (
            "the start offset given is wrong, or the received audio is not this playback"
            if ctx.start_offset_s is not None
            else f"the recording started {-a.delay_ms / 1000:.2f} s or more after the reference began playing (pass "
            "start_offset_s, the recording's start minus the playback's), or the received audio is not this playback"
        )
        delay = CheckResult(
            "delay",
            Verdict.FAIL,
            a.delay_ms,
            t.min_delay_ms,
            "ms",
            ">=",
            f"impossible delay: the received leads the reference by {-a.delay_ms:.1f} ms, which no causal path does: "
            f"{why} ({how})",
            {"recording_lag_ms": a.recording_lag_ms, "max_delay_ms": t.max_delay_ms},
        )
    else:
        delay = CheckResult.compare(
            "delay",
            a.delay_ms,
            "<=",
            t.max_delay_ms,
            "ms",
            f"received lags the reference by {a.delay_ms:.1f} ms ({how})",
            {"recording_lag_ms": a.recording_lag_ms, "min_delay_ms": t.min_delay_ms},
        )
    variation = CheckResult.compare(
        "delay_variation",
        a.delay_variation_ms,
        "<=",
        t.max_delay_variation_ms,
        "ms",
        f"{len(a.delay_jumps)} delay jump(s) through the call"
        + (f", {in_speech} in mid-speech (a gap the jitter buffer filled)" if in_speech else ""),
        {"jumps": len(a.delay_jumps)},
    )
    return [delay, variation]


METRIC = Metric(("delay", "delay_variation"), judge)
