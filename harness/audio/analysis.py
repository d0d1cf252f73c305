"""The analysis of one call direction: the gate first, then every metric plug-in, each judged into checks.

Order matters. The gate (speech present, and it is the reference) runs before everything else,
because every later metric silently assumes it: a silent or wrong recording yields FAIL at the gate
and the metrics that cannot be measured are left out, each with its reason in ``skipped``, never
reported as PASS. Then the delay track aligns the two signals, and the metrics registered in
:mod:`harness.audio.checks` (coverage, delay, level, dropouts, noise, clipping, echo, level
stability, bandwidth, MOS and its drop below the clip's ceiling, E-model) measure and judge.

Check names are stable snake_case identifiers (the connect scenario prefixes them with the direction,
e.g. ``caller->agent:mos``); see :data:`CHECK_NAMES`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.audio.align import align
from harness.audio.checks import CHECK_NAMES, METRICS, Context
from harness.audio.checks.base import ANALYSIS_RATE, to_analysis_rate
from harness.audio.clipping import detect_clipping
from harness.audio.gate import envelope_correlation, has_audio, modulation_db, waveform_correlation
from harness.audio.level import SILENCE_DBOV, active_level
from harness.audio.result import Analysis, RtpStats
from harness.audio.wavio import read_wav
from harness.contracts.errors import AudioInputError
from harness.contracts.thresholds import Thresholds
from harness.contracts.verdict import CheckResult, Verdict

__all__ = ["ANALYSIS_RATE", "CHECK_NAMES", "Analysis", "RtpStats", "analyze", "analyze_files", "to_analysis_rate"]

Signal = npt.NDArray[np.float64]

DEFAULT_CODEC = "PCMU"  #: the codec the MOS ceiling assumes when neither ``codec`` nor ``rtp`` names one


def _r(v: float, nd: int = 2) -> float:
    return round(float(v), nd)


def _as_signal(x: Any, what: str) -> Signal:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of samples, got shape {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} contains NaN or infinite samples")
    return a


def _seconds(v: float | None, what: str, positive: bool = False) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or (positive and v <= 0):
        raise ValueError(f"{what} must be a finite number of seconds{' above 0' if positive else ''}, got {v!r}")
    return float(v)


def _reference_speech_mask(reference: Signal, rate: int, below_db: float = 30.0) -> npt.NDArray[np.bool_]:
    """Per-sample mask of reference speech: 10 ms frames within ``below_db`` of the loud frames."""
    f = round(0.01 * rate)
    n = len(reference) // f
    mask = np.zeros(len(reference), dtype=bool)
    if n == 0:
        return mask
    e = 10 * np.log10(np.mean(reference[: n * f].reshape(n, f) ** 2, axis=1) + 1e-13)
    mask[: n * f] = np.repeat(e >= np.percentile(e, 95) - below_db, f)
    return mask


def analyze(
    received: npt.ArrayLike,
    reference: npt.ArrayLike,
    rate: int,
    thresholds: Thresholds | None = None,
    *,
    direction: str = "",
    sent: npt.ArrayLike | None = None,
    rtp: RtpStats | None = None,
    start_offset_s: float | None = None,
    expected_s: float | None = None,
    codec: str | None = None,
) -> Analysis:
    """Analyse one call direction: ``received`` (what the listener recorded) against ``reference``.

    Both are float sample arrays in [-1, 1) at ``rate`` Hz (8000 or more; 16 kHz is analysed at
    8 kHz except level and clipping). Optional, each making a judgement possible or sharper:

    - ``sent``: what the listener itself played into the call, on the same clock as ``received``:
      echo is measured, and one-way audio is told apart from a dead call;
    - ``rtp``: stream statistics: the G.107 E-model check (and the default ``codec``);
    - ``start_offset_s``: when the recording started minus when the reference started playing
      (seconds; negative when the recorder started first). Taken out of the delay: ``delay_ms`` is the
      path's delay, not the recording's lag, and a recorder started late is named in ``coverage``;
    - ``expected_s``: how long the recording was meant to last: a shorter one ended early (the call
      dropped); one as long as planned but shorter than the reference was planned too short;
    - ``codec``: the negotiated codec (SDP name, e.g. ``PCMU``), for the MOS ceiling; default the
      ``rtp`` codec, else PCMU.

    Raises ValueError for unusable arrays or parameters.
    """
    t = thresholds or Thresholds()
    if rate < ANALYSIS_RATE:
        raise ValueError(f"sample rate {rate} Hz is below {ANALYSIS_RATE} Hz")
    rec = _as_signal(received, "received")
    ref = _as_signal(reference, "reference")
    snt = _as_signal(sent, "sent") if sent is not None else None
    offset = _seconds(start_offset_s, "start_offset_s")
    expected = _seconds(expected_s, "expected_s", positive=True)
    use_codec = (codec or (rtp.codec if rtp is not None else "") or DEFAULT_CODEC).strip()
    a = Analysis(direction=direction, rate=rate, duration_s=_r(len(rec) / rate, 3), start_offset_s=offset)
    a.codec = use_codec.lower()

    ref_level = active_level(ref, rate)
    rec_level = active_level(rec, rate)
    a.reference_level_dbov = _r(ref_level.level_dbov)
    a.level_dbov = _r(rec_level.level_dbov) if rec_level.level_dbov > SILENCE_DBOV else None
    a.activity = _r(rec_level.activity, 4)
    a.clipping = detect_clipping(rec)

    if not has_audio(ref_level, t.no_audio_level_dbov, t.no_audio_min_activity):
        a.checks.append(
            CheckResult.error(
                "audio_present", "the reference has no audio: nothing to compare the received signal with"
            )
        )
        _skip_rest(a, "the reference has no audio", "reference_match", t, snt, rtp)
        return a

    # ---- gate 1: is there speech at all? Level and activity, and (when the reference is speech-like)
    # level changes like speech: steady hiss or comfort noise at any level is no audio
    ref_speechlike = modulation_db(ref, rate) >= t.no_audio_min_modulation_db
    modulation = modulation_db(rec, rate)
    a.modulation_db = _r(modulation, 1)
    loud_enough = has_audio(rec_level, t.no_audio_level_dbov, t.no_audio_min_activity)
    present = loud_enough and (modulation >= t.no_audio_min_modulation_db or not ref_speechlike)
    a.no_audio = not present
    if snt is not None:
        a.one_way = a.no_audio and has_audio(active_level(snt, rate), t.no_audio_level_dbov, t.no_audio_min_activity)
    if not present:
        a.checks.append(_absent(a, t, rec_level.level_dbov, rec_level.activity, modulation, loud_enough))
        _skip_rest(a, a.checks[-1].detail.split(" (")[0], "reference_match", t, snt, rtp)
        return a
    level_txt = f"{rec_level.level_dbov:.1f} dBov"
    a.checks.append(
        CheckResult(
            "audio_present",
            Verdict.PASS,
            _r(rec_level.level_dbov),
            t.no_audio_level_dbov,
            "dBov",
            ">=",
            f"audio received at {level_txt}, speech activity {100 * rec_level.activity:.1f} %, level spread "
            f"{modulation:.1f} dB",
            {"activity": _r(rec_level.activity, 4), "modulation_db": a.modulation_db},
        )
    )

    # ---- gate 2: is it the reference?
    rec8, ref8 = to_analysis_rate(rec, rate), to_analysis_rate(ref, rate)
    sr = ANALYSIS_RATE
    speech = _reference_speech_mask(ref8, sr)
    al = align(rec8, ref8, sr, active=speech)
    # judge only what the recording holds (coverage then says how much that was, and why not all)
    lo, hi = al.overlap()
    partial = (lo, hi) != (0, len(ref8))
    heard_level = active_level(ref[lo * rate // sr : hi * rate // sr], rate) if partial and hi > lo else ref_level
    heard = has_audio(heard_level, t.no_audio_level_dbov, t.no_audio_min_activity)
    g_al, g_ref, g_speech = (al.window(lo, hi), ref8[lo:hi], speech[lo:hi]) if partial and heard else (al, ref8, speech)
    a.waveform_corr = _r(waveform_correlation(g_al.aligned, g_ref, g_speech & g_al.valid), 4)
    a.envelope_corr = _r(envelope_correlation(g_al.aligned, g_ref, sr), 4)
    a.reference_match = max(a.waveform_corr, a.envelope_corr)
    a.wrong_audio = a.reference_match < t.min_reference_match
    match = CheckResult.compare(
        "reference_match",
        a.reference_match,
        ">=",
        t.min_reference_match,
        "",
        "received audio matches the reference"
        if not a.wrong_audio
        else "wrong audio: the received signal is not the reference that was played "
        f"(waveform corr {a.waveform_corr:.2f}, envelope corr {a.envelope_corr:.2f})",
        {"waveform_corr": a.waveform_corr, "envelope_corr": a.envelope_corr},
    )
    if partial and not a.wrong_audio:
        a.overlap_s = (_r(lo / sr, 3), _r(hi / sr, 3))
        if not heard:
            why = (
                f"the recording holds only {lo / sr:.2f}-{hi / sr:.2f} s of the reference, where the reference "
                "has no audio"
            )
            a.checks.append(CheckResult.error("reference_match", why))
            _skip_rest(a, why, "coverage", t, snt, rtp)
            return a
        a.reference_level_dbov = _r(heard_level.level_dbov)
    a.checks.append(match)
    if a.wrong_audio:
        _skip_rest(a, "the received audio is not the reference", "coverage", t, snt, rtp)
        return a
    if not partial:
        lo, hi = 0, len(ref8)
    ctx = Context(
        a=a, t=t, rate=rate, rec=rec, ref=ref, rec8=rec8, ref8_full=ref8, speech_full=speech, lo=lo, hi=hi,
        ref8=g_ref, speech=g_speech, al=g_al, rec_level=rec_level, ref_level=heard_level if partial else ref_level,
        sent=snt, rtp=rtp, codec=use_codec, start_offset_s=offset, expected_s=expected,
    )  # fmt: skip
    for metric in METRICS:
        if metric.needs and getattr(ctx, metric.needs) is None:
            if metric.missing:
                a.skipped.update(dict.fromkeys(metric.names, metric.missing))
            continue
        a.checks.extend(metric.judge(ctx))
    _unmeasurable_echo_after_a_fail(a)
    a.checks.sort(key=lambda c: CHECK_NAMES.index(c.name))
    return a


def _unmeasurable_echo_after_a_fail(a: Analysis) -> None:
    """An echo the recording does not let us measure is an ERROR, except in a recording that already
    FAILs: its fault (a distorted, muffled or broken far end) is what keeps the far end's speech from
    cancelling out of the residual, and an ERROR would hide the FAIL that says so. Listed as skipped."""
    echo = a.check("echo")
    failing = [c.name for c in a.checks if c.verdict is Verdict.FAIL]
    if echo is not None and echo.verdict is Verdict.ERROR and failing:
        a.checks.remove(echo)
        a.skipped["echo"] = f"not judged: {echo.detail}; the recording already fails ({', '.join(failing)})"


def _absent(
    a: Analysis, t: Thresholds, level_dbov: float, activity: float, modulation: float, loud_enough: bool
) -> CheckResult:
    """The failed ``audio_present`` check: no audio, or only steady noise; one-way when the listener sends."""
    if level_dbov <= SILENCE_DBOV:
        heard = "digital silence"
    elif loud_enough:
        heard = (
            f"only steady noise or a tone at {level_dbov:.1f} dBov: its level spreads {modulation:.1f} dB, "
            f"speech needs >= {t.no_audio_min_modulation_db:g} dB"
        )
    else:
        heard = (
            f"level {level_dbov:.1f} dBov, speech activity {100 * activity:.2f} %; needs >= "
            f"{t.no_audio_level_dbov:g} dBov and >= {100 * t.no_audio_min_activity:g} %"
        )
    why = "one-way audio: the listener sends audio but receives none" if a.one_way else "no audio received"
    return CheckResult(
        "audio_present",
        Verdict.FAIL,
        _r(level_dbov),
        t.no_audio_level_dbov,
        "dBov",
        ">=",
        f"{why} ({heard})",
        {"activity": _r(activity, 4), "modulation_db": _r(modulation, 1)},
    )


def _skip_rest(a: Analysis, why: str, start: str, t: Thresholds, sent: Signal | None, rtp: RtpStats | None) -> None:
    """Record every check from ``start`` on as not measured, with the reason (never as PASS)."""
    by_name = {n: m for m in METRICS for n in m.names}
    for name in CHECK_NAMES[CHECK_NAMES.index(start) :]:
        m = by_name.get(name)
        if m is not None and m.network is not None:
            # network statistics do not depend on the recording: still judged when there are some
            if rtp is not None:
                a.checks.append(m.network(a, t, rtp))
        elif m is not None and m.needs == "sent" and sent is None:
            a.skipped[name] = m.missing
        else:
            a.skipped[name] = f"not measured: {why}"


def analyze_files(
    received_path: str | Path,
    reference_path: str | Path,
    thresholds: Thresholds | None = None,
    direction: str = "",
    *,
    sent_path: str | Path | None = None,
    rtp: RtpStats | None = None,
    start_offset_s: float | None = None,
    expected_s: float | None = None,
    codec: str | None = None,
) -> Analysis:
    """:func:`analyze` on WAV files. Raises :class:`AudioInputError` for unusable files or rates."""
    rec, rate = read_wav(received_path)
    ref, ref_rate = read_wav(reference_path)
    if rate != ref_rate:
        raise AudioInputError(
            received_path,
            f"sample rate {rate} Hz differs from the reference's {ref_rate} Hz ({reference_path})",
        )
    if rate < ANALYSIS_RATE:
        raise AudioInputError(received_path, f"sample rate {rate} Hz is below {ANALYSIS_RATE} Hz")
    snt = None
    if sent_path is not None:
        snt, s_rate = read_wav(sent_path)
        if s_rate != rate:
            raise AudioInputError(sent_path, f"sample rate {s_rate} Hz differs from the received {rate} Hz")
    return analyze(
        rec, ref, rate, thresholds, direction=direction, sent=snt, rtp=rtp,
        start_offset_s=start_offset_s, expected_s=expected_s, codec=codec,
    )  # fmt: skip
