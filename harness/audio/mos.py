"""A perceptual MOS estimate: a disturbance model in the spirit of ITU-T P.862, written from scratch.

This is not PESQ and never calls it (the ITU code carries commercial-use restrictions); it follows
the same published ideas, which are what make such a score track listeners:

1. both signals at one listening level (band power 300-3000 Hz), 32 ms frames, power spectra;
2. Bark bands (0.5 Bark from 100 Hz to 3.7 kHz), because the ear resolves frequency that way;
3. partial compensation of the linear frequency response and of slow gain changes, because listeners
   barely notice a fixed colouring or a slow level drift;
4. Zwicker loudness compression, because a disturbance matters by how loud it *sounds*;
5. a symmetric disturbance (with a dead zone for differences the ear masks) and an asymmetric one,
   because added noise and distortion annoy far more than missing components;
6. L6 over 320 ms intervals, then L2 over the call, because a few bad moments dominate an opinion;
7. a linear map to a raw score and the P.862.1 logistic map to MOS-LQO (1..4.5 scale, narrowband).

The few free numbers (:class:`MosParams`) were fitted once against PESQ on the benchmark's corpus
(``benchmarks/audio_accuracy.py``) and are stored here as constants: nothing is fitted at run time.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter, resample_poly

from harness.audio.spectra import HOP, N_FFT, Spectra

__all__ = ["DEFAULT_PARAMS", "MosParams", "MosResult", "disturbances", "perceptual_mos", "raw_to_mos", "warped_frames"]

Signal = npt.NDArray[np.float64]

MODEL_RATE = 8000
_SPL_OFFSET_DB = 105.0  # -26 dBov speech is heard at 79 dB SPL, as in P.862's calibration
_LISTEN_DBOV = -26.0


@dataclass(frozen=True)
class MosParams:
    """The model's free numbers. ``a``, ``b`` weigh symmetric and asymmetric disturbance."""

    a: float = 0.0687
    b: float = 0.0287
    gamma: float = 0.23  #: Zwicker loudness exponent
    loudness_scale: float = 750.0  #: puts disturbances on roughly P.862's scale, so its cap of 45 applies
    deadzone: float = 0.1  #: share of the smaller loudness masked (no disturbance below it)
    asym_exp: float = 1.2
    asym_const_db: float = 20.0  #: added to both band powers (dB above threshold) before the ratio
    asym_min: float = 3.0
    asym_max: float = 12.0
    frame_cap: float = 45.0  #: per-frame disturbance ceiling: past it, worse is not heard as worse
    frame_weight_exp: float = 0.0  #: how much quiet reference frames are discounted
    eq_limit_db: float = 20.0  #: frequency-response compensation limit
    gain_limit: tuple[float, float] = field(default=(3e-4, 5.0))  #: per-frame gain compensation limits


DEFAULT_PARAMS = MosParams()


@dataclass(frozen=True)
class MosResult:
    mos: float  #: MOS-LQO estimate, 1.0 .. 4.5
    raw: float  #: raw score before the logistic map (P.862 "PESQ score" scale)
    d_sym: float
    d_asym: float


def warped_frames(n: int, delay_map: npt.NDArray[np.int64], spans: list[tuple[int, int]]) -> npt.NDArray[np.bool_]:
    """Which of the short-time frames of an ``n``-sample aligned signal straddle a change of the delay path.

    ``spans`` are the further samples the alignment marked around its changes (the fillers of a grown
    jitter buffer, the skipped stretches of a shrunk one). Those frames mix two alignments, so their
    level says nothing about the line's gain.
    """
    nf = 1 + max(n - N_FFT, 0) // HOP
    mark = np.zeros(n + 1, dtype=np.int64)
    for k in np.flatnonzero(np.diff(delay_map[:n])) + 1:
        mark[int(k)] += 1
        mark[min(int(k) + 1, n)] -= 1
    for a, b in spans:
        mark[min(max(a, 0), n)] += 1
        mark[min(max(b, 0), n)] -= 1
    inside = np.concatenate([[0], np.cumsum(np.cumsum(mark)[:n] > 0)])
    st = np.arange(nf) * HOP
    return np.asarray(inside[np.minimum(st + N_FFT, n)] - inside[np.minimum(st, n)] > 0)


