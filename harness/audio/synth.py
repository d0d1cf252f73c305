"""Synthetic test signals: log chirp, P.501-style composite source signal, tone, silence.

Speech is the right probe for perceptual scores, but a transfer function, a band limit or a
clipping point is read far more exactly from a signal whose content is known sample by sample.
All generators are deterministic (fixed seeds), so fixtures built twice are byte-identical.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, sosfilt

__all__ = ["composite_source_signal", "log_chirp", "pad", "silence", "tone"]

Signal = npt.NDArray[np.float64]


def pad(x: Signal, rate: int, seconds: float = 0.5) -> Signal:
    """``seconds`` of digital silence on each side: references start and end quiet."""
    z = np.zeros(round(seconds * rate))
    return np.concatenate([z, np.asarray(x, dtype=np.float64), z])


def tone(freq_hz: float, seconds: float, rate: int, amplitude: float = 0.5) -> Signal:
    """A sine starting at phase 0, with 5 ms raised-cosine ramps so its edges do not click."""
    t = np.arange(round(seconds * rate)) / rate
    x = amplitude * np.sin(2 * np.pi * freq_hz * t)
    return _ramp(x, rate)


def log_chirp(f0: float, f1: float, seconds: float, rate: int, amplitude: float = 0.5) -> Signal:
    """Exponential sweep from ``f0`` to ``f1``: equal time per octave, as used for transfer functions."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    k = np.log(f1 / f0)
    phase = 2 * np.pi * f0 * seconds / k * (np.exp(t / seconds * k) - 1.0)
    return _ramp(amplitude * np.sin(phase), rate)


def silence(seconds: float, rate: int) -> Signal:
    """Digital silence (all-zero samples)."""
    return np.zeros(round(seconds * rate))


def composite_source_signal(seconds: float, rate: int, seed: int = 501) -> Signal:
    """A P.501-style composite source signal: voiced burst, pseudo-noise, pause, repeated.

    Each 350 ms period holds a 48.6 ms harmonic burst (f0 around 150 Hz, speech-like spectral tilt),
    200 ms of band-limited pseudo-noise and a 101.4 ms pause; the polarity alternates every period.
    It has speech-like activity and crest factor, so voice-activity-driven devices react to it.
    """
    rng = np.random.default_rng(seed)
    sos = butter(4, [200.0, min(3800.0, 0.45 * rate)], btype="bandpass", fs=rate, output="sos")
    n_voiced, n_noise = round(0.0486 * rate), round(0.200 * rate)
    n_pause = round(0.350 * rate) - n_voiced - n_noise
    out: list[Signal] = []
    period = 0
    total = round(seconds * rate)
    while sum(len(s) for s in out) < total:
        f0 = 150.0 + 10.0 * (period % 5)
        t = np.arange(n_voiced) / rate
        harmonics = np.arange(1, int((0.45 * rate) // f0) + 1)
        voiced = np.sum(np.sin(2 * np.pi * np.outer(harmonics, t) * f0) / harmonics[:, None], axis=0)
        voiced *= np.hanning(n_voiced)
        noise = sosfilt(sos, rng.standard_normal(n_noise))
        noise *= np.hanning(n_noise) ** 0.25
        voiced /= np.sqrt(np.mean(voiced**2))
        noise /= np.sqrt(np.mean(noise**2))
        sign = 1.0 if period % 2 == 0 else -1.0
        out.append(sign * np.concatenate([voiced, noise, np.zeros(n_pause)]))
        period += 1
    x = np.concatenate(out)[:total]
    return 0.1 * x / np.max(np.abs(x)) * 3.0


def _ramp(x: Signal, rate: int, seconds: float = 0.005) -> Signal:
    n = min(round(seconds * rate), len(x) // 2)
    if n > 0:
        w = 0.5 - 0.5 * np.cos(np.pi * np.arange(n) / n)
        x = x.copy()
        x[:n] *= w
        x[-n:] *= w[::-1]
    return x
