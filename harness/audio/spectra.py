"""One signal's spectra, each computed once and shared by every metric that needs it.

Several metrics look at the same signal through a filter or a short-time spectrum: dropouts and the
coverage check through the telephone band and four sub-bands (10 ms frames), the MOS model through a
300-3000 Hz listening band and a 32 ms short-time spectrum, the bandwidth check through the same
short-time spectrum. Filtering in the time domain (``sosfiltfilt``) once per band and metric was the
largest cost after alignment; here the whole-signal FFT is taken once and every band is a product
with the filter's zero-phase response (``|H|²``, what a forward-backward pass gives), and the
short-time spectrum is taken once::

    >>> s = Spectra(x, 8000)                      # doctest: +SKIP
    >>> s.band(300.0, 3400.0)                     # doctest: +SKIP
    >>> s.stft.shape                              # doctest: +SKIP
"""

from __future__ import annotations

from functools import cache, cached_property

import numpy as np
import numpy.typing as npt
from scipy.fft import irfft, next_fast_len, rfft
from scipy.signal import butter, sosfreqz

__all__ = ["HOP", "N_FFT", "Spectra", "stft"]

Signal = npt.NDArray[np.float64]

N_FFT = 256  #: short-time spectrum: 32 ms Hann frames at 8 kHz ...
HOP = 128  #: ... starting 16 ms apart
PAD_S = 0.1  #: zeros after the signal, so a band filter's response does not wrap around


@cache
def _zero_phase(lo: float, hi: float, rate: int, nfft: int, order: int) -> npt.NDArray[np.float64]:
    """``|H(f)|²`` of an ``order`` Butterworth band-pass on the bins of an ``nfft``-point rfft."""
    hi = min(hi, 0.45 * rate)
    if lo <= 0:
        sos = butter(order, hi, btype="lowpass", fs=rate, output="sos")
    else:
        sos = butter(order, [lo, hi], btype="bandpass", fs=rate, output="sos")
    _, h = sosfreqz(sos, worN=np.fft.rfftfreq(nfft, 1.0 / rate), fs=rate)
    return np.asarray(np.abs(h) ** 2, dtype=np.float64)


@cache
def _window() -> npt.NDArray[np.float64]:
    return np.asarray(np.hanning(N_FFT + 2)[1:-1], dtype=np.float64)


def stft(x: Signal) -> npt.NDArray[np.complex128]:
    """Frames x bins complex spectrum: :data:`N_FFT`-point Hann frames every :data:`HOP` samples,
    the last frame zero-padded (at least one frame)."""
    n = 1 + max(len(x) - N_FFT, 0) // HOP
    x = np.pad(x, (0, max(N_FFT + (n - 1) * HOP - len(x), 0)))
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    return np.asarray(rfft(x[idx] * _window(), axis=1))


class Spectra:
    """The spectra of one signal ``x`` at ``rate``, computed on first use."""

    def __init__(self, x: Signal, rate: int) -> None:
        self.x = np.asarray(x, dtype=np.float64)
        self.rate = rate
        self._bands: dict[tuple[float, float, int], Signal] = {}

    @cached_property
    def _nfft(self) -> int:
        return next_fast_len(len(self.x) + round(PAD_S * self.rate), real=True)

    @cached_property
    def fft(self) -> npt.NDArray[np.complex128]:
        """The whole signal's rfft, zero-padded by :data:`PAD_S`."""
        return np.asarray(rfft(self.x, self._nfft))

    def band(self, lo: float, hi: float, order: int = 4) -> Signal:
        """``x`` through a zero-phase Butterworth band-pass (``lo`` <= 0: low-pass), as ``sosfiltfilt``
        (kept: asking for the same band again costs nothing)."""
        if len(self.x) <= 30:
            return self.x
        key = (lo, hi, order)
        if key not in self._bands:
            h2 = _zero_phase(lo, hi, self.rate, self._nfft, order)
            self._bands[key] = np.asarray(irfft(self.fft * h2, self._nfft)[: len(self.x)], dtype=np.float64)
        return self._bands[key]

    def band_power(self, lo: float, hi: float, order: int = 4) -> float:
        """Mean square of :meth:`band` (by Parseval, without going back to the time domain)."""
        if len(self.x) == 0:
            return 0.0
        h2 = _zero_phase(lo, hi, self.rate, self._nfft, order)
        p = np.abs(self.fft) ** 2 * h2**2
        # an rfft holds the positive frequencies once: every bin but DC (and Nyquist) counts twice
        total = 2.0 * float(np.sum(p)) - float(p[0]) - (float(p[-1]) if self._nfft % 2 == 0 else 0.0)
        return total / self._nfft / len(self.x)

    @cached_property
    def stft(self) -> npt.NDArray[np.complex128]:
        """:func:`stft` of ``x`` (only at 8 kHz is it the MOS model's spectrum)."""
        return stft(self.x)

    @cached_property
    def power(self) -> npt.NDArray[np.float64]:
        """Frames x bins power of :attr:`stft`, scaled so the bins of a frame sum to its mean square."""
        spec = np.abs(self.stft) ** 2
        spec[:, 1:-1] *= 2.0
        spec /= N_FFT * float(np.sum(_window() ** 2))
        return np.asarray(spec)
