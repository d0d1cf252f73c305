"""``coverage``: how much of the reference's active speech the recording let us judge, and why not all.

Every other metric judges only what the recording holds. A recording cut short, one started late, or
one whose received audio starts late or stops early would otherwise pass on what is left (a recording
cut after 40 % of the reference used to pass every check with MOS 4.2). So this check states the
seconds judged and the share of the reference's active speech (10 ms frames within 30 dB of its loud
ones) that was both recorded and heard, and FAILs below ``min_coverage_pct``. What is missing is told
apart, at each end of the reference:

- ``recording_started_late``: the recording began after the reference did (its first part was never
  recorded). With ``start_offset_s`` > 0 the caller started the recorder late: blamed on the harness.
- ``media_started_late``: the recording holds the start of the reference, but the received is silent
  there and speech is heard only from later on (the media path opened late).
- ``media_stopped``: the received went silent before the reference ended while the recording ran on
  (the call dropped or its audio stopped; the recorder kept going).
- ``call_dropped``: the recording ended before ``expected_s`` (the length the caller meant to record):
  the call, or the recorder, stopped early.
- ``recording_too_short``: the recording is as long as planned (``expected_s``) but shorter than the
  reference plus the delay: the caller recorded too little (blamed on the harness).
- ``recording_ended_early``: the recording ended before the reference did and no ``expected_s`` was
  given to tell the last two apart.
"""

from __future__ import annotations

import numpy as np

from harness.audio.checks.base import Context, Metric, r
from harness.contracts.verdict import CheckResult, Verdict

__all__ = ["EARLY_S", "METRIC", "MIN_EDGE_S"]

FRAME_S = 0.01
HEARD_DB = 20.0  #: a received frame this far below the gain-matched reference frame is silent ...
HEARD_CORR = 0.5  #: ... unless it still correlates with the reference this well (a band limit, a codec)
ABOVE_FLOOR_DB = 10.0  #: a frame heard by its level stands this far above the received's floor (10th percentile)
JUDGE_DB = 20.0  #: reference frames within this of its loud frames (90th percentile) tell heard from silent
MIN_EDGE_S = 0.2  #: less speech than this missing at an end is not reported (a first syllable's onset)
RUN = 10  #: judgeable frames that decide whether the received is heard steadily from (or until) a frame
EARLY_S = 0.25  #: a recording this much shorter than ``expected_s`` ended early


def _heard(ctx: Context) -> tuple[np.ndarray, np.ndarray]:
    """Per 10 ms frame of the judged stretch: (the reference is loud enough to tell, the received has it)."""
    er, ea = ctx.band_frames
    f = round(FRAME_S * ctx.sr)
    n = len(er)
    speech = ctx.speech[: n * f : f][:n]
    if not np.any(speech):
        return np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
    loud = float(np.percentile(er[speech], 90))
    judgeable = speech & (er >= loud - JUDGE_DB)
    x = ctx.ref8[: n * f].reshape(n, f)
    y = ctx.al.aligned[: n * f].reshape(n, f)
    rho = np.einsum("ij,ij->i", x, y) / np.sqrt(
        np.maximum(np.einsum("ij,ij->i", x, x) * np.einsum("ij,ij->i", y, y), 1e-30)
    )
    # loud enough for the reference's frame, and above the received's own floor (hiss where the media
    # has not started yet is not speech heard), or still the reference's waveform
    floor = float(np.percentile(ea, 10))
    heard = ((ea >= er + ctx.gain_db - HEARD_DB) & (ea >= floor + ABOVE_FLOOR_DB)) | (rho >= HEARD_CORR)
    return judgeable, heard & ctx.al.valid[: n * f : f][:n]


def _heard_edges(judgeable: np.ndarray, heard: np.ndarray) -> tuple[int, int] | None:
    """The first and last frame from which the received is heard steadily: a heard judgeable frame
    followed (preceded) by mostly heard ones among the next (last) :data:`RUN` judgeable frames, so a
    stray noise peak in a silent stretch does not count as the media having started."""
    idx = np.flatnonzero(judgeable)
    h = heard[idx].astype(np.float64)
    if not np.any(h):
        return None
    csum = np.concatenate([[0.0], np.cumsum(h)])
    n = len(h)
    i = np.arange(n)
    ahead = (csum[np.minimum(i + RUN, n)] - csum[i]) / np.minimum(RUN, n - i)
    behind = (csum[i + 1] - csum[np.maximum(i + 1 - RUN, 0)]) / np.minimum(RUN, i + 1)
    first = np.flatnonzero((h > 0) & (ahead >= 0.5))
    last = np.flatnonzero((h > 0) & (behind >= 0.5))
    if not len(first) or not len(last):
        return None
    return int(idx[first[0]]), int(idx[last[-1]])


