"""The audio gate: is there audio at all, and is it the audio that was played?

It runs before every other metric because the others are meaningless without it: a perceptual score
on silence or on the wrong prompt is garbage (PESQ happily scores both), and a "no dropouts" verdict
on a silent recording would be a false PASS. Measured on this project's corpus, these rules split
every case correctly:

- no audio: received active level < -60 dBov, or speech activity < 1 %, or no speech-like level
  changes: the spread of 50 ms band levels (300-3400 Hz, 95th minus 10th percentile, digital silence
  left out) under 5 dB. Steady hiss, comfort noise and tones stay under 2 dB at any level; speech
  spreads 20-40 dB, and still 9 dB under white noise only 4 dB below it. So hiss alone is "no audio"
  (one-way audio when the listener sends), never "wrong audio", and never audio present;
- wrong audio: after alignment, max(waveform correlation, envelope correlation) < 0.5.

The correlations are taken over the reference's active speech, after the delay track, so a codec
(waveform changed, envelope kept) or a jitter-buffer jump does not look like wrong audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt

from harness.audio.level import ActiveLevel

__all__ = ["GateResult", "envelope_correlation", "has_audio", "modulation_db", "waveform_correlation"]

MODULATION_FRAME_S = 0.05  #: frames of the speech-likeness measure
MODULATION_BAND_HZ = (300.0, 3400.0)
_SILENT_FRAME_DBOV = -100.0  #: frames below this are digital silence, left out of the spread

Signal = npt.NDArray[np.float64]


@dataclass(frozen=True)
class GateResult:
    """Outcome of the gate for one direction."""

    audio_present: bool
    matches_reference: bool | None  #: None when not judged (no audio)
    level_dbov: float
    activity: float
    waveform_corr: float | None = None
    envelope_corr: float | None = None

    @property
    def passed(self) -> bool:
        return self.audio_present and bool(self.matches_reference)


def has_audio(
    level: ActiveLevel,
    min_level_dbov: float,
    min_activity: float,
    modulation: float | None = None,
    min_modulation_db: float = 0.0,
) -> bool:
    """True when the P.56 level and activity say there is audible signal, and (when ``modulation``
    is given, see :func:`modulation_db`) its level moves like speech, not like steady noise."""
    if modulation is not None and modulation < min_modulation_db:
        return False
    return level.level_dbov >= min_level_dbov and level.activity >= min_activity


def modulation_db(x: Signal, rate: int) -> float:
    """How much the level of ``x`` moves: 95th minus 10th percentile of its 50 ms frame levels in the
    telephone band, over the frames that are not digital silence (0.0 with fewer than four).

    Each frame's band level comes from its own Hann-windowed spectrum (bins 300-3400 Hz).
    """
    f = max(round(MODULATION_FRAME_S * rate), 1)
    n = len(x) // f
    if n < 4:
        return 0.0
    w = _hann(f)
    spec = np.abs(np.fft.rfft(x[: n * f].reshape(n, f) * w, axis=1)) ** 2
    freqs = np.fft.rfftfreq(f, 1.0 / rate)
    inband = (freqs >= MODULATION_BAND_HZ[0]) & (freqs <= MODULATION_BAND_HZ[1])
    power = 2.0 * np.sum(spec[:, inband], axis=1) / (f * float(np.sum(w**2)))  # mean square in the band
    e = 10 * np.log10(power + 1e-20)  # dBov
    e = e[e > _SILENT_FRAME_DBOV]
    if len(e) < 4:
        return 0.0
    return float(np.percentile(e, 95) - np.percentile(e, 10))


@cache
def _hann(n: int) -> npt.NDArray[np.float64]:
    return np.asarray(np.hanning(n + 2)[1:-1], dtype=np.float64)


def waveform_correlation(aligned: Signal, reference: Signal, mask: npt.NDArray[np.bool_]) -> float:
    """Pearson correlation of the aligned received and the reference over ``mask``."""
    if np.count_nonzero(mask) < 2:
        return 0.0
    a, b = aligned[mask], reference[mask]
    den = float(np.sqrt(np.dot(a, a) * np.dot(b, b)))
    return float(np.dot(a, b) / den) if den > 0 else 0.0


def envelope_correlation(aligned: Signal, reference: Signal, rate: int, frame_s: float = 0.01) -> float:
    """Pearson correlation of the 10 ms RMS envelopes (in dB, floored 60 dB below the reference peak).

    The dB envelope rewards the same pattern of syllables and pauses, whatever a codec did to the
    waveform; a floor keeps noise in the pauses from dominating.
    """
    f = max(round(frame_s * rate), 1)
    n = min(len(aligned), len(reference)) // f
    if n < 3:
        return 0.0

    def env(x: Signal) -> Signal:
        return 10 * np.log10(np.mean(x[: n * f].reshape(n, f) ** 2, axis=1) + 1e-12)

    er, ea = env(reference), env(aligned)
    floor = er.max() - 60.0
    er, ea = np.maximum(er, floor), np.maximum(ea, floor)
    if np.std(er) == 0 or np.std(ea) == 0:
        return 0.0
    return float(np.corrcoef(er, ea)[0, 1])
