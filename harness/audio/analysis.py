"""The analysis of one call direction: gate first, then every metric, each judged into a check.

Order matters. The gate (audio present, and it is the reference) runs before everything else,
because every later metric silently assumes it: a silent or wrong recording yields FAIL at the gate
and the metrics that cannot be measured are left out, each with its reason in ``skipped``, never
reported as PASS. Then the delay track aligns the two signals, and level, dropouts, noise, clipping,
echo, level stability and the perceptual MOS are measured on the aligned signals.

Check names are stable snake_case identifiers (the connect scenario prefixes them with the direction,
e.g. ``caller->agent:mos``); see :data:`CHECK_NAMES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from harness.audio.align import Alignment, align
from harness.audio.clipping import ClippingResult, detect_clipping
from harness.audio.dropouts import Dropout, find_dropouts
from harness.audio.echo import (
    FAR_SILENT_DB,
    EchoResult,
    clean,
    estimate_echo,
    far_end,
    single_talk_seconds,
    steady,
)
from harness.audio.emodel import EModelResult, emodel
from harness.audio.gate import envelope_correlation, has_audio, waveform_correlation
from harness.audio.level import SILENCE_DBOV, ActiveLevel, active_level, gain_track, level_stability
from harness.audio.mos import MosResult, perceptual_mos
from harness.audio.noise import NoiseResult, measure_noise, reference_silence
from harness.audio.thresholds import Thresholds
from harness.audio.wavio import AudioInputError, read_wav
from harness.verdict import CheckResult, Verdict, worst

__all__ = ["ANALYSIS_RATE", "CHECK_NAMES", "Analysis", "RtpStats", "analyze", "analyze_files"]

Signal = npt.NDArray[np.float64]

ANALYSIS_RATE = 8000  #: alignment, dropouts, noise, echo and MOS work on narrowband signals
MIN_SINGLE_TALK_S = 1.0  #: less single talk than this is named as the reason an echo is not measurable

#: Every check name :func:`analyze` can emit, in the order it emits them.
CHECK_NAMES: tuple[str, ...] = (
    "audio_present",  # FAIL: received has no audio (level/activity); ERROR: the reference has none
    "reference_match",  # FAIL: received audio is not the reference (wrong / crossed audio)
    "delay",  # global one-way delay (GCC-PHAT) <= max_delay_ms
    "delay_variation",  # largest minus smallest delay of the delay track <= max_delay_variation_ms
    "gain",  # |received - reference active level| <= max_abs_gain_db
    "speech_level",  # received P.56 active speech level >= min_speech_level_dbov
    "dropouts",  # number of dropout events <= max_dropouts
    "noise_floor",  # received power in reference silences <= max_noise_floor_dbov
    "snr",  # speech level minus noise floor >= min_snr_db
    "clipping",  # share of samples piled up at the clip level <= max_clipping_pct
    "echo",  # echo return loss >= min_echo_loss_db (only with the listener's sent signal)
    "level_stability",  # spread of the per-second gain <= max_level_variation_db
    "mos",  # perceptual MOS-LQO estimate >= min_mos
    "emodel_r",  # G.107 R-factor from RTP statistics >= min_emodel_r (only with rtp stats)
)


@dataclass(frozen=True)
class RtpStats:
    """Stream statistics for the E-model, as the SIP layer reads them from pjsua2/RTCP."""

    codec: str
    loss_pct: float
    jitter_ms: float
    rtt_ms: float
    burst_ratio: float = 1.0
    jitter_buffer_ms: float | None = None


@dataclass
class Analysis:
    """Every metric of one direction, and the checks judged from them. NaN/None: not measured."""

    direction: str = ""
    rate: int = 0
    duration_s: float = 0.0
    no_audio: bool = False
    one_way: bool | None = None  #: received silent while the listener's own sent audio is present
    wrong_audio: bool | None = None
    reference_match: float | None = None  #: max(waveform, envelope correlation)
    waveform_corr: float | None = None
    envelope_corr: float | None = None
    #: the stretch of the reference judged, ``(start_s, end_s)``, when the recording holds less than
    #: all of it (it ended early, or started late); None when the whole reference was heard
    overlap_s: tuple[float, float] | None = None
    delay_ms: float | None = None
    delay_variation_ms: float | None = None
    delay_track: list[dict[str, float | bool]] = field(default_factory=list)
    delay_jumps: list[dict[str, float]] = field(default_factory=list)
    level_dbov: float | None = None  #: received P.56 active speech level
    activity: float | None = None
    reference_level_dbov: float | None = None
    gain_db: float | None = None
    level_stability_db: float | None = None
    noise_floor_dbov: float | None = None
    noise_snr_db: float | None = None
    dropouts: list[Dropout] = field(default_factory=list)
    clipping: ClippingResult | None = None
    echo: EchoResult | None = None
    mos: float | None = None
    mos_detail: MosResult | None = None
    emodel: EModelResult | None = None
    checks: list[CheckResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  #: check name -> why it was not judged

    @property
    def verdict(self) -> Verdict:
        """Worst verdict of all checks (ERROR > FAIL > PASS); no checks at all is ERROR."""
        return worst([c.verdict for c in self.checks])

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def check(self, name: str) -> CheckResult | None:
        """The check called ``name``, or None when it was not judged."""
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: NaN becomes None, dataclasses become dicts."""
        return _json_safe(
            {
                "direction": self.direction,
                "verdict": self.verdict.value,
                "rate": self.rate,
                "duration_s": self.duration_s,
                "no_audio": self.no_audio,
                "one_way": self.one_way,
                "wrong_audio": self.wrong_audio,
                "reference_match": self.reference_match,
                "waveform_corr": self.waveform_corr,
                "envelope_corr": self.envelope_corr,
                "mos": self.mos,
                "mos_detail": None
                if self.mos_detail is None
                else {
                    "raw": self.mos_detail.raw,
                    "d_sym": self.mos_detail.d_sym,
                    "d_asym": self.mos_detail.d_asym,
                },
                "overlap_s": None if self.overlap_s is None else list(self.overlap_s),
                "delay_ms": self.delay_ms,
                "delay_variation_ms": self.delay_variation_ms,
                "delay_track": self.delay_track,
                "delay_jumps": self.delay_jumps,
                "level_dbov": self.level_dbov,
                "activity": self.activity,
                "reference_level_dbov": self.reference_level_dbov,
                "gain_db": self.gain_db,
                "level_stability_db": self.level_stability_db,
                "noise_floor_dbov": self.noise_floor_dbov,
                "noise_snr_db": self.noise_snr_db,
                "dropouts": [d.to_dict() for d in self.dropouts],
                "clipping": None if self.clipping is None else self.clipping.to_dict(),
                "echo": None if self.echo is None else self.echo.to_dict(),
                "emodel": None if self.emodel is None else self.emodel.to_dict(),
                "checks": [c.to_dict() for c in self.checks],
                "skipped": dict(self.skipped),
            }
        )


