"""What every audio metric plug-in gets (:class:`Context`) and what it is (:class:`Metric`).

A metric measures something on the aligned signals, stores what it measured on the
:class:`~harness.audio.result.Analysis`, and returns its checks (PASS/FAIL/ERROR, never a PASS for
something it could not measure). Shared intermediate results (the spectra of the judged signals, the
10 ms band levels) are computed once, on first use, by the context.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from harness.audio.align import Alignment
from harness.audio.dropouts import band_frames_db
from harness.audio.level import ActiveLevel
from harness.audio.result import Analysis, RtpStats
from harness.audio.spectra import Spectra
from harness.contracts.thresholds import Thresholds
from harness.contracts.verdict import CheckResult

__all__ = ["ANALYSIS_RATE", "Context", "Metric", "r", "to_analysis_rate"]

Signal = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

ANALYSIS_RATE = 8000  #: alignment, dropouts, noise, echo, bandwidth and MOS work on narrowband signals


def r(v: float, nd: int = 2) -> float:
    """``v`` rounded for a report."""
    return round(float(v), nd) + 0.0  # no "-0.0" in a report


def to_analysis_rate(x: Signal, rate: int) -> Signal:
    """``x`` resampled from ``rate`` to :data:`ANALYSIS_RATE` (unchanged when it is already there)."""
    if rate == ANALYSIS_RATE:
        return x
    g = math.gcd(rate, ANALYSIS_RATE)
    return np.asarray(resample_poly(x, ANALYSIS_RATE // g, rate // g), dtype=np.float64)


@dataclass
class Context:
    """One direction being analysed, after the gate passed. Signals ending in 8 are at 8 kHz.

    ``ref8``, ``speech`` and ``al`` cover the judged stretch of the reference (reference samples
    ``lo:hi`` of ``ref8_full``): all of it, or what the recording holds.
    """

    a: Analysis
    t: Thresholds
    rate: int  #: the caller's sample rate
    rec: Signal  #: received, at ``rate``
    ref: Signal  #: the whole reference, at ``rate``
    rec8: Signal
    ref8_full: Signal
    speech_full: Mask  #: per sample of ``ref8_full``: the reference talks
    lo: int
    hi: int
    ref8: Signal  #: ``ref8_full[lo:hi]``
    speech: Mask  #: ``speech_full[lo:hi]``
    al: Alignment  #: the alignment of ``ref8`` (``al.aligned[n]`` is heard for ``ref8[n]``)
    rec_level: ActiveLevel
    ref_level: ActiveLevel  #: of the judged stretch
    sent: Signal | None  #: what the listener sent, at ``rate``
    rtp: RtpStats | None
    codec: str  #: the negotiated codec (the MOS ceiling's)
    start_offset_s: float | None
    expected_s: float | None

    @property
    def sr(self) -> int:
        return ANALYSIS_RATE

    @cached_property
    def ref_spectra(self) -> Spectra:
        return Spectra(self.ref8, ANALYSIS_RATE)

    @cached_property
    def rx_spectra(self) -> Spectra:
        """Spectra of the received signal on the reference timeline (``al.aligned``)."""
        return Spectra(self.al.aligned, ANALYSIS_RATE)

    @cached_property
    def band_frames(self) -> tuple[Signal, Signal]:
        """10 ms levels (dB) in 300-3400 Hz of ``ref8`` and of ``al.aligned``: ``(reference, received)``."""
        er = band_frames_db(self.ref8, ANALYSIS_RATE, spectra=self.ref_spectra)
        ea = band_frames_db(self.al.aligned, ANALYSIS_RATE, spectra=self.rx_spectra)
        n = min(len(er), len(ea))
        return er[:n], ea[:n]

    @property
    def gain_db(self) -> float:
        """Received minus reference P.56 active level."""
        return self.rec_level.level_dbov - self.ref_level.level_dbov

    @cached_property
    def unsteady(self) -> Mask:
        """Per reference sample of the judged stretch: a jitter buffer's filler or discarded frame."""
        out = np.zeros(len(self.ref8), dtype=bool)
        for f, b in self.al.fillers + self.al.skips:
            out[f:b] = True
        return out


@dataclass(frozen=True)
class Metric:
    """A plug-in: the checks it may emit (``names``, in emission order) and ``judge``, which measures,
    stores its measurements on ``ctx.a`` and returns its checks. ``needs`` names an optional input
    (``"sent"``, ``"rtp"``): without it the metric is skipped, with ``missing`` as the reason when
    there is one."""

    names: tuple[str, ...]
    judge: Callable[[Context], list[CheckResult]]
    needs: str = ""
    missing: str = ""
    #: a metric of the network statistics alone: judged from ``(analysis, thresholds, rtp)`` even when
    #: the gate fails and there is nothing else to measure
    network: Callable[[Analysis, Thresholds, RtpStats], CheckResult] | None = None
