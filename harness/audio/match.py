"""Find a known piece of audio inside a recording: IVR prompt recognition without speech recognition.

A prompt may be heard from any point of its loop, so the recording (a window no longer than the prompt)
is searched inside the prompt played twice over: a contiguous slice of a looped signal is always a
contiguous slice of two copies. The score is the normalised cross-correlation of the waveforms,
which survives G.711 coding (> 0.95) and falls near 0 for other speech or music.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import signal

__all__ = ["SegmentMatch", "find_in_loop"]


@dataclass(frozen=True)
class SegmentMatch:
    score: float  #: normalised cross-correlation, -1..1
    offset_s: float  #: where in the prompt the recording starts
    level_dbov: float  #: RMS level of the recording


def _level(x: NDArray[np.float64]) -> float:
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    return float(20 * np.log10(rms)) if rms > 0 else -120.0  # P.56 convention, as harness.audio.level


def find_in_loop(recording: NDArray[np.float64], prompt: NDArray[np.float64], rate: int,
                 *, max_window_s: float = 4.0) -> SegmentMatch:
    """Best match of (the loudest ``max_window_s`` of) ``recording`` inside ``prompt`` looped twice."""
    if len(prompt) == 0:
        raise ValueError("the prompt is empty")
    win = min(len(recording), len(prompt), int(max_window_s * rate))
    if win < rate // 4:
        return SegmentMatch(0.0, 0.0, _level(recording))
    # the window with the most energy: silence matches nothing and would only dilute the score
    energy = np.convolve(recording * recording, np.ones(win), mode="valid")
    start = int(np.argmax(energy)) if len(energy) else 0
    x = recording[start:start + win]
    if not np.any(x):
        return SegmentMatch(0.0, 0.0, -120.0)
    looped = np.concatenate([prompt, prompt])
    num = signal.fftconvolve(looped, x[::-1], mode="valid")
    sq = np.concatenate([[0.0], np.cumsum(looped * looped)])
    norms = np.sqrt(np.maximum(sq[win:] - sq[:-win], 1e-20)) * float(np.sqrt(np.sum(x * x)))
    scores = num / norms
    best = int(np.argmax(scores))
    offset = ((best - start) % len(prompt)) / rate
    return SegmentMatch(round(float(scores[best]), 4), round(offset, 3), round(float(_level(recording)), 2))