def raw_to_mos(raw: float) -> float:
    """The ITU-T P.862.1 map from a raw score to MOS-LQO."""
    return 0.999 + 4.0 / (1.0 + math.exp(-1.4945 * raw + 4.6607))


def _bark(f: Signal) -> Signal:
    return 6.0 * np.arcsinh(f / 600.0)


@cache
def _band_matrix(rate: int) -> tuple[npt.NDArray[np.float64], Signal]:
    """0.5-Bark band membership of each FFT bin (100 Hz .. 3.7 kHz) and each band's centre in Hz."""
    f = np.asarray(np.fft.rfftfreq(N_FFT, 1.0 / rate), dtype=np.float64)
    z = _bark(f)
    edges = np.arange(_bark(np.array([100.0]))[0], _bark(np.array([3700.0]))[0] + 1e-9, 0.5)
    rows, centres = [], []
    for lo, hi in itertools.pairwise(edges):
        m = (z >= lo) & (z < hi)
        if np.any(m):
            rows.append(m.astype(np.float64))
            centres.append(float(np.mean(f[m])))
    return np.array(rows), np.array(centres)


def _threshold_dbov(f_hz: Signal) -> Signal:
    """Absolute hearing threshold (Terhardt) per band, as a band power in dBov."""
    k = np.maximum(f_hz, 50.0) / 1000.0
    spl = 3.64 * k**-0.8 - 6.5 * np.exp(-0.6 * (k - 3.3) ** 2) + 1e-3 * k**4
    return spl - _SPL_OFFSET_DB


def _listening_scale(x: Spectra) -> float:
    """Gain that puts ``x``'s 300-3000 Hz band power at the listening level (PESQ's level alignment)."""
    p = x.band_power(300.0, 3000.0)
    if p <= 0:
        return 1.0
    # band power of speech at -26 dBov active level with ~70 % activity sits ~ 2 dB lower
    return math.sqrt(10 ** ((_LISTEN_DBOV - 2.0) / 10) / p)


