"""G.711 codecs: bit-exact peaks and round trips."""

from __future__ import annotations

import numpy as np

from harness.audio.codecs import (
    ALAW_MAX,
    ULAW_MAX,
    alaw_decode,
    alaw_encode,
    g711_roundtrip,
    ulaw_decode,
    ulaw_encode,
)


def test_peaks_are_the_g711_maxima() -> None:
    assert ulaw_decode(ulaw_encode(np.array([32767, -32768]))).tolist() == [ULAW_MAX, -ULAW_MAX]
    assert alaw_decode(alaw_encode(np.array([32767, -32768]))).tolist() == [ALAW_MAX, -ALAW_MAX]


def test_silence_codes() -> None:
    assert int(ulaw_encode(np.array([0]))[0]) == 0xFF
    assert int(alaw_encode(np.array([0]))[0]) == 0xD5


def test_every_code_round_trips() -> None:
    codes = np.arange(256)
    assert np.array_equal(alaw_encode(alaw_decode(codes)), codes)
    u = ulaw_encode(ulaw_decode(codes))
    assert np.array_equal(u[codes != 0x7F], codes[codes != 0x7F])  # 0x7F and 0xFF are both zero


def test_quantisation_snr_of_speech_level_signal() -> None:
    x = 0.05 * np.sin(2 * np.pi * 440 * np.arange(8000) / 8000)
    for law in ("ulaw", "alaw"):
        y = g711_roundtrip(x, law)
        snr = 10 * np.log10(np.sum(x**2) / np.sum((y - x) ** 2))
        assert 33 < snr < 45
