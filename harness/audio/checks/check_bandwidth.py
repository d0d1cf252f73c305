"""``bandwidth``: the upper edge of the channel's frequency response, so muffled audio FAILs.

A low-pass in the path (a misconfigured transcoder filter, a bad analogue leg) makes speech muffled
and hard to understand, yet costs little in level, dropouts or even MOS: PESQ itself gives digitally
low-passed speech at 800 Hz 4.1. The channel's response is measured directly: the cross-spectrum of
the reference and the aligned received over the reference's speech frames (32 ms, the MOS model's
short-time spectrum), divided by the reference's power spectrum, in 125 Hz bands. Noise added on the
way does not correlate with the reference and averages out of the cross-spectrum, so a noisy line
does not look wider than it is. The upper edge is where the response, followed up from its passband,
falls ``EDGE_DB`` below the passband level; the lower edge likewise downwards (reported, not judged).
Only bands where the reference itself has content count: the edge is capped at the reference's own.

G.711 passes everything the 8 kHz clip holds (edge ~3.9 kHz); a G.712 channel filter passes up to
3.4 kHz (edge ~3.5 kHz); G.722 analysed at 8 kHz is flat. The default threshold, 3000 Hz, leaves room
for a real channel filter's roll-off and catches a 2500 Hz low-pass.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from harness.audio.checks.base import Context, Metric, r
from harness.audio.spectra import HOP, N_FFT
from harness.contracts.verdict import CheckResult

__all__ = ["EDGE_DB", "METRIC", "channel_edges"]

EDGE_DB = 10.0  #: the edge is where the response falls this far below its passband level
GROUP = 4  #: FFT bins per band (4 x 31.25 Hz = 125 Hz)
CONTENT_DB = 45.0  #: bands where the reference is this far below its strongest band carry no evidence
GUARD_S = 0.06  #: frames this close to a delay change are left out (they mix two alignments)
SPEECH_DB = 30.0  #: reference frames this far below its loud frames are not speech


def channel_edges(
    ref_stft: npt.NDArray[np.complex128], rx_stft: npt.NDArray[np.complex128], frames: npt.NDArray[np.bool_], rate: int
) -> dict[str, float] | None:
    """Upper and lower edge (Hz) of the response of ``rx`` to ``ref`` over ``frames``, and the
    reference's own content edges; None when too few frames or no content."""
    if np.count_nonzero(frames) < 8:
        return None
    x, y = ref_stft[frames], rx_stft[frames]
    nb = (x.shape[1] - 1) // GROUP
    pxx = np.sum(np.abs(x[:, : nb * GROUP]) ** 2, axis=0).reshape(nb, GROUP).sum(axis=1)
    pxy = np.sum(np.conj(x[:, : nb * GROUP]) * y[:, : nb * GROUP], axis=0).reshape(nb, GROUP).sum(axis=1)
    lo_hz = np.arange(nb) * GROUP * rate / N_FFT
    centre = lo_hz + GROUP * rate / N_FFT / 2
    content = 10 * np.log10(pxx + 1e-30)
    has = content >= content.max() - CONTENT_DB
    h_db = 20 * np.log10(np.abs(pxy) / np.maximum(pxx, 1e-30) + 1e-12)
    band = has & (centre >= 300.0) & (centre <= 3400.0)
    if not np.any(band):
        return None
    level = float(np.percentile(h_db[band], 90))  # the passband, whichever part of the band it is
    peak = int(np.flatnonzero(band)[np.argmax(h_db[band])])
    below = h_db < level - EDGE_DB
    top_content = float(lo_hz[np.flatnonzero(has)[-1]] + GROUP * rate / N_FFT)
    low_content = float(lo_hz[np.flatnonzero(has)[0]])

    def edge(step: int) -> float:
        k = peak
        while 0 <= k + step < nb and has[k + step] and not below[k + step]:
            k += step
        if not (0 <= k + step < nb) or not has[k + step]:
            return top_content if step > 0 else low_content  # the response holds as far as the reference goes
        # interpolate where the response crosses the edge, between band k and the first band below it
        a, b = h_db[k] - (level - EDGE_DB), h_db[k + step] - (level - EDGE_DB)
        frac = a / (a - b) if a != b else 0.5
        return float(centre[k] + step * frac * (centre[1] - centre[0]))

    return {
        "upper_hz": edge(+1),
        "lower_hz": edge(-1),
        "reference_upper_hz": top_content,
        "reference_lower_hz": low_content,
        "passband_db": level,
    }


def _frames(ctx: Context) -> npt.NDArray[np.bool_]:
    """STFT frames (of ``ref8``) of reference speech, fully recorded, away from delay changes."""
    n = ctx.ref_spectra.stft.shape[0]
    starts = np.arange(n) * HOP
    ok = ctx.al.valid & ~ctx.unsteady
    # only what was heard: not the dropouts, nor the silence before the received audio starts or after it stops
    t0 = ctx.al.start / ctx.sr
    for d in ctx.a.dropouts:
        ok[max(round((d.start_s - t0) * ctx.sr), 0) : max(round((d.end_s - t0) * ctx.sr), 0)] = False
    heard = (ctx.a.coverage or {}).get("heard_s")
    if heard:
        ok[: max(round((heard[0] - t0) * ctx.sr), 0)] = False
        ok[max(round((heard[1] - t0) * ctx.sr), 0) :] = False
    guard = round(GUARD_S * ctx.sr)
    for k in np.flatnonzero(np.diff(ctx.al.delay_map)) + 1:
        ok[max(int(k) - guard, 0) : int(k) + guard] = False
    csum = np.concatenate([[0], np.cumsum(~ok)])
    ends = np.minimum(starts + N_FFT, len(ok))
    whole = (csum[ends] - csum[np.minimum(starts, len(ok))]) == 0
    e = 10 * np.log10(np.sum(np.abs(ctx.ref_spectra.stft) ** 2, axis=1) + 1e-30)
    return np.asarray(whole & (e >= np.percentile(e, 95) - SPEECH_DB))


def judge(ctx: Context) -> list[CheckResult]:
    t = ctx.t
    edges = channel_edges(ctx.ref_spectra.stft, ctx.rx_spectra.stft, _frames(ctx), ctx.sr)
    if edges is None:
        return [
            CheckResult.error(
                "bandwidth", "too little speech to measure the channel's response", t.min_bandwidth_hz, "Hz"
            )
        ]
    ctx.a.bandwidth = {k: r(v, 1) for k, v in edges.items()}
    up, ref_up = edges["upper_hz"], edges["reference_upper_hz"]
    if ref_up < t.min_bandwidth_hz:
        return [
            CheckResult.error(
                "bandwidth",
                f"not measurable: the reference has no content above {ref_up:.0f} Hz "
                f"(needs {t.min_bandwidth_hz:.0f} Hz)",
                t.min_bandwidth_hz,
                "Hz",
            )
        ]
    detail = (
        f"received speech reaches {up:.0f} Hz ({EDGE_DB:.0f} dB down; the reference reaches {ref_up:.0f} Hz), "
        f"low edge {edges['lower_hz']:.0f} Hz"
    )
    if up < t.min_bandwidth_hz:
        detail = f"band-limited (muffled) audio: {detail}"
    return [CheckResult.compare("bandwidth", r(up, 0), ">=", t.min_bandwidth_hz, "Hz", detail, dict(ctx.a.bandwidth))]


METRIC = Metric(("bandwidth",), judge)
