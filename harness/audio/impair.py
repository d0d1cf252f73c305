"""Impairments a telephone path inflicts, as pure functions: for unit tests and the accuracy benchmark.

Each takes float samples in [-1, 1) and returns a new array; randomness comes from an explicit
``numpy.random.Generator`` so every degraded signal can be rebuilt exactly. They model what a PBX,
a network or a phone does (packet loss with or without concealment, noise, clipping, gain changes,
delay and jitter-buffer jumps, echo, dropouts, band limits), not any one product.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, lfilter, sosfilt

from harness.audio.codecs import g711_roundtrip

__all__ = [
    "add_echo",
    "band_limit",
    "clip",
    "delay",
    "delay_jump",
    "dropout",
    "g711",
    "gain_ramp",
    "packet_loss",
    "pink_noise",
    "scale_db",
    "time_warp",
    "white_noise",
]

Signal = npt.NDArray[np.float64]


def g711(x: Signal, law: str = "ulaw") -> Signal:
    """A G.711 encode/decode pass."""
    return g711_roundtrip(x, law)


def scale_db(x: Signal, db: float) -> Signal:
    """A fixed gain."""
    return x * 10 ** (db / 20.0)


def white_noise(x: Signal, level_dbov: float, rng: np.random.Generator) -> Signal:
    """Add white Gaussian noise of RMS ``level_dbov``."""
    return x + 10 ** (level_dbov / 20.0) * rng.standard_normal(len(x))


def pink_noise(x: Signal, level_dbov: float, rng: np.random.Generator) -> Signal:
    """Add pink (1/f) noise of RMS ``level_dbov`` (Kellett's filter on white noise)."""
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1.0, -2.494956002, 2.017265875, -0.522189400]
    n = lfilter(b, a, rng.standard_normal(len(x) + 2000))[2000:]
    n = n / np.sqrt(np.mean(n**2))
    return x + 10 ** (level_dbov / 20.0) * n


def clip(x: Signal, level: float) -> Signal:
    """Hard clipping at ``level`` (full scale = 1.0)."""
    return np.clip(x, -level, level)


def gain_ramp(x: Signal, rate: int, at_s: float, db: float, ramp_s: float = 0.05) -> Signal:
    """A level change of ``db`` from ``at_s`` on (an AGC step or a misbehaving gain stage)."""
    g = np.ones(len(x))
    a = round(at_s * rate)
    r = max(round(ramp_s * rate), 1)
    target = 10 ** (db / 20.0)
    g[a : a + r] = np.linspace(1.0, target, len(g[a : a + r]))
    g[a + r :] = target
    return x * g


def delay(x: Signal, rate: int, ms: float) -> Signal:
    """Delay by a whole number of samples (leading silence), as a network and jitter buffer do."""
    return np.concatenate([np.zeros(round(ms * rate / 1000.0)), x])


def delay_jump(x: Signal, rate: int, at_s: float, jump_ms: float) -> Signal:
    """A jitter-buffer adaptation at ``at_s``: ``jump_ms`` > 0 inserts silence, < 0 drops samples."""
    a = round(at_s * rate)
    n = round(abs(jump_ms) * rate / 1000.0)
    if jump_ms >= 0:
        return np.concatenate([x[:a], np.zeros(n), x[a:]])
    return np.concatenate([x[:a], x[a + n :]])


def time_warp(x: Signal, rate: int, at_s: float, ms: float) -> Signal:
    """A jitter buffer's small time-warp at ``at_s``: ``ms`` < 0 drops that much signal (a discarded
    frame), ``ms`` > 0 plays the preceding ``ms`` again (a frame concealed by repeating the last one).

    Unlike :func:`delay_jump` nothing silent is inserted: the signal is spliced, as a busy jitter
    buffer does every few seconds when it shrinks or grows by one frame.
    """
    a = round(at_s * rate)
    n = round(abs(ms) * rate / 1000.0)
    if ms < 0:
        return np.concatenate([x[:a], x[a + n :]])
    return np.concatenate([x[:a], x[max(a - n, 0) : a], x[a:]])


def dropout(x: Signal, rate: int, start_s: float, ms: float) -> Signal:
    """Silence ``ms`` of signal from ``start_s`` (a lost talk spurt, a media-path gap)."""
    y = x.copy()
    a = round(start_s * rate)
    y[a : a + round(ms * rate / 1000.0)] = 0.0
    return y


def packet_loss(
    x: Signal,
    rate: int,
    loss_pct: float,
    rng: np.random.Generator,
    conceal: bool = False,
    ptime_ms: float = 20.0,
    burst: float = 1.0,
) -> tuple[Signal, list[int]]:
    """Drop 20 ms packets at random (``burst`` > 1: Gilbert model with mean burst length ``burst``).

    Lost packets are zero-filled, or with ``conceal`` replaced by the last good packet repeated with a
    fade (a simple PLC, like G.711 Appendix I in spirit). Returns the signal and the lost packet indexes.
    """
    n = max(round(ptime_ms * rate / 1000.0), 1)
    packets = (len(x) + n - 1) // n
    p = loss_pct / 100.0
    if burst <= 1.0:
        lost = rng.random(packets) < p
    else:
        q = 1.0 / burst  # leave the loss state
        r_ = p * q / max(1.0 - p, 1e-9)  # enter it, so the long-run loss is p
        lost = np.zeros(packets, dtype=bool)
        state = False
        for i in range(packets):
            state = (rng.random() >= q) if state else (rng.random() < r_)
            lost[i] = state
    y = x.copy()
    last = np.zeros(n)
    run = 0
    for i in range(packets):
        seg = slice(i * n, min((i + 1) * n, len(x)))
        m = seg.stop - seg.start
        if lost[i]:
            if conceal:
                fade = np.linspace(1.0, 0.5, m) * (0.5**run)
                y[seg] = last[:m] * fade
            else:
                y[seg] = 0.0
            run += 1
        else:
            last = np.pad(x[seg], (0, n - m))
            run = 0
    return y, [int(i) for i in np.flatnonzero(lost)]


def add_echo(received: Signal, sent: Signal, rate: int, delay_ms: float, loss_db: float) -> Signal:
    """Add an echo of ``sent``, ``loss_db`` down and ``delay_ms`` late, to ``received``."""
    d = round(delay_ms * rate / 1000.0)
    y = received.copy()
    e = sent[: max(len(y) - d, 0)] * 10 ** (-loss_db / 20.0)
    y[d : d + len(e)] += e
    return y


def band_limit(x: Signal, rate: int, lo_hz: float, hi_hz: float) -> Signal:
    """A band-pass (a narrow analogue line, a misconfigured transcoder filter)."""
    sos = butter(6, [lo_hz, min(hi_hz, 0.45 * rate)], btype="bandpass", fs=rate, output="sos")
    return np.asarray(sosfilt(sos, x), dtype=np.float64)
