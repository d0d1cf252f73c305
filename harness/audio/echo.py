"""Echo: the listener's own sent signal coming back in what it receives, with its delay and level.

The received signal is the far end's speech plus whatever leaked back of what the listener said.
First the far end's speech is subtracted (:func:`far_end`: the reference where the delay map puts
it, through a short channel fit per stretch of one delay); what remains is echo plus noise, plus
whatever the subtraction got wrong. That last part made the old estimate fail on busy calls: around a
jitter buffer's delay jumps and 10 ms time-warps, and everywhere on a 16 kHz recording with an odd
delay, the residual held loud far-end speech, which the estimate took for an echo 30 dB down (a false
FAIL) or for noise that would hide one (an ERROR). So only residual samples that hold no far-end
speech count:

- nothing within 60 ms of a delay change (:func:`steady`);
- nothing where the residual still correlates with the far end's speech (:func:`clean`): a stretch
  misaligned, a concealed packet, a level change; an echo of the listener does not correlate with it.

That keeps all of the single talk (the far end silent: the residual is echo and noise only) and the
double talk where the far end's speech cancelled cleanly. The echo path is then estimated by
regularised deconvolution of the kept residual by the sent signal, h = IFFT(R·S* / (|S|² + λ)), in the
speech band. Keeping only some samples scales the estimate at each lag by how much of the sent signal
they hold there; that share is computed exactly (``u`` below) and divided out, so a real echo is a
peak of the echo gain: its height gives the echo return loss and its lag the delay. Measured on this
project's corpus: delay exact, level within ±0.3 dB.

A peak counts only when it stands 15 dB above the estimate's own noise and its least-squares level
agrees; otherwise the result says how loud an echo could have hidden in that noise at any delay
searched (``bound_db``), so "no echo" is always "no echo louder than X". With no single talk (the far
end never pauses while the listener talks) on a noisy line the bound stays low: the check then says
so instead of passing.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.fft import irfft, next_fast_len, rfft
from scipy.ndimage import binary_dilation

__all__ = [
    "FAR_SILENT_DB",
    "EchoResult",
    "clean",
    "estimate_echo",
    "far_end",
    "remove_reference",
    "single_talk_seconds",
    "steady",
]

Signal = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

MAX_ECHO_S = 1.0  #: echo paths are searched from 0 to this delay
WINDOW_S = 0.002  #: echo energy is summed over this window (hybrid and codec dispersion)
DETECT_DB = 15.0
CONSISTENT_DB = 6.0  #: a detected echo may measure at most this much quieter than the detection limit at its lag
MAX_BOUND_DB = 100.0  #: a residual of exact zeros would otherwise claim an infinite bound
JUMP_GUARD_S = 0.06  #: received this close to a delay change is left out (the map is least sure there)
FIT_S = 0.001  #: the far end's channel is fitted as an FIR reaching this far either side
POWER_WINDOW_S = 0.02  #: far-end leftovers are looked for in frames this long
FAR_SILENT_DB = 40.0  #: a far-end frame this far below its loud frames is silence
MAX_LEFTOVER_CORR = 0.3  #: a residual frame correlating more with the far end's speech holds a leftover
ACTIVE_DB = 40.0  #: sent frames this far below its loud frames do not count as the listener talking


@dataclass(frozen=True)
class EchoResult:
    """``loss_db`` is the echo return loss (sent level minus echo level); NaN when no echo was found."""

    detected: bool
    delay_ms: float | None
    loss_db: float
    bound_db: float  #: an echo with less loss than this would have been detected
    single_talk_s: float | None = None  #: seconds the listener talked while the far end was silent

    def to_dict(self) -> dict[str, object]:
        return {
            "detected": self.detected,
            "delay_ms": None if self.delay_ms is None else round(self.delay_ms, 2),
            "loss_db": None if math.isnan(self.loss_db) else round(self.loss_db, 2),
            "bound_db": None if math.isnan(self.bound_db) else round(self.bound_db, 2),
            "single_talk_s": None if self.single_talk_s is None else round(self.single_talk_s, 2),
        }


def remove_reference(received: Signal, reference: Signal, delay_map: npt.NDArray[np.int64], gain: float) -> Signal:
    """``received`` minus the gain-matched reference placed where the delay map says it was heard."""
    res = received.copy()
    j = np.arange(len(reference)) + delay_map
    ok = (j >= 0) & (j < len(received))
    np.subtract.at(res, j[ok], gain * reference[ok])
    return res


def steady(n_received: int, delay_map: npt.NDArray[np.int64], rate: int, start: int = 0) -> Mask:
    """Received samples away from every delay change (per received sample).

    ``delay_map`` is the alignment's delay per reference sample, the first of which is reference
    sample ``start``. Each change blanks :data:`JUMP_GUARD_S` on either side of the received stretch
    it touches: a jitter buffer's filler, a dropped frame, a warp.
    """
    ok = np.ones(n_received, dtype=bool)
    jg = round(JUMP_GUARD_S * rate)
    for k in np.flatnonzero(np.diff(delay_map)) + 1:
        at = start + int(k)
        before, after = at - 1 + int(delay_map[k - 1]), at + int(delay_map[k])
        ok[max(min(before, after) - jg, 0) : max(max(before, after) + jg, 0)] = False
    return ok


def far_end(
    received: Signal,
    reference: Signal,
    delay_map: npt.NDArray[np.int64],
    rate: int,
    start: int = 0,
    unfit: Mask | None = None,
) -> Signal:
    """The far end's speech as heard: the reference, through the channel, where the delay map puts it.

    ``delay_map`` holds the delay per reference sample, the first of which is reference sample
    ``start``. Each stretch of one delay gets its own short least-squares FIR (±1 ms): the gain, the
    channel's colouring and, above all, the fraction of a sample the whole-sample delay map cannot
    hold. A 16 kHz recording resampled to 8 kHz is half a sample off for every odd delay, and half a
    sample leaves -10 dB of the far end's speech at 3 kHz in the residual, enough to hide any echo.
    The echo of the listener, independent of the reference, does not bias the fit. Reference samples
    marked ``unfit`` (a jitter buffer's filler, a discarded frame: not heard as mapped) are placed but
    not fitted on.
    """
    out = np.zeros(len(received))
    taps = max(round(FIT_S * rate), 1)
    padded = np.pad(reference, (taps, taps))
    changes = np.flatnonzero(np.diff(delay_map)) + 1
    for a, b in itertools.pairwise([0, *changes.tolist(), len(delay_map)]):
        d = int(delay_map[a])
        # the reference samples of this stretch whose received sample exists (j = start + n + d)
        lo, hi = max(a, -start - d), min(b, len(received) - start - d)
        if hi <= lo:
            continue
        j0 = start + lo + d
        # rows: the reference k samples away (k = -taps..taps) for every sample of the stretch
        x = np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(padded[lo : hi + 2 * taps], hi - lo))
        xf = x if unfit is None else x * (~unfit[lo:hi])  # samples not to fit on weigh nothing
        xx = xf @ x.T
        lam = 1e-6 * float(np.trace(xx)) / len(xx) + 1e-12
        h = np.linalg.solve(xx + lam * np.eye(len(xx)), xf @ received[j0 : j0 + hi - lo])
        out[j0 : j0 + hi - lo] += h @ x
    return out


def clean(residual: Signal, far: Signal, rate: int) -> Mask:
    """Received samples whose residual holds none of the far end's speech (20 ms frames).

    A frame is clean where the far end is silent (its placed reference 40 dB below its loud frames),
    or where the residual does not correlate with the far end's speech (|r| < 0.3): a stretch the
    alignment got wrong leaves a shifted copy of that speech, a concealed packet a repeated one, a
    level change a scaled one, and each correlates with it; an echo of the listener does not.
    """
    f = max(round(POWER_WINDOW_S * rate), 1)
    n = len(residual) // f
    mask = np.ones(len(residual), dtype=bool)
    if n == 0:
        return mask
    r, x = residual[: n * f].reshape(n, f), far[: n * f].reshape(n, f)
    px = np.sum(x * x, axis=1)
    loud = float(np.percentile(px, 95))
    rr = np.sum(r * r, axis=1)
    corr = np.abs(np.sum(r * x, axis=1)) / np.sqrt(np.maximum(rr * px, 1e-30))
    leftover = (px >= loud * 10 ** (-FAR_SILENT_DB / 10)) & (corr >= MAX_LEFTOVER_CORR)
    # and the frames either side: a leftover rarely starts and ends on a frame boundary
    leftover = binary_dilation(leftover, structure=np.ones(3, dtype=bool))
    mask[: n * f] = np.repeat(~leftover, f)
    return mask


def single_talk_seconds(
    sent: Signal, far_silent: Mask, delay_map: npt.NDArray[np.int64], usable: Mask, rate: int, start: int = 0
) -> float:
    """Seconds (10 ms frames) in which the listener talks while the far end is silent, away from jumps.

    ``far_silent`` marks the reference's silences (per reference sample); the delay map (first entry:
    reference sample ``start``) places its speech on the received timeline. The listener talks where
    its frame is within 40 dB of its loud frames.
    """
    far = np.zeros(len(usable), dtype=bool)
    j = start + np.arange(len(delay_map)) + delay_map
    on = ~far_silent[: len(j)] & (j >= 0) & (j < len(usable))
    far[j[on]] = True
    f = max(round(0.01 * rate), 1)
    n = min(len(sent), len(usable)) // f
    if n == 0:
        return 0.0
    e = 10 * np.log10(np.mean(sent[: n * f].reshape(n, f) ** 2, axis=1) + 1e-20)
    talk = e >= float(np.percentile(e, 95)) - ACTIVE_DB
    quiet = np.mean((~far[: n * f] & usable[: n * f]).reshape(n, f), axis=1) > 0.5
    return float(np.count_nonzero(talk & quiet)) * f / rate


def estimate_echo(
    residual: Signal,
    sent: Signal,
    rate: int,
    band: tuple[float, float] = (300.0, 3400.0),
    weights: Signal | None = None,
    single_talk_s: float | None = None,
) -> EchoResult:
    """Echo of ``sent`` in ``residual`` (both on the listener's clock, starting together).

    ``weights`` (per residual sample, >= 0; see :func:`echo_weights`) say how much each sample counts;
    without them every sample counts alike. ``single_talk_s`` is passed through to the result.
    """
    max_lag = min(round(MAX_ECHO_S * rate), len(residual) - 1)
    if max_lag < 1 or not np.any(sent) or len(residual) < 2:
        return EchoResult(False, None, float("nan"), float("nan"), single_talk_s)
    m = np.ones(len(residual)) if weights is None else np.asarray(weights[: len(residual)], dtype=np.float64)
    m = np.pad(m, (0, len(residual) - len(m)))
    n = next_fast_len(len(residual) + len(sent))
    S = rfft(sent, n)
    R = rfft(residual * m, n)
    M = rfft(m, n)
    f = np.fft.rfftfreq(n, 1.0 / rate)
    inband = (f >= band[0]) & (f <= min(band[1], 0.48 * rate))
    ps = np.abs(S) ** 2
    # strong regularisation (λ = mean in-band power): weak sent frequencies would otherwise amplify
    # the residual's noise; the peak stays sharp enough for the delay, and the level comes from LS
    lam = float(np.mean(ps[inband])) if np.any(inband) else 1.0
    Wf = np.where(inband, S / (ps + lam), 0.0)  # the whitening filter, w = IFFT(Wf)
    w = irfft(Wf, n)
    s_b = irfft(np.where(inband, S, 0.0), n)  # the sent signal in the band
    s = np.pad(sent, (0, n - len(sent)))

    def lagged(x: Signal) -> Signal:
        """Σ_n m[n]·x[n - τ] for τ = 0..max_lag: how much of x the weights keep at each lag."""
        return irfft(M * np.conj(rfft(x, n)), n)[: max_lag + 1]

    h = irfft(R * np.conj(Wf), n)[: max_lag + 1]  # Σ m·r·w(· - τ)
    u = lagged(s_b * w)  # what an echo of gain 1 at lag τ puts into h(τ)
    # the variance of h(τ) per unit of weighted noise power: with m the inverse of the local power,
    # Σ m²·power·w² = Σ m·w²
    v = np.maximum(lagged(w * w), 1e-30)
    win = max(round(WINDOW_S * rate), 1)
    kernel = np.ones(win)
    v_win = np.maximum(np.convolve(v, kernel, mode="same"), 1e-30)
    energy = np.convolve(h**2, kernel, mode="same") / v_win  # the noise's share is the same at every lag
    noise = float(np.median(energy)) + 1e-30  # robust: an echo occupies few windows
    # the shape of the unit response (unweighted): how much of an echo's energy a window holds
    unit = irfft(np.where(inband, ps / (ps + lam), 0.0), n)
    shape = np.concatenate([unit[-(win // 2) :], unit[: win // 2 + 1]]) / max(float(unit[0]), 1e-30)
    shape_energy = float(np.sum(shape**2))
    # the loss an echo must have to hide, lag by lag: the bound holds for every lag searched
    g2_min = noise * 10 ** (DETECT_DB / 10) * v_win / (np.maximum(np.abs(u), 1e-30) ** 2 * shape_energy)
    bound_db = float(np.clip(np.min(-10.0 * np.log10(g2_min)), -MAX_BOUND_DB, MAX_BOUND_DB))
    k = int(np.argmax(energy))
    if energy[k] < noise * 10 ** (DETECT_DB / 10):
        return EchoResult(False, None, float("nan"), bound_db, single_talk_s)
    lo, hi = max(k - win, 0), min(k + win + 1, len(h))
    tap = lo + int(np.argmax(np.abs(h[lo:hi]) / np.sqrt(v[lo:hi])))
    # the level by weighted least squares at the echo's lag, in the band: unbiased by the
    # regularisation, which shrinks h where the sent spectrum is weak, and by the weights
    cross = float(irfft(np.where(inband, R * np.conj(S), 0.0), n)[tap])  # Σ m·r·s_b(· - τ)
    auto = float(lagged(s * s_b)[tap])  # Σ m·s·s_b(· - τ)
    gain = abs(cross / auto) if auto > 0 else 0.0
    loss_db = -20.0 * math.log10(gain) if gain > 0 else float("inf")
    # an echo that stands out is at least about as loud as the quietest one that could: a peak whose
    # level says otherwise is some other structure (a leftover strong where the sent signal is weak)
    if loss_db > -10.0 * math.log10(float(g2_min[tap])) + CONSISTENT_DB:
        return EchoResult(False, None, float("nan"), bound_db, single_talk_s)
    return EchoResult(True, tap * 1000.0 / rate, loss_db, bound_db, single_talk_s)
