"""Speech level: ITU-T P.56 active speech level (method B), dBov, gain and level stability.

Plain RMS undercounts speech by the pauses in it, so a prompt with long silences would look quiet.
P.56 measures the level over the samples where speech is active, which is what a listener hears and
what every reference level in telephony (-26 dBov nominal) means. dBov here is relative to the RMS
of a full-scale square wave, so a full-scale sine is -3.01 dBov::

    >>> import numpy as np
    >>> t = np.arange(8000) / 8000
    >>> round(active_level(0.1 * np.sin(2 * np.pi * 1000 * t), 8000).level_dbov, 1)
    -23.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import maximum_filter1d
from scipy.signal import lfilter

__all__ = [
    "SILENCE_DBOV",
    "ActiveLevel",
    "active_level",
    "db",
    "gain_track",
    "level_stability",
    "normalise",
    "rms_dbov",
]

Signal = npt.NDArray[np.float64]

SILENCE_DBOV = -120.0  #: level reported for digital silence, instead of -inf
_TIME_CONSTANT_S = 0.03  # P.56 envelope smoothing
_HANGOVER_S = 0.2  # P.56 hangover
_MARGIN_DB = 15.9  # P.56 margin between active level and activity threshold


def db(power: float) -> float:
    """10·log10 of a power ratio, floored at :data:`SILENCE_DBOV` so silence stays a finite number."""
    return 10.0 * math.log10(power) if power > 10 ** (SILENCE_DBOV / 10) else SILENCE_DBOV


def rms_dbov(x: Signal) -> float:
    """Long-term RMS level in dBov (pauses included)."""
    return db(float(np.mean(np.square(x)))) if len(x) else SILENCE_DBOV


@dataclass(frozen=True)
class ActiveLevel:
    """P.56 result: ``level_dbov`` over the active samples, ``activity`` the active fraction (0..1)."""

    level_dbov: float
    activity: float


def active_level(x: Signal, rate: int) -> ActiveLevel:
    """ITU-T P.56 method B active speech level of ``x`` (float samples in [-1, 1)).

    The envelope is the P.56 two-pole smoothing of |x| (30 ms), thresholds are powers of two from
    2^-15 to 1, each with 200 ms hangover; the level is where the active energy sits 15.9 dB above
    the threshold, interpolated between the bracketing thresholds as the ITU reference code does.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    energy = float(np.sum(np.square(x)))
    if n == 0 or energy <= 0.0:
        return ActiveLevel(SILENCE_DBOV, 0.0)
    g = math.exp(-1.0 / (rate * _TIME_CONSTANT_S))
    p = lfilter([1.0 - g], [1.0, -g], np.abs(x))
    q = lfilter([1.0 - g], [1.0, -g], p)
    hang = round(_HANGOVER_S * rate)
    thresholds = 2.0 ** np.arange(-15, 1)
    # Index of the highest threshold each envelope sample reaches (-1: none). A sample is active for
    # threshold j when some sample of the last ``hang`` reached j: a trailing running maximum gives
    # every threshold's activity count in one pass instead of one pass per threshold.
    with np.errstate(divide="ignore"):
        level_idx = np.floor(np.log2(np.maximum(q, 1e-300))).astype(np.int64) + 15
    level_idx = np.clip(level_idx, -1, len(thresholds) - 1)
    size = hang + 1
    reach = maximum_filter1d(level_idx, size=size, origin=(size - 1) // 2, mode="constant", cval=-1)
    hist = np.bincount(reach + 1, minlength=len(thresholds) + 1)[1:]
    counts = np.cumsum(hist[::-1])[::-1].astype(np.float64)  # samples reaching threshold j or higher
    act_db = np.full(len(thresholds), np.nan)
    nz = counts > 0
    act_db[nz] = 10.0 * np.log10(energy / counts[nz])
    diff = act_db - 20.0 * np.log10(thresholds) - _MARGIN_DB
    level, activity = float("nan"), 0.0
    for j in range(len(thresholds)):
        if np.isnan(diff[j]):
            break
        if diff[j] <= 0.0:
            if j == 0:
                level, activity = float(act_db[0]), counts[0] / n
            else:
                # linear interpolation of the crossing, between threshold j-1 (diff > 0) and j
                f = diff[j - 1] / (diff[j - 1] - diff[j])
                level = float(act_db[j - 1] + f * (act_db[j] - act_db[j - 1]))
                activity = float(energy / 10 ** (level / 10) / n)
            break
    if math.isnan(level):
        # the signal never reached a threshold low enough: treat it as not active speech
        return ActiveLevel(SILENCE_DBOV, 0.0)
    return ActiveLevel(level, float(min(max(activity, 0.0), 1.0)))


def normalise(x: Signal, rate: int, target_dbov: float = -26.0) -> Signal:
    """Scale ``x`` so its P.56 active level is ``target_dbov``."""
    lvl = active_level(x, rate).level_dbov
    if lvl <= SILENCE_DBOV:
        raise ValueError("cannot normalise silence")
    return x * 10 ** ((target_dbov - lvl) / 20.0)


def gain_track(
    aligned: Signal, reference: Signal, rate: int, mask: npt.NDArray[np.bool_], block_s: float = 1.0
) -> list[tuple[float, float]]:
    """Per-block gain (received minus reference level, dB) as ``(block start s, gain dB)``.

    Only samples in ``mask`` count (the reference's speech, less any dropouts), and only blocks where
    they fill at least 30 %: a pause of the talker or a dropout is not a level change.
    """
    blk = max(round(block_s * rate), 1)
    out: list[tuple[float, float]] = []
    for start in range(0, len(reference) - blk // 2, blk):
        m = mask[start : start + blk]
        if np.count_nonzero(m) < 0.3 * blk:
            continue
        pr = float(np.mean(reference[start : start + blk][m] ** 2))
        pa = float(np.mean(aligned[start : start + blk][m] ** 2))
        if pr > 0:
            out.append((start / rate, db(pa) - db(pr)))
    return out


def level_stability(track: list[tuple[float, float]]) -> float:
    """Spread (largest minus smallest, dB) of a :func:`gain_track`; NaN with fewer than two blocks."""
    if len(track) < 2:
        return float("nan")
    gains = [g for _, g in track]
    return float(max(gains) - min(gains))
