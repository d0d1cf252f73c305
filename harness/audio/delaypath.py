"""The fine delay path of :func:`harness.audio.align.align`: one delay per 5 ms frame.

A jitter buffer under load changes the delay every few seconds: jumps of 10-50 ms and 10-20 ms
time-warps (a frame dropped, or concealed and so repeated). Between two such events the delay is
constant, so the path is piecewise constant, and finding it is a shortest-path problem: for every
5 ms frame and every candidate delay, a cost that says how badly that delay explains the frame, and a
price per delay change; a Viterbi search finds the cheapest path. The parts:

- :func:`delay_path` runs it: the channel's response (only when it shapes the waveform), candidate
  delays from half-second blocks, the path (:mod:`harness.audio.viterbi`), then two rounds of
  searching every stretch of the path, and every stretch it explains badly, for a delay the blocks
  missed (:mod:`harness.audio.blockcorr`);
- most calls keep one delay: when the coarse track never moves, the global delay alone is costed
  first, and kept when no stretch is better explained by another delay by more than a delay change
  would cost (``_one_delay``); that skips the search, the bulk of the analysis time, and gives the
  same path (checked item by item on the accuracy corpus);
- :func:`place_change` puts each change on the sample where the two delays explain the signal best;
  :func:`place_splice` does so by a squared error against the scaled reference (for the alignment's
  jitter-buffer splices, where what was played matters, not only what of the reference was kept).

A frame's cost is one minus the evidence for that delay: the normalised correlation of reference and
received there, rescaled so that 0.5 or less counts as none and 1 as full. Correlation asks whether
the received holds the reference's waveform at that delay, whatever else it holds (an echo, noise, the
other party), and needs no gain; chance correlations of unrelated speech stay below the floor. A
change of delay costs a fixed price plus one per millisecond it moves.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.ndimage import binary_closing, uniform_filter1d
from scipy.signal import fftconvolve

from harness.audio.blockcorr import block_corr, block_corrs, block_delay, usable_block
from harness.audio.viterbi import SWITCH_COST, no_detours, viterbi

_viterbi = viterbi  # the name harness.audio.match imports

__all__ = [
    "FRAME_S",
    "MIN_BLOCK_CORR",
    "SEARCH_S",
    "DelayPath",
    "block_corr",
    "block_corrs",
    "block_delay",
    "delay_path",
    "place_change",
    "place_splice",
    "samples_at",
    "usable_block",
]

Signal = npt.NDArray[np.float64]

SEARCH_S = 0.250  #: delays are searched within ± this of the global delay (a stall of a quarter second)
MIN_BLOCK_CORR = 0.4  #: a block whose best normalised correlation is lower gives no candidate
CAND_BLOCK_S = 0.5  #: candidate delays come from blocks this long ...
CAND_HOP_S = 0.25  #: ... starting this far apart
FRAME_S = 0.005  #: resolution of the delay path
SPEECH_DB = 35.0  #: reference frames this far below the loud ones carry no evidence about the delay
MIN_EVIDENCE = 0.5  #: a frame's correlation below this says nothing about the delay
POOR_COST = 0.5  #: a frame whose cost is above this (correlation below 0.75) is explained badly
REFINE_ROUNDS = 2  #: rounds of searching the badly explained stretches for delays the blocks missed
CHANNEL_TAPS = 512  #: length of the measured channel response (64 ms at 8 kHz)
CHANNEL_GAIN = 0.5  #: the channel's response is used when it leaves less than this share of the error
MIN_SEGMENT_S = 0.04  #: a delay held for less than this between two others is a detour, not a delay
MAX_STRETCHES = 60  #: more badly explained stretches than this: not searched one by one for one delay
ONE_DELAY_FIRST = True  #: try the one-delay path first (tests turn it off to compare with the full path)


@dataclass(frozen=True)
class DelayPath:
    """The delay per 5 ms frame (``hop`` samples), and the reference as the channel passed it."""

    delays: npt.NDArray[np.int64]
    heard: Signal
    hop: int


def delay_path(
    received: Signal,
    reference: Signal,
    rate: int,
    d0: int,
    blocks: list[tuple[int, int]],
    active: npt.NDArray[np.bool_],
) -> DelayPath:
    """The cheapest piecewise-constant delay path of ``received`` against ``reference``.

    ``d0`` is the global delay, ``blocks`` the coarse track as ``(first reference sample, delay in
    samples)``, ``active`` marks where the reference talks.
    """
    hop = max(round(FRAME_S * rate), 1)
    if ONE_DELAY_FIRST and all(d == d0 for _, d in blocks):
        steady = _one_delay(received, reference, rate, d0, hop)
        if steady is not None:
            return steady
    # the path compares waveforms: compare the received with the reference as the channel passed it
    # (a band limit or a filter's phase would otherwise leave every delay explaining it badly)
    heard = _through_channel(received, reference, rate, d0, blocks, active)
    # candidates are searched on level-flattened copies, so a soft syllable counts as much as a loud one
    flat_rec, flat_ref = _flatten(received, rate), _flatten(heard, rate)
    cands = _candidates(flat_rec, flat_ref, rate, d0, active)
    costs = _frame_costs(received, heard, rate, cands)
    path, picked = _path(costs, cands, rate)
    for _ in range(REFINE_ROUNDS):
        # a delay held for less than a candidate block may have lost to its neighbours there: measure
        # each stretch of the path, and each stretch it explains badly, on its own; search again
        more = _segment_delays(flat_rec, flat_ref, rate, d0, active, path, hop)
        more |= _poorly_explained(flat_rec, flat_ref, rate, d0, costs[picked, np.arange(len(picked))], hop)
        if more <= set(cands):
            break
        cands = sorted(set(cands) | more)
        costs = _frame_costs(received, heard, rate, cands)
        path, picked = _path(costs, cands, rate)
    return DelayPath(path, heard, hop)


def _one_delay(received: Signal, reference: Signal, rate: int, d0: int, hop: int) -> DelayPath | None:
    """The path when the global delay alone explains the call as well as any path would, else None.

    Most calls keep one delay: the coarse track never moves, and the search for a better path is
    wasted. Here the global delay ``d0`` is costed alone; every stretch it explains badly is searched
    for its own best delay (as the path's refinement does); each such delay is costed too. Staying on
    ``d0`` is the cheapest path when no delay saves more than half a delay change on any stretch and
    nothing over the whole call: then any path that leaves ``d0`` (or never takes it) pays more in
    changes than it saves. Short of that bound, the cheapest path over ``d0`` and these delays
    decides. When it moves, and when too much of the call is explained badly to search stretch by
    stretch (a channel that shapes the waveform, heavy noise), the full path decides.
    """
    costs0 = _frame_costs(received, reference, rate, [d0])[0]
    pad = max(round(0.02 / FRAME_S), 1)
    bad = binary_closing(costs0 > POOR_COST, structure=np.ones(pad, dtype=bool))
    stretches = np.count_nonzero(np.diff(np.concatenate([[0], bad.astype(np.int8), [0]])) > 0)
    if stretches > MAX_STRETCHES:
        return None
    flat_rec, flat_ref = _flatten(received, rate), _flatten(reference, rate)
    alts = sorted(_poorly_explained(flat_rec, flat_ref, rate, d0, costs0, hop) - {d0})
    if alts:
        costs = _frame_costs(received, reference, rate, alts)
        gain = costs0[None, :] - costs
        csum = np.concatenate([np.zeros((len(alts), 1)), np.cumsum(gain, axis=1)], axis=1)
        best = np.max(csum - np.minimum.accumulate(csum, axis=1))  # the most any one stretch saves
        if best >= SWITCH_COST / 2 or np.max(csum[:, -1]) > 0:
            # not settled by the bound: the cheapest path over these delays decides
            cands = sorted([d0, *alts])
            stacked = np.vstack([costs0[None, :], costs])[np.argsort([d0, *alts])]
            if np.any(_path(stacked, cands, rate)[0] != d0):
                return None
    return DelayPath(np.full(len(costs0), d0, dtype=np.int64), reference, hop)


def _through_channel(
    received: Signal,
    reference: Signal,
    rate: int,
    d0: int,
    blocks: list[tuple[int, int]],
    active: npt.NDArray[np.bool_],
) -> Signal:
    """``reference`` through the channel's linear response, measured at the global delay ``d0``.

    ``blocks`` is the coarse delay track as ``(first reference sample, delay in samples)``.
    The response is the Welch cross-spectrum of the received and the reference over the reference's
    power spectrum, from the talking frames of blocks whose delay is ``d0`` (give or take 2 ms: a jump
    elsewhere would add a ghost), as a 64 ms FIR from -16 to +48 ms: a G.711 or clean path comes out
    as the identity, a band limit or an analogue leg as itself, its group delay included.
    """
    n = len(reference)
    nfft = CHANNEL_TAPS
    lead = nfft // 4  # taps before lag 0: a sub-sample delay and a linear-phase filter need a few
    if n < 2 * nfft:
        return reference
    near = np.zeros(n, dtype=bool)
    for start, delay in blocks:
        near[start:] = abs(delay - d0) <= 0.002 * rate
    y = samples_at(received, np.arange(n, dtype=np.int64), d0)
    hop = nfft // 4
    starts = np.arange(0, n - nfft + 1, hop)
    starts = starts[[bool(np.count_nonzero(active[s : s + nfft] & near[s : s + nfft]) > 3 * nfft // 4) for s in starts]]
    if len(starts) < 8:
        return reference
    win = np.hanning(nfft)
    idx = starts[:, None] + np.arange(nfft)[None, :]
    fx, fy = np.fft.rfft(reference[idx] * win, axis=1), np.fft.rfft(y[idx] * win, axis=1)
    pxx = np.sum(np.abs(fx) ** 2, axis=0)
    pxy = np.sum(np.conj(fx) * fy, axis=0)
    h = np.roll(np.fft.irfft(pxy / (pxx + 1e-6 * float(np.max(pxx)) + 1e-30), nfft), lead)
    taper = np.ones(nfft)
    edge = nfft // 16
    taper[:edge] = np.hanning(2 * edge)[:edge]
    taper[-edge:] = np.hanning(2 * edge)[edge:]
    heard = np.asarray(fftconvolve(reference, h * taper)[lead : lead + n], dtype=np.float64)
    # only a channel that shapes the waveform is worth its estimate: on a G.711 path the reference
    # already explains the received, and the estimate would only add what the jumps smeared into it
    # (the median over frames: frames a jump displaced explain nothing either way)
    if _rel_error(y[idx], heard[idx]) < CHANNEL_GAIN * _rel_error(y[idx], reference[idx]):
        return heard
    return reference


def _rel_error(y: npt.NDArray[np.float64], x: npt.NDArray[np.float64]) -> float:
    """Median over frames (rows) of the energy of ``y`` the least-squares scaled ``x`` leaves unexplained."""
    xx, yy, xy = np.sum(x * x, axis=1), np.sum(y * y, axis=1), np.sum(x * y, axis=1)
    return float(np.median(np.clip(1.0 - xy**2 / np.maximum(xx * yy, 1e-30), 0.0, 1.0)))


def _flatten(x: Signal, rate: int) -> Signal:
    """``x`` divided by its own 20 ms envelope (floored 35 dB below the loud parts).

    The envelope moves with the signal, so a delayed, scaled copy stays a delayed copy after this:
    correlations of flattened signals find the same delays, but weigh every syllable alike.
    """
    if not len(x):
        return x
    env = np.sqrt(np.maximum(uniform_filter1d(x**2, max(round(0.02 * rate), 1), mode="constant"), 0.0))
    loud = float(np.percentile(env, 95))
    if loud <= 0:
        return x
    return np.asarray(x / np.maximum(env, loud * 10 ** (-SPEECH_DB / 20)), dtype=np.float64)


def _candidates(received: Signal, reference: Signal, rate: int, d0: int, active: npt.NDArray[np.bool_]) -> list[int]:
    """Every delay that explains some half second of the reference: its best and second-best peak."""
    blk, hop, search = round(CAND_BLOCK_S * rate), round(CAND_HOP_S * rate), round(SEARCH_S * rate)
    sep = max(round(0.001 * rate), 1)  # a second peak must be a different delay, not the first's flank
    out = {d0}
    starts = [
        s
        for s in range(0, max(len(reference) - blk // 2, 1), hop)
        if usable_block(reference[s : s + blk], active[s : s + blk], blk)
    ]
    blocks = [reference[s : s + blk] for s in starts]
    for lags, corr in block_corrs(received, blocks, starts, d0, search):
        for _ in range(2):
            k = int(np.argmax(corr))
            if corr[k] < MIN_BLOCK_CORR:
                break
            out.add(int(lags[k]))
            corr = corr.copy()
            corr[max(k - sep, 0) : k + sep + 1] = -1.0
    return sorted(out)


def _frame_costs(received: Signal, reference: Signal, rate: int, cands: list[int]) -> npt.NDArray[np.float64]:
    """Per candidate and 5 ms frame: one minus the evidence (normalised correlation, 0.5 .. 1) there.

    Correlation asks whether the received holds the reference's waveform at that delay, whatever else
    it holds: unlike a squared error it does not favour a delay that points at silence where the true
    one also carries an echo, noise or the other party; and it needs no gain. Frames where the
    reference is silent carry no evidence and cost nothing: the path then keeps its delay, and a
    change falls where speech proves it. A delay pointing outside the recording explains nothing.
    """
    hop = max(round(FRAME_S * rate), 1)
    nf = (len(reference) + hop - 1) // hop
    x = np.pad(reference, (0, nf * hop - len(reference))).reshape(nf, hop)
    xx = np.sum(x**2, axis=1)
    e_db = 10 * np.log10(xx + 1e-20)
    loud_db = float(np.percentile(e_db, 90)) if nf else 0.0
    speech = e_db >= loud_db - SPEECH_DB
    first = np.flatnonzero(speech) * hop  # only speech frames are costed
    xs, xxs = x[speech], xx[speech]
    pad = nf * hop + max((abs(d) for d in cands), default=0)
    padded = np.pad(received, (pad, pad))
    costs = np.zeros((len(cands), nf))
    for i, d in enumerate(cands):
        y = padded[pad + d : pad + d + nf * hop].reshape(nf, hop)[speech]
        rho = np.einsum("ij,ij->i", xs, y) / np.sqrt(np.maximum(xxs * np.einsum("ij,ij->i", y, y), 1e-30))
        outside = (first + d < 0) | (first + hop + d > len(received))
        # a weak correlation is no evidence (unrelated speech has them by chance): it costs as much as
        # none, so a stretch no delay explains (a dropout, a concealed packet) does not move the path
        evidence = np.clip((rho - MIN_EVIDENCE) / (1.0 - MIN_EVIDENCE), 0.0, 1.0)
        costs[i, speech] = np.where(outside, 1.0, 1.0 - evidence)
    return costs


def _path(
    costs: npt.NDArray[np.float64], cands: list[int], rate: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The delay per frame (Viterbi path without detours), and the candidate index it picked."""
    best = no_detours(viterbi(costs, cands, rate), costs, MIN_SEGMENT_S / FRAME_S)
    return np.asarray(cands, dtype=np.int64)[best], best


def _poorly_explained(received: Signal, reference: Signal, rate: int, d0: int, cost: Signal, hop: int) -> set[int]:
    """The best delay of each stretch of speech frames the path explains badly.

    Badly explained frames less than 20 ms apart make one stretch; a stretch of 20 ms or more is
    searched with 20 ms of context on each side.
    """
    pad = max(round(0.02 / FRAME_S), 1)
    bad = binary_closing(cost > POOR_COST, structure=np.ones(pad, dtype=bool))
    search = round(SEARCH_S * rate)
    out: set[int] = set()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], bad.astype(np.int8), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        if b - a < pad:
            continue
        lo, hi = max(int(a) - pad, 0) * hop, min((int(b) + pad) * hop, len(reference))
        d, c = block_delay(received, reference[lo:hi], lo, d0, search)
        if c >= MIN_BLOCK_CORR:
            out.add(d)
    return out


