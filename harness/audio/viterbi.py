"""The cheapest piecewise-constant delay path over candidate delays: a Viterbi search.

For every 5 ms frame and candidate delay, :mod:`harness.audio.delaypath` says how badly that delay
explains the frame (a cost in 0..1); a delay change costs :data:`SWITCH_COST` plus
:data:`SWITCH_COST_PER_MS` per millisecond it moves. :func:`viterbi` finds the path of least total
cost, :func:`no_detours` removes the brief detours a cut in the received leaves.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["SWITCH_COST", "SWITCH_COST_PER_MS", "no_detours", "viterbi"]

Signal = npt.NDArray[np.float64]

SWITCH_COST = 4.0  #: cost of one delay change, in speech frames the delay does not explain at all ...
SWITCH_COST_PER_MS = 0.15  #: ... plus this per millisecond the delay moves


def viterbi(costs: npt.NDArray[np.float64], cands: list[int], rate: int) -> npt.NDArray[np.int64]:
    """Index of the candidate (``cands`` ascending) per frame on the cheapest path, delay changes included.

    A change costs :data:`SWITCH_COST` plus :data:`SWITCH_COST_PER_MS` per millisecond it moves: a
    big jump needs more proof than a 10 ms warp, so a stretch that two delays far apart explain by
    chance (a sustained vowel, a hum) does not send the path on a detour. On a tie the path keeps its
    delay, so silence never moves it.

    The forward pass keeps only the running costs and, per frame and state, whether the state kept
    its delay; where the path switched, the state it came from is recomputed on the way back (rare).
    A run of frames whose costs are the same for every candidate (the reference silent, or no delay
    explaining anything) is one step: after one chance to switch, switching again never pays (the
    price of a change obeys the triangle inequality), so the rest of the run keeps every state.
    """
    k, nf = costs.shape
    # candidates are sorted, so the cheapest way into each state splits into one from below and one
    # from above, each a running minimum: O(k) per frame instead of O(k²)
    pos = np.asarray(cands, dtype=np.float64) * 1000.0 / rate * SWITCH_COST_PER_MS
    flat = np.ptp(costs, axis=0) == 0 if k else np.ones(nf, dtype=bool)
    repeat = np.concatenate([[False], flat[1:] & flat[:-1]])  # a flat frame after a flat frame: no step
    acc = np.zeros(k)
    accs: list[Signal] = []  # the running cost before each frame's step
    stays: list[npt.NDArray[np.bool_] | None] = []  # per frame and state: kept its delay (None: all did)
    cols = list(costs.T)
    for f in range(nf):
        accs.append(acc)
        if repeat[f]:
            stays.append(None)
            acc = acc + cols[f]
            continue
        switched = np.minimum(
            np.minimum.accumulate(acc - pos) + pos, np.minimum.accumulate((acc + pos)[::-1])[::-1] - pos
        )
        switched += SWITCH_COST
        stay = acc <= switched
        stays.append(stay)
        acc = np.where(stay, acc, switched)
        acc += cols[f]
    path = np.empty(nf, dtype=np.int64)
    s = int(np.argmin(acc))
    idx = np.arange(k)
    for f in range(nf - 1, -1, -1):
        path[f] = s
        kept = stays[f]
        if kept is not None and not kept[s]:
            s = _came_from(accs[f], pos, s, idx)
    return path


def _came_from(acc: Signal, pos: Signal, s: int, idx: npt.NDArray[np.int64]) -> int:
    """The state a switch into ``s`` came from, as the forward pass of :func:`_viterbi` chose it: the
    cheapest way in from below (the highest such state on a tie) unless the way from above is cheaper
    (the lowest such state on a tie)."""
    up = acc[: s + 1] - pos[: s + 1]
    up_min = np.minimum.accumulate(up)
    below = int(np.max(np.where(up == up_min, idx[: s + 1], 0)))
    down = acc[s:] + pos[s:]
    down_min = np.minimum.accumulate(down[::-1])[::-1]
    above = s + int(np.min(np.where(down == down_min, idx[: len(down)], len(down))))
    return below if up_min[-1] + pos[s] <= down_min[0] - pos[s] else above


def no_detours(path: npt.NDArray[np.int64], costs: npt.NDArray[np.float64], min_frames: float) -> npt.NDArray[np.int64]:
    """Give a segment shorter than ``min_frames`` between two others the better of its neighbours' delays.

    Where the received lost a stretch of the reference (a frame the jitter buffer dropped), no delay
    explains the samples around the cut and the path may pass through some third delay for a frame or
    two; that is one jump, not three.
    """
    path = path.copy()
    while True:
        starts = np.concatenate([[0], np.flatnonzero(np.diff(path)) + 1, [len(path)]])
        short = [i for i in range(1, len(starts) - 2) if starts[i + 1] - starts[i] < min_frames]
        if not short:
            return path
        i = min(short, key=lambda k: starts[k + 1] - starts[k])
        a, b = int(starts[i]), int(starts[i + 1])
        left, right = int(path[a - 1]), int(path[b])
        path[a:b] = left if costs[left, a:b].sum() <= costs[right, a:b].sum() else right
