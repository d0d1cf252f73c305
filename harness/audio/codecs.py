"""G.711 μ-law and A-law in numpy, bit-exact with the ITU-T G.191 reference (``g711.c``).

The engine needs them twice: the reader decodes μ-law/A-law WAV files, and the clipping detector has
to know the codec's largest output (32124 for μ-law, 32256 for A-law, not 32767), because a signal
clipped by a G.711 leg piles up exactly there. The benchmark uses the same functions to build its
degraded corpus::

    >>> import numpy as np
    >>> int(ulaw_decode(ulaw_encode(np.array([32767])))[0])
    32124
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALAW_MAX",
    "ULAW_MAX",
    "alaw_decode",
    "alaw_encode",
    "g711_roundtrip",
    "ulaw_decode",
    "ulaw_encode",
]

ULAW_MAX = 32124  #: largest magnitude a μ-law decoder outputs (16-bit scale)
ALAW_MAX = 32256  #: largest magnitude an A-law decoder outputs (16-bit scale)


def _bit_length(v: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    out = np.zeros_like(v)
    w = v.copy()
    while np.any(w):
        nz = w > 0
        out[nz] += 1
        w >>= 1
    return out


@cache
def _ulaw_table() -> npt.NDArray[np.uint8]:
    """μ-law code for every 16-bit linear value (index = value + 32768)."""
    x = np.arange(-32768, 32768, dtype=np.int64)
    absno = np.where(x < 0, (~x) >> 2, x >> 2)
    absno = np.minimum(absno, 8158) + 33
    segno = 1 + _bit_length(absno >> 6)
    high = 8 - segno
    low = 0xF - ((absno >> segno) & 0xF)
    code = (high << 4) | low
    code = np.where(x >= 0, code | 0x80, code)
    return code.astype(np.uint8)


@cache
def _alaw_table() -> npt.NDArray[np.uint8]:
    """A-law code for every 16-bit linear value (index = value + 32768)."""
    x = np.arange(-32768, 32768, dtype=np.int64)
    ix = np.where(x < 0, (~x) >> 4, x >> 4)
    iexp = np.where(ix > 15, _bit_length(ix) - 4, 0)
    shifted = np.where(ix > 15, (ix >> np.maximum(iexp - 1, 0)) - 16 + (iexp << 4), ix)
    code = np.where(x >= 0, shifted | 0x80, shifted) ^ 0x55
    return code.astype(np.uint8)


def _to_int16(x: npt.ArrayLike) -> npt.NDArray[np.int64]:
    a = np.asarray(x)
    if np.issubdtype(a.dtype, np.floating):
        a = np.round(a)
    return np.clip(a, -32768, 32767).astype(np.int64)


def ulaw_encode(linear: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Encode 16-bit-scale linear samples (ints or floats in -32768..32767) to μ-law bytes."""
    return _ulaw_table()[_to_int16(linear) + 32768]


def alaw_encode(linear: npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """Encode 16-bit-scale linear samples to A-law bytes."""
    return _alaw_table()[_to_int16(linear) + 32768]


def ulaw_decode(codes: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Decode μ-law bytes to 16-bit-scale linear values (as float64)."""
    c = np.asarray(codes).astype(np.int64) & 0xFF
    sign = np.where(c < 0x80, -1, 1)
    m = (~c) & 0xFF
    exponent = (m >> 4) & 0x7
    mantissa = m & 0xF
    step = 4 << (exponent + 1)
    return (sign * ((0x80 << exponent) + step * mantissa + step // 2 - 4 * 33)).astype(np.float64)


def alaw_decode(codes: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Decode A-law bytes to 16-bit-scale linear values (as float64)."""
    c = np.asarray(codes).astype(np.int64) & 0xFF
    ix = (c ^ 0x55) & 0x7F
    iexp = ix >> 4
    mant = ix & 0xF
    mant = np.where(iexp > 0, mant + 16, mant)
    mant = (mant << 4) + 8
    mant = np.where(iexp > 1, mant << np.maximum(iexp - 1, 0), mant)
    return np.where(c > 127, mant, -mant).astype(np.float64)


def g711_roundtrip(x: npt.ArrayLike, law: str = "ulaw") -> npt.NDArray[np.float64]:
    """Pass float samples in [-1, 1) through a G.711 encoder and decoder, as a PBX leg would."""
    lin = np.asarray(x, dtype=np.float64) * 32768.0
    if law in ("ulaw", "pcmu", "mulaw"):
        return ulaw_decode(ulaw_encode(lin)) / 32768.0
    if law in ("alaw", "pcma"):
        return alaw_decode(alaw_encode(lin)) / 32768.0
    raise ValueError(f"unknown G.711 law {law!r} (expected 'ulaw' or 'alaw')")