def _segment_delays(
    received: Signal,
    reference: Signal,
    rate: int,
    d0: int,
    active: npt.NDArray[np.bool_],
    path: npt.NDArray[np.int64],
    hop: int,
) -> set[int]:
    """The best delay of every stretch of ``path`` with speech enough to measure (40 ms or more)."""
    search = round(SEARCH_S * rate)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(path)) + 1, [len(path)]])
    margin = 2 * hop  # the path's changes are placed to a frame or so: keep clear of them
    out: set[int] = set()
    for a, b in itertools.pairwise(int(x) * hop for x in starts):
        a, b = (a + margin if a else a), min(b - margin, len(reference))
        if b <= a or np.count_nonzero(active[a:b]) < round(MIN_SEGMENT_S * rate):
            continue
        d, c = block_delay(received, reference[a:b], a, d0, search)
        if c >= MIN_BLOCK_CORR:
            out.add(d)
    return out


def samples_at(received: Signal, idx: npt.NDArray[np.int64], d: int) -> Signal:
    """``received[idx + d]``, zero where the recording has no sample."""
    j = idx + d
    ok = (j >= 0) & (j < len(received))
    if not len(received):
        return np.zeros(len(idx))
    return np.where(ok, received[np.clip(j, 0, len(received) - 1)], 0.0)


