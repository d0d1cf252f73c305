"""WAV reading and writing: every bad input is an AudioInputError that names the file."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from harness.audio.codecs import ulaw_encode
from harness.audio.wavio import read_wav, write_wav
from harness.contracts.errors import AudioInputError


def _wav(
    path: Path,
    payload: bytes,
    tag: int = 1,
    channels: int = 1,
    rate: int = 8000,
    bits: int = 16,
    data_size: int | None = None,
) -> Path:
    block = channels * bits // 8
    size = len(payload) if data_size is None else data_size
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(payload),
        b"WAVE",
        b"fmt ",
        16,
        tag,
        channels,
        rate,
        rate * block,
        block,
        bits,
        b"data",
        size,
    )
    path.write_bytes(header + payload)
    return path


def test_roundtrip_16bit(tmp_path: Path) -> None:
    x = np.sin(np.arange(800) / 5.0) * 0.5
    p = write_wav(tmp_path / "a.wav", x, 8000)
    y, rate = read_wav(p)
    assert rate == 8000
    assert y.dtype == np.float64
    assert np.max(np.abs(y - x)) <= 1 / 32768


def test_write_clips_instead_of_wrapping(tmp_path: Path) -> None:
    y, _ = read_wav(write_wav(tmp_path / "a.wav", np.array([2.0, -2.0]), 8000))
    assert y[0] > 0.99 and y[1] == -1.0


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match=r"nope\.wav: file not found"):
        read_wav(tmp_path / "nope.wav")


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    with pytest.raises(AudioInputError, match=r"empty\.wav: empty file"):
        read_wav(p)


def test_not_a_wav(tmp_path: Path) -> None:
    p = tmp_path / "text.wav"
    p.write_text("hello, this is not audio at all")
    with pytest.raises(AudioInputError, match="not a WAV file"):
        read_wav(p)


def test_header_without_samples(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="no samples"):
        read_wav(_wav(tmp_path / "h.wav", b""))


def test_unsupported_sample_width(tmp_path: Path) -> None:
    with pytest.raises(AudioInputError, match="unsupported"):
        read_wav(_wav(tmp_path / "f.wav", b"\0" * 64, tag=3, bits=16))


def test_stereo_takes_the_channel_asked_for(tmp_path: Path) -> None:
    left = np.full(100, 1000, dtype="<i2")
    right = np.full(100, -2000, dtype="<i2")
    inter = np.stack([left, right], axis=1).reshape(-1).tobytes()
    p = _wav(tmp_path / "s.wav", inter, channels=2)
    assert read_wav(p)[0][0] == pytest.approx(1000 / 32768)
    assert read_wav(p, channel=1)[0][0] == pytest.approx(-2000 / 32768)
    with pytest.raises(AudioInputError, match="channel 2"):
        read_wav(p, channel=2)


def test_ulaw_wav_is_decoded(tmp_path: Path) -> None:
    codes = ulaw_encode(np.full(80, 16000)).tobytes()
    y, _ = read_wav(_wav(tmp_path / "u.wav", codes, tag=7, bits=8))
    assert y[0] == pytest.approx(16000 / 32768, abs=0.02)


def test_recorder_killed_before_closing(tmp_path: Path) -> None:
    """A data chunk size of 0 (never patched) still yields the samples that are there."""
    pcm = np.full(160, 300, dtype="<i2").tobytes()
    y, _ = read_wav(_wav(tmp_path / "k.wav", pcm, data_size=0))
    assert len(y) == 160


def test_24_and_8_bit(tmp_path: Path) -> None:
    v = 1 << 22
    b24 = bytes([v & 0xFF, (v >> 8) & 0xFF, (v >> 16) & 0xFF]) * 10
    assert read_wav(_wav(tmp_path / "a.wav", b24, bits=24))[0][0] == pytest.approx(0.5)
    assert read_wav(_wav(tmp_path / "b.wav", bytes([192]) * 10, bits=8))[0][0] == pytest.approx(0.5)
