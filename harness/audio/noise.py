"""Noise floor and SNR, measured in the reference's silences.

What the listener hears while the far end is quiet is the channel's own noise (comfort noise, hiss,
hum, crosstalk, echo), so the floor is the received power over the instants where the *reference*
is silent, after alignment. Silences are shrunk by 50 ms on each side so that speech onsets, codec
ringing and a slightly wrong delay do not count as noise, and the recording's first 100 ms are left out
(what a recorder gets before the call's current audio reaches it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import binary_erosion

from harness.audio.level import SILENCE_DBOV, db

__all__ = ["NoiseResult", "measure_noise", "reference_silence"]

Signal = npt.NDArray[np.float64]

MIN_SILENCE_S = 0.2  #: less reference silence than this: the floor is not measured
GUARD_S = 0.05
START_S = 0.1  #: the start of a recording that noise is not measured in


@dataclass(frozen=True)
class NoiseResult:
    """``floor_dbov`` is NaN when the reference had too little silence to measure it in."""

    floor_dbov: float
    snr_db: float
    silence_s: float


def _settled(valid: npt.NDArray[np.bool_], rate: int) -> npt.NDArray[np.bool_]:
    """``valid`` without the recording's first START_S: a recorder attached to a running call first
    gets what the jitter buffer and the bridge still held from before (seen: 50 ms at -33 dBov at the
    start of a probe recording after a resumed call), which is the harness's start-up, not line noise."""
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return valid
    out = valid.copy()
    out[idx[0]:idx[0] + round(START_S * rate)] = False
    return out


def reference_silence(
    reference: Signal, rate: int, frame_s: float = 0.01, below_db: float = 50.0
) -> npt.NDArray[np.bool_]:
    """Per-sample mask of reference silence: 10 ms frames ``below_db`` under the loudest frames, eroded."""
    f = max(round(frame_s * rate), 1)
    n = len(reference) // f
    mask = np.zeros(len(reference), dtype=bool)
    if n == 0:
        return mask
    e = 10 * np.log10(np.mean(reference[: n * f].reshape(n, f) ** 2, axis=1) + 1e-13)
    loud = float(np.percentile(e, 95))
    quiet = e < loud - below_db
    guard = max(round(GUARD_S / frame_s), 1)
    quiet = binary_erosion(quiet, structure=np.ones(2 * guard + 1, dtype=bool), border_value=1)
    mask[: n * f] = np.repeat(quiet, f)
    return mask


def measure_noise(
    aligned: Signal, valid: npt.NDArray[np.bool_], reference: Signal, rate: int, speech_level_dbov: float
) -> NoiseResult:
    """Received power over reference silences (dBov) and SNR = received speech level minus that floor."""
    sil = reference_silence(reference, rate) & _settled(valid, rate)
    secs = float(np.count_nonzero(sil)) / rate
    if secs < MIN_SILENCE_S:
        return NoiseResult(float("nan"), float("nan"), secs)
    floor = db(float(np.mean(aligned[sil] ** 2)))
    snr = speech_level_dbov - floor if speech_level_dbov > SILENCE_DBOV else float("nan")
    return NoiseResult(floor, snr, secs)