def _json_safe(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_safe(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if not math.isfinite(v) else round(v, 4)
    return v


def _r(v: float, nd: int = 2) -> float:
    return round(float(v), nd)


def _to_analysis_rate(x: Signal, rate: int) -> Signal:
    if rate == ANALYSIS_RATE:
        return x
    g = math.gcd(rate, ANALYSIS_RATE)
    return np.asarray(resample_poly(x, ANALYSIS_RATE // g, rate // g), dtype=np.float64)


def _as_signal(x: Any, what: str) -> Signal:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{what} must be a 1-D array of samples, got shape {a.shape}")
    if len(a) == 0:
        raise ValueError(f"{what} is empty")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what} contains NaN or infinite samples")
    return a


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
) -> Analysis:
    """Analyse one call direction: ``received`` (what the listener recorded) against ``reference``.

    Both are float sample arrays in [-1, 1) at ``rate`` Hz (8000 or more; 16 kHz is analysed at
    8 kHz except level and clipping). ``sent`` is what the listener itself played into the call, on
    the same clock as ``received``: with it, echo is measured and one-way audio is told apart from a
    dead call. ``rtp`` adds the G.107 E-model check. Raises ValueError for unusable arrays.
    """
    t = thresholds or Thresholds()
    if rate < ANALYSIS_RATE:
        raise ValueError(f"sample rate {rate} Hz is below {ANALYSIS_RATE} Hz")
    rec = _as_signal(received, "received")
    ref = _as_signal(reference, "reference")
    snt = _as_signal(sent, "sent") if sent is not None else None
    a = Analysis(direction=direction, rate=rate, duration_s=_r(len(rec) / rate, 3))

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
        _skip_rest(a, "the reference has no audio", start="reference_match", t=t, sent=snt, rtp=rtp)
        return a

    # ---- gate 1: is there audio at all?
    present = has_audio(rec_level, t.no_audio_level_dbov, t.no_audio_min_activity)
    a.no_audio = not present
    sent_level: ActiveLevel | None = active_level(snt, rate) if snt is not None else None
    if sent_level is not None:
        a.one_way = a.no_audio and has_audio(sent_level, t.no_audio_level_dbov, t.no_audio_min_activity)
    level_txt = "digital silence" if rec_level.level_dbov <= SILENCE_DBOV else f"{rec_level.level_dbov:.1f} dBov"
    if not present:
        why = "one-way audio: the listener sends audio but receives none" if a.one_way else "no audio received"
        a.checks.append(
            CheckResult(
                "audio_present",
                Verdict.FAIL,
                _r(rec_level.level_dbov),
                t.no_audio_level_dbov,
                "dBov",
                ">=",
                f"{why} (level {level_txt}, speech activity {100 * rec_level.activity:.2f} %; needs >= "
                f"{t.no_audio_level_dbov:g} dBov and >= {100 * t.no_audio_min_activity:g} %)",
                {"activity": _r(rec_level.activity, 4)},
            )
        )
        _skip_rest(a, why, start="reference_match", t=t, sent=snt, rtp=rtp)
        return a
    a.checks.append(
        CheckResult(
            "audio_present",
            Verdict.PASS,
            _r(rec_level.level_dbov),
            t.no_audio_level_dbov,
            "dBov",
            ">=",
            f"audio received at {level_txt}, speech activity {100 * rec_level.activity:.1f} %",
            {"activity": _r(rec_level.activity, 4)},
        )
    )

    # ---- gate 2: is it the reference?
    rec8, ref8 = _to_analysis_rate(rec, rate), _to_analysis_rate(ref, rate)
    sr = ANALYSIS_RATE
    speech = _reference_speech_mask(ref8, sr)
    al = align(rec8, ref8, sr, active=speech)
    # judge only what the recording holds: one that ends before the reference does (the call ended,
    # a probe recorded 5 s of an 8 s prompt) has no dropout at its end, one that started late none at
    # its start
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
            _skip_rest(a, why, start="delay", t=t, sent=snt, rtp=rtp)
            return a
        al, ref8, speech, ref_level = g_al, g_ref, g_speech, heard_level
        a.reference_level_dbov = _r(ref_level.level_dbov)
    a.checks.append(match)
    if a.wrong_audio:
        _skip_rest(a, "the received audio is not the reference", start="delay", t=t, sent=snt, rtp=rtp)
        return a

    _measure(a, t, al, rec8, ref8, speech, rec_level, ref_level, snt, rate)
    if rtp is not None:
        _emodel_check(a, t, rtp)
    return a


def _measure(
    a: Analysis,
    t: Thresholds,
    al: Alignment,
    rec8: Signal,
    ref8: Signal,
    speech: npt.NDArray[np.bool_],
    rec_level: ActiveLevel,
    ref_level: ActiveLevel,
    snt: Signal | None,
    rate: int,
) -> None:
    sr = ANALYSIS_RATE
    # ---- delay
    a.delay_ms = _r(al.delay_ms, 3)
    a.delay_variation_ms = _r(al.delay_range_ms(sr), 3)
    a.delay_track = [
        {
            "start_s": _r(b.start_s, 3),
            "delay_ms": _r(b.delay_ms, 3),
            "corr": _r(b.corr, 3),
            "measured": b.measured,
        }
        for b in al.track
    ]
    gaps = {al.start + b: (b - f) * 1000.0 / sr for f, b in al.fillers}  # keyed by where the jump lands
    a.delay_jumps = [
        {"at_s": _r(ts, 3), "jump_ms": _r(j, 3), "gap_ms": _r(gaps.get(round(ts * sr), 0.0), 1)}
        for ts, j in al.jumps(sr)
    ]
    in_speech = sum(1 for j in a.delay_jumps if j["gap_ms"] > 0)
    a.checks.append(
        CheckResult.compare(
            "delay",
            a.delay_ms,
            "<=",
            t.max_delay_ms,
            "ms",
            f"received lags the reference by {a.delay_ms:.1f} ms (GCC-PHAT, confidence {al.peak:.0f})",
        )
    )
    a.checks.append(
        CheckResult.compare(
            "delay_variation",
            a.delay_variation_ms,
            "<=",
            t.max_delay_variation_ms,
            "ms",
            f"{len(a.delay_jumps)} delay jump(s) through the call"
            + (f", {in_speech} in mid-speech (a gap the jitter buffer filled)" if in_speech else ""),
            {"jumps": len(a.delay_jumps)},
        )
    )

    # ---- level and gain
    gain = rec_level.level_dbov - ref_level.level_dbov
    a.gain_db = _r(gain)
    a.checks.append(
        CheckResult.compare(
            "gain",
            _r(abs(gain)),
            "<=",
            t.max_abs_gain_db,
            "dB",
            f"received is {abs(gain):.1f} dB {'louder' if gain >= 0 else 'quieter'} than the reference "
            f"({rec_level.level_dbov:.1f} vs {ref_level.level_dbov:.1f} dBov)",
            {"gain_db": a.gain_db},
        )
    )
    a.checks.append(
        CheckResult.compare(
            "speech_level",
            a.level_dbov,
            ">=",
            t.min_speech_level_dbov,
            "dBov",
            "ITU-T P.56 active speech level",
        )
    )

    # ---- dropouts (the gap a delay jump leaves in mid-speech is the jump's, judged by delay_variation)
    t0 = al.start / sr
    found = find_dropouts(al.aligned, ref8, sr, gain, t.dropout_depth_db, t.dropout_min_ms)
    jump_gaps = al.fillers + al.skips
    a.dropouts = [Dropout(d.start_s + t0, d.end_s + t0) for d in found if not _at_jump(d, jump_gaps, sr)]
    listed = ", ".join(f"{d.start_s:.2f}-{d.end_s:.2f} s" for d in a.dropouts[:5])
    more = f" (+{len(a.dropouts) - 5} more)" if len(a.dropouts) > 5 else ""
    a.checks.append(
        CheckResult.compare(
            "dropouts",
            float(len(a.dropouts)),
            "<=",
            t.max_dropouts,
            "events",
            f"{len(a.dropouts)} dropout(s)"
            + (f": {listed}{more}" if a.dropouts else "")
            + (
                f" (judged {a.overlap_s[0]:.2f}-{a.overlap_s[1]:.2f} s of the reference: the recording holds no more)"
                if a.overlap_s
                else ""
            ),
            {"total_ms": _r(sum(d.duration_ms for d in a.dropouts), 1)},
        )
    )

    # ---- noise
    nz: NoiseResult = measure_noise(al.aligned, al.valid, ref8, sr, rec_level.level_dbov)
    if math.isnan(nz.floor_dbov):
        why = f"the reference has only {nz.silence_s:.2f} s of silence to measure noise in (needs 0.2 s)"
        a.checks.append(CheckResult.error("noise_floor", why, t.max_noise_floor_dbov, "dBov"))
        a.checks.append(CheckResult.error("snr", why, t.min_snr_db, "dB"))
    else:
        a.noise_floor_dbov = _r(nz.floor_dbov)
        a.noise_snr_db = _r(nz.snr_db)
        a.checks.append(
            CheckResult.compare(
                "noise_floor",
                a.noise_floor_dbov,
                "<=",
                t.max_noise_floor_dbov,
                "dBov",
                f"received power over {nz.silence_s:.1f} s of reference silence",
            )
        )
        a.checks.append(
            CheckResult.compare("snr", a.noise_snr_db, ">=", t.min_snr_db, "dB", "speech level minus noise floor")
        )

    # ---- clipping
    clip = a.clipping
    assert clip is not None
    a.checks.append(
        CheckResult.compare(
            "clipping",
            _r(clip.ratio_pct, 4),
            "<=",
            t.max_clipping_pct,
            "%",
            (
                f"{clip.clipped_samples} samples piled up at {20 * math.log10(clip.clip_level):.2f} dBFS "
                f"({clip.runs} flat tops)"
            )
            if clip.clipped
            else "no pile-up at the peak: not clipped",
            clip.to_dict(),
        )
    )

    # ---- echo: in what the far end's speech does not touch (single talk, and double talk where it
    # cancelled cleanly), never next to a delay jump
    if snt is None:
        a.skipped["echo"] = "the listener's sent signal was not given"
    else:
        snt8 = _to_analysis_rate(snt, rate)[: len(rec8)]
        unfit = np.zeros(len(ref8), dtype=bool)
        for f, b in al.fillers + al.skips:
            unfit[f:b] = True
        far = far_end(rec8, ref8, al.delay_map, sr, start=al.start, unfit=unfit)
        residual = rec8 - far
        usable = steady(len(rec8), al.delay_map, sr, start=al.start) & clean(residual, far, sr)
        far_silent = reference_silence(ref8, sr, below_db=FAR_SILENT_DB)
        talk_s = single_talk_seconds(snt8, far_silent, al.delay_map, usable, sr, start=al.start)
        a.echo = estimate_echo(residual, snt8, sr, weights=usable.astype(np.float64), single_talk_s=talk_s)
        a.checks.append(_echo_check(a.echo, t))

    # ---- level stability (reference speech, less dropouts)
    mask = speech.copy()
    for d in a.dropouts:
        mask[round((d.start_s - t0) * sr) : round((d.end_s - t0) * sr)] = False
    for f, b in al.fillers + al.skips:
        mask[f:b] = False
    track = gain_track(al.aligned, ref8, sr, mask & al.valid)
    stab = level_stability(track)
    if math.isnan(stab):
        a.checks.append(
            CheckResult.error(
                "level_stability",
                "fewer than two seconds of speech to compare",
                t.max_level_variation_db,
                "dB",
            )
        )
    else:
        a.level_stability_db = _r(stab)
        a.checks.append(
            CheckResult.compare(
                "level_stability",
                a.level_stability_db,
                "<=",
                t.max_level_variation_db,
                "dB",
                f"per-second gain spread over {len(track)} blocks",
            )
        )

    # ---- perceptual MOS
    m = perceptual_mos(ref8, al.aligned, sr)
    a.mos_detail = m
    a.mos = _r(m.mos)
    a.checks.append(
        CheckResult.compare("mos", a.mos, ">=", t.min_mos, "MOS-LQO", "perceptual disturbance model (narrowband)")
    )


def _at_jump(d: Dropout, spans: list[tuple[int, int]], rate: int, slack_s: float = 0.02) -> bool:
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


def _echo_check(e: EchoResult, t: Thresholds) -> CheckResult:
    if e.detected:
        return CheckResult.compare(
            "echo",
            _r(e.loss_db),
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
        _r(e.bound_db),
        t.min_echo_loss_db,
        "dB",
        ">=",
        f"no echo found (an echo less than {e.bound_db:.1f} dB down would show)",
        e.to_dict(),
    )


def _emodel_check(a: Analysis, t: Thresholds, rtp: RtpStats) -> None:
    try:
        em = emodel(rtp.codec, rtp.loss_pct, rtp.jitter_ms, rtp.rtt_ms, rtp.burst_ratio, rtp.jitter_buffer_ms)
    except ValueError as exc:
        a.checks.append(CheckResult.error("emodel_r", f"E-model not computed: {exc}", t.min_emodel_r))
        return
    a.emodel = em
    a.checks.append(
        CheckResult.compare(
            "emodel_r",
            _r(em.r),
            ">=",
            t.min_emodel_r,
            "R",
            f"G.107 R {em.r:.1f} (MOS-CQE {em.mos:.2f}) for {em.codec}, loss {em.ppl:.2f} %, "
            f"one-way delay {em.one_way_delay_ms:.0f} ms",
            em.to_dict(),
        )
    )


def _skip_rest(a: Analysis, why: str, start: str, t: Thresholds, sent: Signal | None, rtp: RtpStats | None) -> None:
    """Record every check after ``start`` as not measured, with the reason (never as PASS)."""
    names = list(CHECK_NAMES[CHECK_NAMES.index(start) :])
    for name in names:
        if name == "echo" and sent is None:
            a.skipped[name] = "the listener's sent signal was not given"
        elif name == "emodel_r":
            continue
        else:
            a.skipped[name] = f"not measured: {why}"
    if rtp is not None:
        # network statistics do not depend on the recording: the E-model is still judged
        _emodel_check(a, t, rtp)


def analyze_files(
    received_path: str | Path,
    reference_path: str | Path,
    thresholds: Thresholds | None = None,
    direction: str = "",
    *,
    sent_path: str | Path | None = None,
    rtp: RtpStats | None = None,
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
    return analyze(rec, ref, rate, thresholds, direction=direction, sent=snt, rtp=rtp)
