"""Time alignment of a received recording to the reference that was played.

Every other metric compares the two signals sample by sample, so alignment comes first and has to
survive what a real call does to timing: an unknown start offset (recorder and player start at
different moments), jumps of tens of milliseconds when a jitter buffer grows or shrinks, and the small
time-warps a busy jitter buffer makes (a 10-20 ms frame dropped, or concealed and so repeated, every
few seconds). A single global delay is not enough, and neither is one delay per second: measured on
this project's corpus, two such events inside one second leave a stretch misaligned, which then shows
as a false dropout, a lower MOS and a spurious echo.

So, in four steps:

1. a global delay by GCC-PHAT (phase transform: sharp peak, insensitive to spectral colouring), and a
   delay track of one-second blocks for the report;
2. the channel's linear response, when it shapes the waveform (a band limit, an analogue leg): the
   reference is passed through it before any waveform is compared;
3. candidate delays: the best one or two normalised cross-correlation peaks of overlapping half-second
   blocks (of level-flattened copies, so soft syllables count), searched within ±250 ms of the global
   delay; later also the best delay of every stretch the path explains badly;
4. a delay path over 5 ms frames: for each frame and candidate, how little the normalised correlation
   of reference and received there proves that delay; a Viterbi search picks the path of least cost,
   a delay change costing a fixed price plus one per millisecond, so a change is made only where the
   signal proves it, and placed to the sample where the two delays explain the signal best.

Steps 2-4 live in :mod:`harness.audio.delaypath`. The result maps every reference sample to a received sample::

    >>> al = align(received, reference, 8000)          # doctest: +SKIP
    >>> al.delay_ms, al.jumps(8000)                      # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.fft import irfft, next_fast_len, rfft

from harness.audio.delaypath import (
    MIN_BLOCK_CORR,
    SEARCH_S,
    block_corrs,
    delay_path,
    place_splice,
    samples_at,
    usable_block,
)

__all__ = ["Alignment", "DelayBlock", "align", "gcc_phat"]

Signal = npt.NDArray[np.float64]

BLOCK_S = 1.0  #: length of one reported delay-track block


@dataclass(frozen=True)
class DelayBlock:
    """One delay-track block on the reference timeline."""

    start_s: float
    delay_ms: float
    corr: float
    measured: bool  #: False when the block was silent or unclear and took its neighbours' delay


@dataclass
class Alignment:
    """Result of :func:`align`. ``aligned[n]`` is the received sample heard for reference sample ``n``."""

    delay_ms: float  #: global delay (received lags reference when positive)
    peak: float  #: GCC-PHAT peak height relative to the correlation's spread (confidence)
    aligned: Signal
    valid: npt.NDArray[np.bool_]  #: False where the received recording has no sample for that instant
    delay_map: npt.NDArray[np.int64]  #: per reference sample, the delay in samples used
    track: list[DelayBlock] = field(default_factory=list)
    #: reference stretches ``(start, end)`` (indexes of ``aligned``) mapped onto the filler a jitter
    #: buffer inserted when it grew in mid-speech: the gap a listener heard, caused by a delay jump
    fillers: list[tuple[int, int]] = field(default_factory=list)
    #: reference stretches around a place where the jitter buffer shrank: the listener never heard
    #: ``(end - start) / 2`` samples somewhere in there (a discarded frame)
    skips: list[tuple[int, int]] = field(default_factory=list)
    start: int = 0  #: the reference sample ``aligned[0]`` stands for (see :meth:`window`)

    def jumps(self, rate: int) -> list[tuple[float, float]]:
        """Every change in the delay map as ``(time_s, jump_ms)`` (jitter-buffer adaptations, slips)."""
        where = np.flatnonzero(np.diff(self.delay_map)) + 1
        return [
            (float(self.start + k) / rate, float(self.delay_map[k] - self.delay_map[k - 1]) * 1000.0 / rate)
            for k in where
        ]

    def window(self, lo: int, hi: int) -> Alignment:
        """The alignment of reference samples ``lo:hi`` only (indexes of ``aligned``)."""
        return Alignment(
            delay_ms=self.delay_ms,
            peak=self.peak,
            aligned=self.aligned[lo:hi],
            valid=self.valid[lo:hi],
            delay_map=self.delay_map[lo:hi],
            track=self.track,
            fillers=_clip_spans(self.fillers, lo, hi),
            skips=_clip_spans(self.skips, lo, hi),
            start=self.start + lo,
        )

    def overlap(self) -> tuple[int, int]:
        """The stretch ``lo:hi`` of reference samples the recording holds (it may end before the reference)."""
        ok = np.flatnonzero(self.valid)
        return (int(ok[0]), int(ok[-1]) + 1) if len(ok) else (0, 0)

    def delay_range_ms(self, rate: int) -> float:
        """Largest minus smallest delay used anywhere in the call."""
        if len(self.delay_map) == 0:
            return 0.0
        return float(self.delay_map.max() - self.delay_map.min()) * 1000.0 / rate


def _clip_spans(spans: list[tuple[int, int]], lo: int, hi: int) -> list[tuple[int, int]]:
    return [(max(a, lo) - lo, min(b, hi) - lo) for a, b in spans if a < hi and b > lo]


def _band_mask(n_fft: int, rate: int, lo: float, hi: float) -> npt.NDArray[np.bool_]:
    f = np.fft.rfftfreq(n_fft, 1.0 / rate)
    return (f >= lo) & (f <= hi)


def gcc_phat(
    received: Signal, reference: Signal, rate: int, band: tuple[float, float] = (200.0, 3600.0)
) -> tuple[float, float]:
    """Delay (in samples, sub-sample by parabolic fit) of ``received`` relative to ``reference``.

    Returns ``(lag, peak)`` where ``peak`` is the height of the correlation peak over the standard
    deviation of the whole correlation, a confidence measure (> ~10 is a clear match).
    Every lag at which the two signals overlap is searched.
    """
    n = next_fast_len(len(received) + len(reference))
    spec = rfft(received, n) * np.conj(rfft(reference, n))
    mag = np.abs(spec)
    spec = spec / (mag + 1e-3 * (np.mean(mag) + 1e-30))
    spec[~_band_mask(n, rate, band[0], min(band[1], 0.48 * rate))] = 0.0
    cc = irfft(spec, n)
    # lags -(len(ref)-1) .. len(rec)-1, laid out contiguously
    cc = np.concatenate([cc[n - len(reference) + 1 :], cc[: len(received)]])
    lags = np.arange(-len(reference) + 1, len(received))
    k = int(np.argmax(cc))
    spread = float(np.std(cc)) or 1e-30
    frac = 0.0
    if 0 < k < len(cc) - 1:
        a, b, c = cc[k - 1], cc[k], cc[k + 1]
        den = a - 2 * b + c
        if den < 0:
            frac = float(0.5 * (a - c) / den)
    return float(lags[k]) + frac, float(cc[k] / spread)


def _active(reference: Signal, active: npt.NDArray[np.bool_] | None) -> npt.NDArray[np.bool_]:
    return active if active is not None else np.abs(reference) > 0


def _coarse_track(
    received: Signal, reference: Signal, rate: int, d0: int, active: npt.NDArray[np.bool_]
) -> list[DelayBlock]:
    """The reported delay track: one delay per one-second block (unmeasured blocks: nearest measured)."""
    blk, search, n_ref = round(BLOCK_S * rate), round(SEARCH_S * rate), len(reference)
    starts = list(range(0, max(n_ref - blk // 2, 1), blk))
    usable = [s for s in starts if usable_block(reference[s : s + blk], active[s : s + blk], blk)]
    found = dict(
        zip(usable, block_corrs(received, [reference[s : s + blk] for s in usable], usable, d0, search), strict=True)
    )
    delays: list[int | None] = []
    corrs: list[float] = []
    for s in starts:
        if s not in found:
            delays.append(None)
            corrs.append(0.0)
            continue
        lags, corr = found[s]
        k = int(np.argmax(corr))
        d, c = int(lags[k]), float(corr[k])
        corrs.append(c)
        delays.append(d if c >= MIN_BLOCK_CORR else None)
    filled = _fill(delays, d0)
    # an isolated block that disagrees with both equal neighbours is an outlier, unless it is sure
    for i in range(1, len(filled) - 1):
        if filled[i - 1] == filled[i + 1] != filled[i] and corrs[i] < 0.8:
            filled[i] = filled[i - 1]
    return [
        DelayBlock(s / rate, filled[i] * 1000.0 / rate, corrs[i], delays[i] is not None) for i, s in enumerate(starts)
    ]


def align(received: Signal, reference: Signal, rate: int, active: npt.NDArray[np.bool_] | None = None) -> Alignment:
    """Align ``received`` to ``reference``: global GCC-PHAT delay, then a delay path of 5 ms resolution.

    ``active`` (optional, per reference sample) marks where the reference talks; silent blocks give no
    candidate delay and no evidence.
    """
    lag, peak = gcc_phat(received, reference, rate)
    d0 = round(lag)
    act = _active(reference, active)
    n_ref = len(reference)
    track = _coarse_track(received, reference, rate, d0, act)
    dp = delay_path(
        received,
        reference,
        rate,
        d0,
        [(round(b.start_s * rate), round(b.delay_ms * rate / 1000.0)) for b in track],
        act,
    )
    path, heard, hop = dp.delays, dp.heard, dp.hop
    delay_map = np.repeat(path, hop)[:n_ref]
    loud = float(np.percentile(reference**2, 99)) if n_ref else 0.0
    fillers: list[tuple[int, int]] = []
    skips: list[tuple[int, int]] = []
    changes = np.flatnonzero(np.diff(path)) + 1
    bounds = [0, *[int(c) * hop for c in changes], n_ref]
    for i, c in enumerate(changes):
        d1, d2 = int(path[c - 1]), int(path[c])
        lo, hi = bounds[i], min(bounds[i + 2], n_ref)
        cut = place_splice(received, heard, lo, hi, d1, d2)
        inserted = d2 - d1
        span = abs(inserted)
        mid_speech = _talking(reference, cut, span, loud) and _talking(reference, cut + span, span, loud)
        recorded = cut + d1 >= 0 and cut + d2 < len(received)
        if inserted > 0 and mid_speech and recorded:
            # The jitter buffer grew mid-speech: the listener heard `inserted` samples of filler
            # (silence or concealment) where the reference went on. Keep the old delay across
            # them, so the filler shows on the reference timeline as what it is (a gap the MOS
            # model can see) instead of being stepped over; it is listed as the jump's filler, so
            # the dropout check leaves it to the jump (judged by delay_variation).
            end = min(cut + inserted, bounds[i + 2])
            fillers.append((cut, end))
            cut = end
        elif inserted < 0 and recorded:
            # the jitter buffer shrank: `span` samples of the reference near the cut were never played
            skips.append((max(cut - span, bounds[i]), min(cut + span, bounds[i + 2])))
        delay_map[bounds[i] : cut] = d1
        delay_map[cut : bounds[i + 2]] = d2
        bounds[i + 1] = cut
    j = np.arange(n_ref) + delay_map
    valid = (j >= 0) & (j < len(received))
    aligned = samples_at(received, np.arange(n_ref, dtype=np.int64) + delay_map, 0)
    return Alignment(
        delay_ms=lag * 1000.0 / rate,
        peak=peak,
        aligned=aligned,
        valid=valid,
        delay_map=delay_map,
        track=track,
        fillers=fillers,
        skips=skips,
    )


def _talking(reference: Signal, at: int, span: int, loud: float) -> bool:
    """Whether the reference talks in the ``span`` samples before ``at``: power within 40 dB of its loudest."""
    seg = reference[max(at - span, 0) : at]
    return len(seg) > 0 and float(np.mean(seg**2)) >= loud * 1e-4


def _fill(delays: list[int | None], default: int) -> list[int]:
    """Give unmeasured blocks the delay of the nearest measured block (earlier one on ties)."""
    known = [i for i, d in enumerate(delays) if d is not None]
    if not known:
        return [default] * len(delays)
    out: list[int] = []
    for i in range(len(delays)):
        nearest = min(known, key=lambda k: (abs(k - i), k))
        d = delays[nearest]
        assert d is not None
        out.append(d)
    return out