def judge(ctx: Context) -> list[CheckResult]:
    a, t, sr = ctx.a, ctx.t, ctx.sr
    f = round(FRAME_S * sr)
    sp_full = ctx.speech_full
    total = float(np.count_nonzero(sp_full)) / sr
    not_rec_start = float(np.count_nonzero(sp_full[: ctx.lo])) / sr
    not_rec_end = float(np.count_nonzero(sp_full[ctx.hi :])) / sr
    judgeable, heard = _heard(ctx)
    speech = ctx.speech[: len(judgeable) * f : f][: len(judgeable)]
    edges = _heard_edges(judgeable, heard)
    silent_start = silent_end = 0.0
    first_heard_s = last_heard_s = None
    if edges is not None:
        k1, k2 = edges
        first_heard_s, last_heard_s = (ctx.lo + k1 * f) / sr, (ctx.lo + (k2 + 1) * f) / sr
        if np.any(judgeable[:k1]):
            silent_start = float(np.count_nonzero(speech[:k1])) * FRAME_S
        if np.any(judgeable[k2 + 1 :]):
            silent_end = float(np.count_nonzero(speech[k2 + 1 :])) * FRAME_S
    missing = {
        "not_recorded_start_s": not_rec_start,
        "silent_start_s": silent_start,
        "silent_end_s": silent_end,
        "not_recorded_end_s": not_rec_end,
    }
    missing = {k: (v if v >= MIN_EDGE_S else 0.0) for k, v in missing.items()}
    covered = max(total - sum(missing.values()), 0.0)
    share = 100.0 * covered / total if total > 0 else 0.0
    lag_s = ctx.al.delay_ms / 1000.0
    rec_s = len(ctx.rec) / ctx.rate
    need_s = lag_s + len(ctx.ref8_full) / sr + 0.1  # the whole reference, its closing silence included
    codes, texts, harness_fault = _diagnose(ctx, missing, first_heard_s, last_heard_s, rec_s, need_s)
    judged = f"judged {ctx.lo / sr:.2f}-{ctx.hi / sr:.2f} s of the {len(ctx.ref8_full) / sr:.2f} s reference"
    summary = f"{judged}: {covered:.2f} of its {total:.2f} s of active speech ({share:.1f} %)"
    a.coverage = {
        "judged_s": [r(ctx.lo / sr, 3), r(ctx.hi / sr, 3)],
        "judged_seconds": r((ctx.hi - ctx.lo) / sr, 3),
        "reference_s": r(len(ctx.ref8_full) / sr, 3),
        "recording_s": r(rec_s, 3),
        "expected_s": ctx.expected_s,
        "speech_s": r(total, 3),
        "covered_speech_s": r(covered, 3),
        "share_pct": r(share, 1),
        "missing_s": {k: r(v, 3) for k, v in missing.items()},
        #: the reference time from which and until which the received was heard
        "heard_s": None if first_heard_s is None else [r(first_heard_s, 3), r(last_heard_s or 0.0, 3)],
        "diagnosis": codes,
    }
    check = CheckResult.compare(
        "coverage",
        r(share, 1),
        ">=",
        t.min_coverage_pct,
        "%",
        summary + ("; " + "; ".join(texts) if texts else ""),
        {k: v for k, v in a.coverage.items() if k not in ("missing_s", "heard_s")} | a.coverage["missing_s"],
    )
    if harness_fault and check.verdict.value != "PASS":  # the harness's own shortfall says nothing of the target
        check.verdict, check.blame = Verdict.ERROR, "harness"
    return [check]


def _diagnose(
    ctx: Context,
    missing: dict[str, float],
    first_heard_s: float | None,
    last_heard_s: float | None,
    rec_s: float,
    need_s: float,
) -> tuple[list[str], list[str], bool]:
    """``(codes, sentences, every shortfall is the harness's)`` for what the recording misses."""
    codes: list[str] = []
    texts: list[str] = []
    mine = True
    off = ctx.start_offset_s
    if missing["not_recorded_start_s"]:
        codes.append("recording_started_late")
        by = f" (the recorder started {off:.2f} s after the player)" if off is not None and off > 0 else ""
        texts.append(
            f"the recording started after the reference began{by}: its first {ctx.lo / ctx.sr:.2f} s "
            f"({missing['not_recorded_start_s']:.2f} s of speech) were never recorded"
        )
        mine = mine and off is not None and off > 0
    if missing["silent_start_s"]:
        codes.append("media_started_late")
        texts.append(
            f"media started late: the recording holds the start of the reference but the received is silent for "
            f"its first {missing['silent_start_s']:.2f} s of speech; audio is heard from {first_heard_s:.2f} s of "
            "the reference on"
        )
        mine = False
    if missing["silent_end_s"]:
        codes.append("media_stopped")
        texts.append(
            f"media stopped: the received went silent at {last_heard_s:.2f} s of the reference while the recording "
            f"ran on ({missing['silent_end_s']:.2f} s of speech unheard): the call dropped or its audio stopped"
        )
        mine = False
    if missing["not_recorded_end_s"]:
        lost = f"{missing['not_recorded_end_s']:.2f} s of the reference's speech"
        to_end = ", with received audio to its end" if not missing["silent_end_s"] else ""
        exp = ctx.expected_s
        if exp is not None and rec_s < exp - EARLY_S:
            codes.append("call_dropped")
            texts.append(
                f"call dropped or recording stopped early: the recording ends at {rec_s:.2f} s, {exp - rec_s:.2f} s "
                f"before the {exp:.2f} s it should have lasted{to_end} ({lost} never heard)"
            )
            mine = False
        elif exp is not None:
            codes.append("recording_too_short")
            texts.append(
                f"the recording was too short: {rec_s:.2f} s as planned ({exp:.2f} s), but the reference plus the "
                f"delay needs {need_s:.2f} s; {lost} were never judged: record at least {need_s:.1f} s"
            )
        else:
            codes.append("recording_ended_early")
            texts.append(
                f"the recording ({rec_s:.2f} s) ends before the reference does (it needs {need_s:.2f} s){to_end}: "
                f"the call dropped or the recording stopped early ({lost} never heard; pass expected_s to tell "
                "them apart)"
            )
            mine = False
    return codes, texts, mine and bool(codes)


METRIC = Metric(("coverage",), judge)
