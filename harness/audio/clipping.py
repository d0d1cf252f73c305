"""Clipping: a pile-up of samples at the signal's own maximum.

A clipped signal cannot be recognised by "samples at full scale": a G.711 leg never outputs more
than 32124 (μ-law) or 32256 (A-law), and a gain stage may clip anywhere. What every clipper leaves is
a pile-up: many samples at exactly the largest magnitude, often in runs (flat tops), while an
unclipped signal thins out towards its peak. The level just below the top is the yardstick, so the
coarse top segment of G.711 (1024 apart near full scale) does not look like clipping, and a pure
tone (whose peak samples repeat but never run) does not either.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["ClippingResult", "detect_clipping"]

Signal = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ClippingResult:
    """``ratio_pct``: share of the signal's non-silent samples sitting at the clip level."""

    clipped: bool
    clip_level: float  #: magnitude (full scale = 1.0) where samples pile up
    clipped_samples: int
    ratio_pct: float
    runs: int  #: flat tops: runs of >= 2 consecutive samples at the clip level

    def to_dict(self) -> dict[str, float | int | bool]:
        return {
            "clipped": self.clipped,
            "clip_level": round(self.clip_level, 5),
            "clipped_samples": self.clipped_samples,
            "ratio_pct": round(self.ratio_pct, 4),
            "runs": self.runs,
        }


def detect_clipping(x: Signal, min_pile: int = 4, pile_factor: float = 2.0, min_runs: int = 2) -> ClippingResult:
    """Detect clipping in ``x`` (float in [-1, 1)) by pile-up at its observed maximum magnitude.

    Clipped when at least ``min_pile`` samples sit at the maximum, ``pile_factor`` times more than at
    the two quantisation levels just below, and at least ``min_runs`` of them form flat tops. Mild
    clipping (a top cut by ~2 dB that touches a dozen samples) is below what this can tell from a
    G.711 coder's coarse top segments, and below what a listener notices.
    """
    q = np.round(np.abs(np.asarray(x, dtype=np.float64)) * 32768.0).astype(np.int64)
    nonsilent = int(np.count_nonzero(q > 0))
    if nonsilent == 0:
        return ClippingResult(False, 0.0, 0, 0.0, 0)
    levels, counts = np.unique(q[q > 0], return_counts=True)
    top = int(levels[-1])
    n_top = int(counts[-1])
    below = counts[-3:-1] if len(counts) > 1 else np.array([0])
    n_next = float(np.mean(below))
    at_top = q == top
    # runs of consecutive samples at the top with the same sign (a flat top)
    same_sign = np.sign(x[1:]) == np.sign(x[:-1])
    pairs = at_top[1:] & at_top[:-1] & same_sign
    runs = int(np.count_nonzero(pairs & ~np.concatenate([[False], pairs[:-1]])))
    pile = n_top >= min_pile and n_top >= pile_factor * n_next + 2
    clipped = pile and runs >= min_runs
    ratio = 100.0 * n_top / nonsilent if clipped else 0.0
    return ClippingResult(clipped, top / 32768.0, n_top if clipped else 0, ratio, runs)
