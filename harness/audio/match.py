"""Find a known piece of audio inside a recording: IVR prompt recognition without speech recognition.

A prompt may be heard from any point of its loop, so the recording (a window no longer than the prompt)
is searched inside the prompt played over and over: a contiguous slice of a looped signal is always a
contiguous slice of two copies. The score is the normalised cross-correlation of the waveforms,
which survives G.711 coding (> 0.95) and falls near 0 for other speech or music.

A single lag is not enough on a real call: the listener's adaptive jitter buffer inserts (grows) or
drops (shrinks) 10-160 ms of audio now and then, and a jump in the middle of the window splits a
single-lag correlation in two (two halves of 0.5 each). So the match follows the recording as
:mod:`harness.audio.delaypath` follows a call, with its parts, at the grain a 3 s window needs:

1. the anchor: the single lag into the looped prompt that explains the whole window best (the score
   of old, kept as :attr:`SegmentMatch.single_lag`);
2. every quarter-second block of the window is correlated with the prompt at every lag within
   ± :data:`~harness.audio.delaypath.SEARCH_S` of the anchor (:func:`~harness.audio.delaypath.block_corr`);
3. one piecewise-constant path through those lags, by the delay path's Viterbi search and prices: a
   block at a lag costs its 5 ms speech frames that lag does not explain (a correlation below 0.5 is no
   evidence at all), a lag change a fixed price plus one per millisecond. The path moves only where
   the recording proves a jump, and never further than a quarter second from the anchor: no block can
   pick a fragment of its own elsewhere in the prompt;
4. each change is placed to the sample (:func:`~harness.audio.delaypath.place_change`, on
   level-flattened copies); where the buffer grew, the filler it played (silence, or a concealed
   frame: what neither lag explains) is not expected to hold the prompt; the prompt is read along the
   path, and the score is the mean of the blocks' normalised correlations with it, weighted by the
   recording's energy in each block.

Other audio gains nothing from this: its blocks correlate with the prompt by chance (0.1-0.3), below
the evidence floor, so its path stays on the anchor. Measured on the fixtures through G.711: the
prompt with one or two jumps of 60-140 ms scores 0.94-1.00 (0.46-0.85 at a single lag); other speech,
music on hold, the wrong prompt, tones and noise 0.13 at most.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from harness.audio.delaypath import (
    FRAME_S,
    MIN_EVIDENCE,
    SEARCH_S,
    SPEECH_DB,
    _flatten,
    _viterbi,
    block_corr,
    place_change,
    samples_at,
)

__all__ = ["BLOCK_S", "SegmentMatch", "VoiceInMix", "find_in_loop", "voice_in_mix"]

BLOCK_S = 0.25  #: the recording is judged in blocks this long, each at its own lag along the path
MIN_JUMP_MS = 2.5  #: a lag change smaller than this is a sub-sample wobble of the peak, not a jump


@dataclass(frozen=True)
class SegmentMatch:
    score: float  #: normalised cross-correlation along the path (energy-weighted over blocks), -1..1
    offset_s: float  #: where in the prompt the recording starts
    level_dbov: float  #: RMS level of the recording
    #: the delay jumps followed, as ``(time in the recording s, jump ms)``: positive when the recording
    #: fell behind the prompt (audio inserted: the jitter buffer grew), negative when audio was dropped
    jumps: tuple[tuple[float, float], ...] = ()
    judged_s: float = 0.0  #: length of the recording's window that was judged (0: too short, or silent)
    window_start_s: float = 0.0  #: where in the recording that window starts
    single_lag: float = 0.0  #: the best correlation at one lag for the whole window (the score of old)

    def jumps_text(self) -> str:
        """The followed jumps for a report, e.g. ``"1 delay jump followed (+100 ms at 1.52 s)"``."""
        if not self.jumps:
            return "no delay jump"
        n = len(self.jumps)
        each = ", ".join(f"{j:+.0f} ms at {t:.2f} s" for t, j in self.jumps)
        return f"{n} delay jump{'s' if n > 1 else ''} followed ({each})"


def _level(x: NDArray[np.float64]) -> float:
    rms = float(np.sqrt(np.mean(x * x))) if len(x) else 0.0
    return float(20 * np.log10(rms)) if rms > 0 else -120.0  # P.56 convention, as harness.audio.level


def find_in_loop(recording: NDArray[np.float64], prompt: NDArray[np.float64], rate: int,
                 *, max_window_s: float = 4.0, follow_jumps: bool = True) -> SegmentMatch:
    """Best match of (the loudest ``max_window_s`` of) ``recording`` inside ``prompt`` looped.

    With ``follow_jumps`` (the default) the match follows delay jumps within ± a quarter second of
    the best single lag (see the module's doc); without, it is that single lag's correlation.
    """
    if len(prompt) == 0:
        raise ValueError("the prompt is empty")
    level = round(_level(recording), 2)
    win = min(len(recording), len(prompt), int(max_window_s * rate))
    if win < rate // 4:
        return SegmentMatch(0.0, 0.0, level)
    # the window with the most energy: silence matches nothing and would only dilute the score
    csum = np.concatenate([[0.0], np.cumsum(recording * recording)])
    start = int(np.argmax(csum[win:] - csum[:-win]))
    x = recording[start:start + win]
    if not np.any(x):
        return SegmentMatch(0.0, 0.0, -120.0)
    n = len(prompt)
    looped = np.concatenate([prompt, prompt])
    num = signal.fftconvolve(looped, x[::-1], mode="valid")
    sq = np.concatenate([[0.0], np.cumsum(looped * looped)])
    norms = np.sqrt(np.maximum(sq[win:] - sq[:-win], 1e-20)) * float(np.sqrt(np.sum(x * x)))
    scores = num / norms
    best = int(np.argmax(scores))
    single = round(float(scores[best]), 4)
    plain = SegmentMatch(single, round(((best - start) % n) / rate, 3), level, (), round(win / rate, 3),
                         round(start / rate, 3), single)
    if not follow_jumps:
        return plain
    followed = _follow(x, prompt, rate, best)
    if followed is None:
        return plain
    score, first, jumps = followed
    return SegmentMatch(round(score, 4), round(((first - start) % n) / rate, 3), level,
                        tuple((round((start + at) / rate, 3), round(ms, 1)) for at, ms in jumps),
                        round(win / rate, 3), round(start / rate, 3), single)


def _follow(x: NDArray[np.float64], prompt: NDArray[np.float64], rate: int,
            anchor: int) -> tuple[float, int, list[tuple[int, float]]] | None:
    """Score of window ``x`` along the cheapest lag path near ``anchor`` (a lag into the looped prompt).

    Returns ``(score, lag of x[0] into the prompt, [(sample of x, jump ms)])``, or None when the window
    is too short for two blocks.
    """
    win, n = len(x), len(prompt)
    blk, search = max(round(BLOCK_S * rate), 1), round(SEARCH_S * rate)
    nb = win // blk
    if nb < 2:
        return None
    bounds = [b * blk for b in range(nb)] + [win]  # a short tail joins the last block
    # the prompt looped often enough that every lag anchor ± search of every sample exists
    before = math.ceil((search + rate // 10) / n)
    tiled = np.tile(prompt, before + 1 + math.ceil((win + search + rate // 10) / n))
    d0 = anchor % n + before * n
    lags = np.arange(d0 - search, d0 + search + 1, dtype=np.int64)
    # a block's cost at a lag: its speech frames (5 ms, within SPEECH_DB of the loud ones) that the lag
    # does not explain, as delaypath prices them, so the path's switch prices mean the same here
    hop = max(round(FRAME_S * rate), 1)
    nf = win // hop
    fe = 10 * np.log10(np.sum(x[: nf * hop].reshape(nf, hop) ** 2, axis=1) + 1e-20)
    speech = fe >= float(np.percentile(fe, 90)) - SPEECH_DB
    costs = np.empty((len(lags), nb))
    for b in range(nb):
        a, e = bounds[b], bounds[b + 1]
        got, corr = block_corr(tiled, x[a:e], a, d0, search)
        rho = np.zeros(len(lags))
        rho[got - lags[0]] = corr
        evidence = np.clip((rho - MIN_EVIDENCE) / (1.0 - MIN_EVIDENCE), 0.0, 1.0)
        costs[:, b] = np.count_nonzero(speech[a // hop: e // hop]) * (1.0 - evidence)
    # where no lag has evidence, every lag costs the same: keep to the anchor, not the lowest lag
    costs += 1e-6 * np.abs(lags - d0)[:, None] / search
    path = lags[_viterbi(costs, lags.tolist(), rate)]
    # place each change on its sample, within the blocks either side of it; a wobble of the peak by a
    # sample or two (a resampled leg) is followed, but is no jump
    dmap = np.repeat(path, np.diff(bounds))
    jumps: list[tuple[int, float]] = []
    fillers: list[tuple[int, int, int, int]] = []
    lo = 0
    changes = (np.flatnonzero(np.diff(path)) + 1).tolist()
    # placed on level-flattened copies, so a soft onset next to the change counts as much as a loud one
    # (on the waveforms it would be lost in place_change's tolerance for pauses); of the looped prompt,
    # only the stretch the path can reach, with 20 ms to spare for the envelope
    p_lo = int(lags[0]) - hop * 4
    flat_x, flat_p = x, tiled
    if changes:
        flat_x, flat_p = _flatten(x, rate), _flatten(tiled[p_lo:int(lags[-1]) + win + hop * 4], rate)
    for b in changes:
        d1, d2 = int(path[b - 1]), int(path[b])
        a, e = max(bounds[b - 1], lo), bounds[b + 1]
        cut = place_change(flat_p, flat_x, a, e, d1 - p_lo, d2 - p_lo)
        dmap[a:cut], dmap[cut:e] = d1, d2
        lo = cut
        ms = (d1 - d2) * 1000.0 / rate
        if abs(ms) >= MIN_JUMP_MS:
            jumps.append((cut, ms))
        if d2 < d1:
            fillers.append((max(cut - (d1 - d2), a), min(cut + (d1 - d2), e), d1, d2))
    heard = samples_at(tiled, np.arange(win, dtype=np.int64) + dmap, 0)
    for f_lo, f_hi, d1, d2 in fillers:
        # where the jitter buffer grew, the listener heard a filler (silence, or a concealed frame) that
        # neither delay explains: no prompt was played there, so none is expected
        heard[_filler(x, tiled, f_lo, f_hi, d1, d2, hop)] = 0.0
    # energy-weighted (as the recording has it) mean of the blocks' correlations with the prompt heard
    weights, corrs = np.empty(nb), np.empty(nb)
    for b in range(nb):
        xb, yb = x[bounds[b]:bounds[b + 1]], heard[bounds[b]:bounds[b + 1]]
        ex, ey = float(xb @ xb), float(yb @ yb)
        weights[b] = ex
        corrs[b] = float(xb @ yb) / math.sqrt(ex * ey) if ex > 0 and ey > 0 else 0.0
    total = float(np.sum(weights))
    score = float(weights @ corrs) / total if total > 0 else 0.0
    return score, int(dmap[0]), jumps


def _filler(x: NDArray[np.float64], tiled: NDArray[np.float64], lo: int, hi: int, d1: int, d2: int,
            hop: int) -> NDArray[np.int64]:
    """Samples of ``x[lo:hi]`` in 5 ms frames that neither lag ``d1`` nor ``d2`` explains (correlation
    below the evidence floor)."""
    nf = (hi - lo) // hop
    if nf <= 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.arange(lo, lo + nf * hop, dtype=np.int64)
    xs = x[idx].reshape(nf, hop)
    xx = np.sum(xs * xs, axis=1)
    rho = np.zeros(nf)
    for d in (d1, d2):
        ys = samples_at(tiled, idx, d).reshape(nf, hop)
        rho = np.maximum(rho, np.sum(xs * ys, axis=1) / np.sqrt(np.maximum(xx * np.sum(ys * ys, axis=1), 1e-30)))
    return np.asarray(idx.reshape(nf, hop)[rho < MIN_EVIDENCE].ravel(), dtype=np.int64)


@dataclass(frozen=True)
class VoiceInMix:
    """How loud a known voice is inside a recording that may hold other sound (music on hold)."""

    level_dbov: float  #: the voice's own level in the recording (-120: not found)
    score: float  #: normalised correlation of the recording with the voice at its lag, -1..1
    t_stat: float  #: how consistently the blocks of the recording correlate with it at that lag
    mix_level_dbov: float  #: the whole recording's level

    @property
    def found(self) -> bool:
        return voice_found(self.t_stat, self.score)


#: the voice is there when its 0.25 s blocks correlate with the recording at one lag consistently (t: mean
#: over spread x sqrt(blocks) where the voice speaks), or fairly consistently and strongly. Measured on 3 s
#: windows: other speech, prompts, music, tones and noise at 32 placements each reach t 4.0 (score 0.16 there)
#: and score 0.17 at most; the voice 10 dB under music has t >= 4.7 and score >= 0.29 at every placement,
#: and 20 dB under it t 6-8 where it speaks steadily.
VOICE_T_MIN = 6.0
VOICE_T_STRONG = 4.5
VOICE_SCORE_STRONG = 0.22
VOICE_SCORE_MIN = 0.02


def voice_found(t_stat: float, score: float) -> bool:
    return (t_stat >= VOICE_T_MIN and score >= VOICE_SCORE_MIN) or (t_stat >= VOICE_T_STRONG
                                                                     and score >= VOICE_SCORE_STRONG)


def voice_in_mix(recording: NDArray[np.float64], voice: NDArray[np.float64], rate: int) -> VoiceInMix:
    """The level of ``voice`` (played in a loop) inside ``recording``, however much else is in it.

    The voice is aligned at its best lag (the voice looped twice, as :func:`find_in_loop`) and the
    recording is projected on it: the least-squares gain of the aligned voice is the level it has there.
    Whether it is there at all is decided by consistency: a real voice correlates at that one lag in
    every 0.25 s block where it speaks, a chance peak of other speech or music in one stretch only.
    """
    mix = _level(recording)
    if len(voice) == 0 or len(recording) < rate // 2 or not np.any(recording) or not np.any(voice):
        return VoiceInMix(-120.0, 0.0, 0.0, mix)
    n = min(len(recording), len(voice))
    x = recording[:n]
    looped = np.concatenate([voice, voice])
    num = signal.fftconvolve(looped, x[::-1], mode="valid")
    sq = np.concatenate([[0.0], np.cumsum(looped * looped)])
    energy = np.maximum(sq[n:] - sq[:-n], 1e-20)
    best = int(np.argmax(num / np.sqrt(energy)))
    v = looped[best:best + n]
    score = float(num[best] / np.sqrt(energy[best] * max(float(np.dot(x, x)), 1e-20)))
    b = round(BLOCK_S * rate)
    k = n // b
    xb, vb = x[: k * b].reshape(k, b), v[: k * b].reshape(k, b)
    ev = np.einsum("ij,ij->i", vb, vb)
    den = np.sqrt(np.einsum("ij,ij->i", xb, xb) * ev)
    # only where the voice speaks: its pauses correlate with nothing, and would hide a real voice's steadiness
    live = (den > 1e-12) & (ev >= 0.1 * float(np.max(ev)))
    corr = np.einsum("ij,ij->i", xb, vb)[live] / den[live]
    t = float(np.mean(corr) / (np.std(corr, ddof=1) / np.sqrt(len(corr)))) if len(corr) >= 3 and np.std(corr) > 0 \
        else 0.0
    gain = float(num[best] / energy[best])
    found = voice_found(t, score) and gain > 0
    return VoiceInMix(round(_level(gain * v), 2) if found else -120.0, round(score, 4), round(t, 1), mix)
