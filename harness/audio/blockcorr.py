"""Normalised cross-correlation of reference blocks against the received, within a delay search range.

The alignment's building block (:mod:`harness.audio.align`, :mod:`harness.audio.delaypath`): for a block
of the reference, how well each delay within ``d0 ± search`` explains the received there. Blocks of
one length share one batched FFT; each transform is only as long as the searched segment (the "valid"
lags of a circular correlation that long do not wrap).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.fft import irfft, next_fast_len, rfft

__all__ = ["block_corr", "block_corrs", "block_delay", "usable_block"]

Signal = npt.NDArray[np.float64]


def block_corr(
    received: Signal, ref_block: Signal, start: int, d0: int, search: int
) -> tuple[npt.NDArray[np.int64], Signal]:
    """Normalised cross-correlation of one reference block at every delay within d0 ± search."""
    return block_corrs(received, [ref_block], [start], d0, search)[0]


def block_corrs(
    received: Signal, ref_blocks: list[Signal], starts: list[int], d0: int, search: int
) -> list[tuple[npt.NDArray[np.int64], Signal]]:
    """:func:`block_corr` of several blocks; blocks of one length with whole search windows share
    their FFTs (one batched transform), the others are done one by one."""
    out: list[tuple[npt.NDArray[np.int64], Signal] | None] = [None] * len(ref_blocks)
    groups: dict[int, list[int]] = {}
    for i, (blk, start) in enumerate(zip(ref_blocks, starts, strict=True)):
        lo, hi = start + d0 - search, start + d0 + search + len(blk)
        if lo >= 0 and hi <= len(received):
            groups.setdefault(len(blk), []).append(i)
        else:
            out[i] = _one_block_corr(received, blk, start, d0, search)
    for length, idx in groups.items():
        seg_len = length + 2 * search
        n = next_fast_len(seg_len, real=True)  # "valid" lags only: a circular transform this long does not wrap
        segs = np.stack([received[starts[i] + d0 - search : starts[i] + d0 - search + seg_len] for i in idx])
        blks = np.stack([ref_blocks[i] for i in idx])
        num = irfft(rfft(segs, n, axis=1) * np.conj(rfft(blks, n, axis=1)), n, axis=1)[:, : 2 * search + 1]
        csum = np.concatenate([np.zeros((len(idx), 1)), np.cumsum(segs**2, axis=1)], axis=1)
        e_seg = csum[:, length:] - csum[:, :-length]
        e_ref = np.maximum(np.sum(blks**2, axis=1), 1e-20)[:, None]
        corr = num / np.sqrt(np.maximum(e_seg, 1e-20) * e_ref)
        lags = np.arange(-search, search + 1, dtype=np.int64) + d0
        for row, i in enumerate(idx):
            out[i] = (lags, np.asarray(corr[row], dtype=np.float64))
    return [o for o in out if o is not None]


def _one_block_corr(
    received: Signal, ref_block: Signal, start: int, d0: int, search: int
) -> tuple[npt.NDArray[np.int64], Signal]:
    lo = start + d0 - search
    hi = start + d0 + search + len(ref_block)
    lo_c, hi_c = max(lo, 0), min(hi, len(received))
    if hi_c - lo_c < len(ref_block) or len(ref_block) == 0:
        return np.array([d0], dtype=np.int64), np.zeros(1)
    seg = received[lo_c:hi_c]
    n = next_fast_len(len(seg), real=True)
    num = irfft(rfft(seg, n) * np.conj(rfft(ref_block, n)), n)[: len(seg) - len(ref_block) + 1]
    csum = np.concatenate([[0.0], np.cumsum(seg**2)])
    e_seg = csum[len(ref_block) :] - csum[: -len(ref_block)]
    e_ref = float(np.sum(ref_block**2))
    corr = num / np.sqrt(np.maximum(e_seg, 1e-20) * max(e_ref, 1e-20))
    return lo_c - start + np.arange(len(corr), dtype=np.int64), np.asarray(corr, dtype=np.float64)


def block_delay(received: Signal, ref_block: Signal, start: int, d0: int, search: int) -> tuple[int, float]:
    """Best delay for one reference block by normalised cross-correlation, within d0 ± search."""
    lags, corr = block_corr(received, ref_block, start, d0, search)
    k = int(np.argmax(corr))
    return int(lags[k]), float(corr[k])


def usable_block(block: Signal, act: npt.NDArray[np.bool_], full: int) -> bool:
    return bool(len(block) >= full // 4 and np.count_nonzero(act) >= 0.2 * len(block) and np.any(block))
