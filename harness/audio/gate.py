"""The audio gate: is there audio at all, and is it the audio that was played?

It runs before every other metric because the others are meaningless without it: a perceptual score
on silence or on the wrong prompt is garbage (PESQ happily scores both), and a "no dropouts" verdict
on a silent recording would be a false PASS. Measured on this project's corpus, these rules split
every case correctly:

- no audio: received active level < -60 dBov, or speech activity < 1 %;
- wrong audio: after alignment, max(waveform correlation, envelope correlation) < 0.5.

The correlations are taken over the reference's active speech, after the delay track, so a codec
(waveform changed, envelope kept) or a jitter-buffer jump does not look like wrong audio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from harness.audio.level import ActiveLevel

__all__ = ["GateResult", "envelope_correlation", "has_audio", "waveform_correlation"]

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


def has_audio(level: ActiveLevel, min_level_dbov: float, min_activity: float) -> bool:
    """True when the P.56 level and activity say there is audible signal."""
    return level.level_dbov >= min_level_dbov and level.activity >= min_activity


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