def disturbances(
    reference: Signal,
    degraded: Signal,
    rate: int,
    params: MosParams = DEFAULT_PARAMS,
    spectra: tuple[Spectra, Spectra] | None = None,
    warped: npt.NDArray[np.bool_] | None = None,
) -> tuple[float, float]:
    """Aggregated symmetric and asymmetric disturbance of time-aligned ``degraded`` against ``reference``.

    ``spectra``: the :class:`Spectra` of both signals (8 kHz, equal length), when the caller has them.
    """
    if spectra is None:
        if rate != MODEL_RATE:
            g = math.gcd(rate, MODEL_RATE)
            reference = resample_poly(reference, MODEL_RATE // g, rate // g)
            degraded = resample_poly(degraded, MODEL_RATE // g, rate // g)
        n = min(len(reference), len(degraded))
        spectra = (Spectra(reference[:n], MODEL_RATE), Spectra(degraded[:n], MODEL_RATE))
    sx, sy = spectra
    bands, centres = _band_matrix(MODEL_RATE)
    # both signals at the listening level: band powers scale with the gain squared
    px = sx.power @ bands.T * _listening_scale(sx) ** 2
    py = sy.power @ bands.T * _listening_scale(sy) ** 2
    p0 = 10 ** (_threshold_dbov(centres) / 10)  # per band

    # speech frames of the reference: loudest frames down to 30 dB below the 95th percentile
    tot_x = np.sum(px, axis=1)
    e = 10 * np.log10(tot_x + 1e-20)
    speech = e >= np.percentile(e, 95) - 30.0

    # 3a. partial frequency-response compensation, applied to the reference
    if np.any(speech):
        ratio = (np.mean(py[speech], axis=0) + p0) / (np.mean(px[speech], axis=0) + p0)
        lim = 10 ** (params.eq_limit_db / 10)
        px = px * np.clip(ratio, 1 / lim, lim)[None, :]

    # 3b. short-term gain compensation, applied to the degraded signal, smoothed over frames
    aud_x = np.sum(np.where(px > p0, px, 0.0), axis=1)
    aud_y = np.sum(np.where(py > p0, py, 0.0), axis=1)
    g = (aud_x + 5 * p0.sum()) / (aud_y + 5 * p0.sum())
    py = py * np.clip(_smoothed_gain(g, warped), *params.gain_limit)[:, None]

    # 4. loudness
    def loud(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        lv = (p0 / 0.5) ** params.gamma * ((0.5 + 0.5 * p / p0) ** params.gamma - 1.0)
        return np.maximum(lv, 0.0) * params.loudness_scale

    lx, ly = loud(px), loud(py)
    # 5. disturbance with dead zone, and asymmetry
    d = ly - lx
    m = params.deadzone * np.minimum(lx, ly)
    d = np.sign(d) * np.maximum(np.abs(d) - m, 0.0)
    c = p0 * 10 ** (params.asym_const_db / 10)
    asym = ((py + c) / (px + c)) ** params.asym_exp
    asym = np.where(asym < params.asym_min, 0.0, np.minimum(asym, params.asym_max))
    da = np.abs(d) * asym

    width = np.sum(bands, axis=1)
    w = width / width.sum()
    frame_sym = np.sqrt(np.sum(w * d**2, axis=1))
    frame_asym = np.sum(w * da, axis=1)
    # quiet reference frames weigh less (P.862 frame weighting by reference loudness)
    weight = ((tot_x + 1e-7) / 1e-3) ** params.frame_weight_exp
    frame_sym = np.minimum(frame_sym / weight, params.frame_cap)
    frame_asym = np.minimum(frame_asym / weight, params.frame_cap)
    return _aggregate(frame_sym), _aggregate(frame_asym)


def _smoothed_gain(g: Signal, warped: npt.NDArray[np.bool_] | None) -> Signal:
    """One-pole smoothing of the per-frame gains, starting from a gain of 1.

    Frames that straddle a delay change (``warped``) hold the gain of the frames before them: their
    level is that of two alignments mixed, and letting it pull the gain would score the frames after a
    jitter-buffer splice as a level fault, which PESQ (realigning per utterance) does not.
    """
    if warped is None or not np.any(warped[: len(g)]):
        return np.asarray(lfilter([0.2], [1.0, -0.8], g, zi=[0.8])[0])
    ok = np.ones(len(g), dtype=bool)
    ok[: len(warped)] = ~warped[: len(g)]
    if not np.any(ok):
        return np.ones(len(g))
    smooth = lfilter([0.2], [1.0, -0.8], g[ok], zi=[0.8])[0]
    seen = np.cumsum(ok)
    return np.where(seen > 0, smooth[np.maximum(seen - 1, 0)], 1.0)


def _aggregate(v: Signal, seg: int = 20) -> float:
    """L6 over 20-frame intervals (50 % overlap), then L2 over the intervals."""
    if len(v) == 0:
        return 0.0
    if len(v) < seg:
        return float(np.mean(v**6) ** (1 / 6))
    starts = range(0, len(v) - seg + 1, seg // 2)
    l6 = np.array([np.mean(v[s : s + seg] ** 6) ** (1 / 6) for s in starts])
    return float(np.sqrt(np.mean(l6**2)))


def perceptual_mos(
    reference: Signal,
    degraded: Signal,
    rate: int,
    params: MosParams = DEFAULT_PARAMS,
    spectra: tuple[Spectra, Spectra] | None = None,
    warped: npt.NDArray[np.bool_] | None = None,
) -> MosResult:
    """MOS-LQO estimate of time-aligned ``degraded`` against ``reference`` (narrowband model).

    ``warped`` marks the frames that straddle a change of the alignment's delay path (:func:`warped_frames`).
    """
    d_sym, d_asym = disturbances(reference, degraded, rate, params, spectra, warped)
    raw = 4.5 - params.a * d_sym - params.b * d_asym
    raw = min(max(raw, -0.5), 4.5)
    return MosResult(min(max(raw_to_mos(raw), 1.0), 4.5), raw, d_sym, d_asym)
