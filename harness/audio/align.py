"""Time alignment of a received recording to the reference that was played.

Every other metric compares the two signals sample by sample, so alignment comes first and has to
survive what a real call does to timing: an unknown start offset (recorder and player start at
different moments), and jumps of tens of milliseconds when a jitter buffer grows or shrinks. A single
global delay is not enough: measured on this project's corpus, one 40 ms jitter-buffer jump without a
delay track wrecks every metric after it.

So: a global delay by GCC-PHAT (phase transform: sharp peak, insensitive to spectral colouring by
codecs), then a delay track of ~1 s blocks, each searched within ±100 ms of the global delay by
normalised cross-correlation, and where two blocks disagree the switch point is placed where the
two delays explain the signal best. The result maps every reference sample to a received sample::

    >>> al = align(received, reference, 8000)          # doctest: +SKIP
    >>> al.delay_ms, [round(b.delay_ms) for b in al.track]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy.fft import irfft, next_fast_len, rfft
from scipy.signal import fftconvolve

__all__ = ["Alignment", "DelayBlock", "align", "gcc_phat"]

Signal = npt.NDArray[np.float64]

BLOCK_S = 1.0  #: length of one delay-track block
SEARCH_S = 0.100  #: a block's delay is searched within ± this of the global delay
MIN_BLOCK_CORR = 0.4  #: a block whose best normalised correlation is lower inherits its neighbours' delay


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

    def jumps(self, rate: int) -> list[tuple[float, float]]:
        """Every change in the delay map as ``(time_s, jump_ms)`` (jitter-buffer adaptations, slips)."""
        where = np.flatnonzero(np.diff(self.delay_map)) + 1
        return [(float(k) / rate, float(self.delay_map[k] - self.delay_map[k - 1]) * 1000.0 / rate) for k in where]

    def delay_range_ms(self, rate: int) -> float:
        """Largest minus smallest delay used anywhere in the call."""
        if len(self.delay_map) == 0:
            return 0.0
        return float(self.delay_map.max() - self.delay_map.min()) * 1000.0 / rate


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


def _block_delay(received: Signal, ref_block: Signal, start: int, d0: int, search: int) -> tuple[int, float]:
    """Best delay for one reference block by normalised cross-correlation, within d0 ± search."""
    lo = start + d0 - search
    hi = start + d0 + search + len(ref_block)
    lo_c, hi_c = max(lo, 0), min(hi, len(received))
    if hi_c - lo_c < len(ref_block):
        return d0, 0.0
    seg = received[lo_c:hi_c]
    num = fftconvolve(seg, ref_block[::-1], mode="valid")
    csum = np.concatenate([[0.0], np.cumsum(seg**2)])
    e_seg = csum[len(ref_block) :] - csum[: -len(ref_block)]
    e_ref = float(np.sum(ref_block**2))
    corr = num / np.sqrt(np.maximum(e_seg, 1e-20) * max(e_ref, 1e-20))
    k = int(np.argmax(corr))
    return lo_c + k - start, float(corr[k])


def _split(
    received: Signal, reference: Signal, a: int, b: int, d1: int, d2: int, gains: tuple[float, float], rate: int
) -> int:
    """Where in [a, b) the delay switches from d1 to d2: the switch that leaves the least residual.

    Each delay is judged with the gain measured where it holds (``gains``): a gain taken over the
    whole call would be wrong on both sides of the jump, and could favour the wrong side.
    """
    hop = max(round(0.005 * rate), 1)
    n = (b - a) // hop
    if n < 2:
        return (a + b) // 2
    idx = a + np.arange(n * hop)

    def err(d: int, gain: float) -> Signal:
        j = idx + d
        y = np.where((j >= 0) & (j < len(received)), received[np.clip(j, 0, len(received) - 1)], 0.0)
        return np.sum(((y - gain * reference[idx]) ** 2).reshape(n, hop), axis=1)

    e1, e2 = err(d1, gains[0]), err(d2, gains[1])
    cost = np.concatenate([[0.0], np.cumsum(e1)]) + np.concatenate([np.cumsum(e2[::-1])[::-1], [0.0]])
    return a + int(np.argmin(cost)) * hop


def align(received: Signal, reference: Signal, rate: int, active: npt.NDArray[np.bool_] | None = None) -> Alignment:
    """Align ``received`` to ``reference``: global GCC-PHAT delay, then a per-block delay track.

    ``active`` (optional, per reference sample) marks where the reference talks; silent blocks are not
    measured and take the delay of their neighbours.
    """
    lag, peak = gcc_phat(received, reference, rate)
    d0 = round(lag)
    blk = round(BLOCK_S * rate)
    search = round(SEARCH_S * rate)
    n_ref = len(reference)
    starts = list(range(0, max(n_ref - blk // 2, 1), blk))
    delays: list[int | None] = []
    corrs: list[float] = []
    for s in starts:
        e = min(s + blk, n_ref)
        block = reference[s:e]
        act = active[s:e] if active is not None else np.abs(block) > 0
        if e - s < blk // 4 or np.count_nonzero(act) < 0.2 * (e - s) or not np.any(block):
            delays.append(None)
            corrs.append(0.0)
            continue
        d, c = _block_delay(received, block, s, d0, search)
        corrs.append(c)
        delays.append(d if c >= MIN_BLOCK_CORR else None)
    filled = _fill(delays, d0)
    # refine: an isolated block that disagrees with both equal neighbours is an outlier, unless it is sure
    for i in range(1, len(filled) - 1):
        if filled[i - 1] == filled[i + 1] != filled[i] and corrs[i] < 0.8:
            filled[i] = filled[i - 1]
    loud = float(np.percentile(reference**2, 99)) if n_ref else 0.0
    delay_map = np.full(n_ref, filled[0] if filled else d0, dtype=np.int64)
    for i, s in enumerate(starts):
        delay_map[s:] = filled[i]
    for i in range(1, len(starts)):
        if filled[i] != filled[i - 1]:
            a = starts[i - 1]
            b = min(starts[i] + blk, n_ref)
            gains = (
                _ls_gain(received, reference, filled[i - 1], a, starts[i]),
                _ls_gain(received, reference, filled[i], starts[i], b),
            )
            cut = _split(received, reference, a, b, filled[i - 1], filled[i], gains, rate)
            inserted = filled[i] - filled[i - 1]
            if inserted > 0 and _talking(reference, cut, inserted, loud):
                # The jitter buffer grew mid-speech: the listener heard `inserted` samples of filler
                # (silence or concealment) where the reference went on. Keep the old delay across
                # them, so the filler shows on the reference timeline as what it is (a gap the
                # dropout detector and the MOS model can see) instead of being stepped over.
                cut = min(cut + inserted, b)
            delay_map[a:cut] = filled[i - 1]
            delay_map[cut:b] = filled[i]
    j = np.arange(n_ref) + delay_map
    valid = (j >= 0) & (j < len(received))
    aligned = (
        np.where(valid, received[np.clip(j, 0, max(len(received) - 1, 0))], 0.0) if len(received) else np.zeros(n_ref)
    )
    track = [
        DelayBlock(s / rate, filled[i] * 1000.0 / rate, corrs[i], delays[i] is not None) for i, s in enumerate(starts)
    ]
    return Alignment(
        delay_ms=lag * 1000.0 / rate,
        peak=peak,
        aligned=aligned,
        valid=valid,
        delay_map=delay_map,
        track=track,
    )


def _talking(reference: Signal, at: int, span: int, loud: float) -> bool:
    """Whether the reference talks right before ``at``: power within 40 dB of its loudest samples."""
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


def _ls_gain(received: Signal, reference: Signal, d: int, start: int = 0, end: int | None = None) -> float:
    """Least-squares gain of the received signal against ``reference[start:end]`` at delay ``d``."""
    j = np.arange(start, len(reference) if end is None else min(end, len(reference))) + d
    ok = (j >= 0) & (j < len(received))
    if not np.any(ok):
        return 1.0
    x = reference[j[ok] - d]
    y = received[j[ok]]
    den = float(np.dot(x, x))
    return float(np.dot(x, y) / den) if den > 0 else 1.0