def place_change(received: Signal, reference: Signal, a: int, b: int, d1: int, d2: int) -> int:
    """The sample in [a, b] where switching from delay d1 to d2 keeps the most of the reference.

    "Kept" is the summed product of reference and received (the cross term of a squared error, left
    alone by whatever else the received holds). Where a stretch of positions is as good (a pause:
    neither delay finds anything), its middle.
    """
    idx = np.arange(a, b, dtype=np.int64)
    if len(idx) == 0:
        return a
    x = reference[idx]
    e1, e2 = -x * samples_at(received, idx, d1), -x * samples_at(received, idx, d2)
    cost = np.concatenate([[0.0], np.cumsum(e1)]) + np.concatenate([np.cumsum(e2[::-1])[::-1], [0.0]])
    tol = 1e-4 * float(np.sqrt(np.sum(x**2) * max(float(np.sum(samples_at(received, idx, d2) ** 2)), 1e-30)))
    best = np.flatnonzero(cost <= cost.min() + tol)
    return a + int(best[len(best) // 2]) if best[-1] - best[0] == len(best) - 1 else a + int(np.argmin(cost))


def place_splice(received: Signal, reference: Signal, a: int, b: int, d1: int, d2: int) -> int:
    """The sample in [a, b] where switching from delay d1 to d2 leaves the least squared error.

    The error is that of the received against the reference scaled by ``g``, the sum of the two delays'
    least-squares gains over [a, b]: per sample, ``received² - 2·g·reference·received`` plus a term that
    is the same wherever the cut goes. Unlike :func:`place_change`'s cross term alone, it also counts
    what the received holds that the reference does not, so a splice lands where the jitter buffer
    made it and not merely where the speech gets quiet. Where a stretch of positions is as good, its
    middle.

    The summed gain (twice a matched one) is the one measured best: with it and the MOS model's gain
    hold over warped frames (:func:`harness.audio.mos.warped_frames`), the MOS drop's correlation with
    PESQ's on 68 clean-lab recordings with jumps went from 0.74 to 0.81; with a matched gain, 0.70.
    """
    idx = np.arange(a, b, dtype=np.int64)
    if len(idx) == 0:
        return a
    x = reference[idx]
    y1, y2 = samples_at(received, idx, d1), samples_at(received, idx, d2)
    xx = float(np.sum(x**2))
    if xx <= 0:
        return a + len(idx) // 2
    g = max(float(x @ y1 + x @ y2) / xx, 0.0)
    e1, e2 = (g * x - y1) ** 2, (g * x - y2) ** 2
    cost = np.concatenate([[0.0], np.cumsum(e1)]) + np.concatenate([np.cumsum(e2[::-1])[::-1], [0.0]])
    tol = 1e-4 * float(np.sum(y1**2) + np.sum(y2**2)) / 2
    best = np.flatnonzero(cost <= cost.min() + tol)
    return a + int(best[len(best) // 2]) if best[-1] - best[0] == len(best) - 1 else a + int(np.argmin(cost))
