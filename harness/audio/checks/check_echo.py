"""``echo``: the listener's own sent signal coming back in what it receives (needs ``sent``).

Measured where the far end's speech does not touch the residual (single talk, and double talk where
it cancelled cleanly), never next to a delay jump; see :mod:`harness.audio.echo`.
"""

from __future__ import annotations

import math

import numpy as np

from harness.audio.checks.base import Context, Metric, r, to_analysis_rate
from harness.audio.echo import (
    FAR_SILENT_DB,
    EchoResult,
    clean,
    estimate_echo,
    far_end,
    single_talk_seconds,
    steady,
)
from harness.audio.noise import reference_silence
from harness.contracts.thresholds import Thresholds
from harness.contracts.verdict import CheckResult, Verdict

__all__ = ["METRIC", "MIN_SINGLE_TALK_S", "echo_check"]

MIN_SINGLE_TALK_S = 1.0  #: less single talk than this is named as the reason an echo is not measurable


def judge(ctx: Context) -> list[CheckResult]:
    assert ctx.sent is not None
    al, sr, rec8, ref8 = ctx.al, ctx.sr, ctx.rec8, ctx.ref8
    snt8 = to_analysis_rate(ctx.sent, ctx.rate)[: len(rec8)]
    far = far_end(rec8, ref8, al.delay_map, sr, start=al.start, unfit=ctx.unsteady)
    residual = rec8 - far
    usable = steady(len(rec8), al.delay_map, sr, start=al.start) & clean(residual, far, sr)
    far_silent = reference_silence(ref8, sr, below_db=FAR_SILENT_DB)
    talk_s = single_talk_seconds(snt8, far_silent, al.delay_map, usable, sr, start=al.start)
    ctx.a.echo = estimate_echo(residual, snt8, sr, weights=usable.astype(np.float64), single_talk_s=talk_s)
    return [echo_check(ctx.a.echo, ctx.t)]


def echo_check(e: EchoResult, t: Thresholds) -> CheckResult:
    """The ``echo`` check of an :class:`EchoResult`: FAIL when found too loud, ERROR when noise would hide one."""
    if e.detected:
        return CheckResult.compare(
            "echo",
            r(e.loss_db),
            ">=",
            t.min_echo_loss_db,
            "dB",
            f"echo of the listener's own signal {e.loss_db:.1f} dB down at {e.delay_ms:.1f} ms",
            e.to_dict(),
        )
    if math.isnan(e.bound_db):
        return CheckResult.error(
            "echo", "echo not measurable: the sent signal is silent or too short", t.min_echo_loss_db, "dB"
        )
    if e.bound_db < t.min_echo_loss_db:
        talk = (
            f" in {e.single_talk_s:.1f} s of single talk (the listener talking while the far end is silent)"
            if e.single_talk_s is not None
            else ""
        )
        short = e.single_talk_s is not None and e.single_talk_s < MIN_SINGLE_TALK_S
        why = (
            f"echo not measurable: too little single talk ({e.single_talk_s:.1f} s of the listener talking while "
            f"the far end is silent; noise would hide an echo only {e.bound_db:.1f} dB down)"
            if short
            else f"echo not measurable: noise would hide an echo only {e.bound_db:.1f} dB down{talk}"
        )
        return CheckResult("echo", Verdict.ERROR, None, t.min_echo_loss_db, "dB", ">=", why, e.to_dict())
    return CheckResult(
        "echo",
        Verdict.PASS,
        r(e.bound_db),
        t.min_echo_loss_db,
        "dB",
        ">=",
        f"no echo found (an echo less than {e.bound_db:.1f} dB down would show)",
        e.to_dict(),
    )


METRIC = Metric(("echo",), judge, needs="sent", missing="the listener's sent signal was not given")
