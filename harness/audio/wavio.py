"""Reading and writing WAV files for the audio engine.

Recordings come from several writers (pjsua2's recorder, rtpengine pcap exports, sox, people), so the
reader parses the RIFF chunks itself instead of trusting one library: it accepts PCM 8/16/24/32-bit,
IEEE float, G.711 μ-law/A-law and WAVE_FORMAT_EXTENSIBLE, and tolerates the wrong chunk sizes left by
a recorder that was killed before it closed its file. Every failure is an :class:`AudioInputError`
whose message names the file, so the CLI can print it on one line::

    >>> x, rate = read_wav("audio_fixtures/speech/caller.wav")  # doctest: +SKIP
    >>> write_wav("copy.wav", x, rate)                           # doctest: +SKIP
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import numpy.typing as npt

from harness.audio.codecs import alaw_decode, ulaw_decode
from harness.contracts.errors import AudioInputError

__all__ = [ "read_wav", "write_wav"]

_PCM, _FLOAT, _ALAW, _ULAW, _EXTENSIBLE = 0x0001, 0x0003, 0x0006, 0x0007, 0xFFFE


def _chunks(data: bytes) -> dict[bytes, bytes]:
    """Split the RIFF body into chunks; a data chunk whose size overruns the file is cut to what is there."""
    out: dict[bytes, bytes] = {}
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body_start = pos + 8
        if cid == b"data" and (size == 0 or body_start + size > len(data)):
            # A recorder killed mid-call leaves size 0 or 0xFFFFFFFF: take everything that follows.
            size = len(data) - body_start
        out.setdefault(cid, data[body_start : body_start + size])
        pos = body_start + size + (size & 1)
    return out


def read_wav(path: str | Path, channel: int = 0) -> tuple[npt.NDArray[np.float64], int]:
    """Read a WAV file as float64 samples in [-1, 1) and its sample rate.

    Multi-channel files give the one channel asked for (0 = left), because each call direction is
    judged on its own. Raises :class:`AudioInputError` for a missing, non-WAV, empty or unsupported file.
    """
    p = Path(path)
    if not p.exists():
        raise AudioInputError(p, "file not found")
    if not p.is_file():
        raise AudioInputError(p, "not a regular file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise AudioInputError(p, f"cannot read: {exc.strerror or exc}") from exc
    if len(data) == 0:
        raise AudioInputError(p, "empty file (0 bytes)")
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioInputError(p, "not a WAV file (no RIFF/WAVE header)")
    chunks = _chunks(data)
    if b"fmt " not in chunks or len(chunks[b"fmt "]) < 16:
        raise AudioInputError(p, "WAV file has no valid 'fmt ' chunk")
    fmt = chunks[b"fmt "]
    tag, nch, rate, _, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == _EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]  # first two bytes of the sub-format GUID
    if nch < 1:
        raise AudioInputError(p, "WAV file declares 0 channels")
    if rate <= 0:
        raise AudioInputError(p, "WAV file declares sample rate 0")
    if not 0 <= channel < nch:
        raise AudioInputError(p, f"channel {channel} asked for, file has {nch}")
    if b"data" not in chunks:
        raise AudioInputError(p, "WAV file has no 'data' chunk")
    raw = chunks[b"data"]
    width = bits // 8 if bits else 0
    if width == 0 or block_align != width * nch:
        width = block_align // nch if block_align else 0
    if width == 0:
        raise AudioInputError(p, f"unsupported sample width ({bits} bits)")
    n = len(raw) // (width * nch)
    if n == 0:
        raise AudioInputError(p, "WAV file contains no samples")
    raw = raw[: n * width * nch]
    x = _decode(p, raw, tag, width)
    return np.ascontiguousarray(x.reshape(n, nch)[:, channel]), int(rate)


def _decode(p: Path, raw: bytes, tag: int, width: int) -> npt.NDArray[np.float64]:
    if tag == _PCM:
        if width == 1:
            return (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
        if width == 2:
            return np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
        if width == 3:
            b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            v = np.where(v >= 1 << 23, v - (1 << 24), v)
            return v.astype(np.float64) / float(1 << 23)
        if width == 4:
            return np.frombuffer(raw, "<i4").astype(np.float64) / float(1 << 31)
    elif tag == _FLOAT and width in (4, 8):
        x = np.frombuffer(raw, "<f4" if width == 4 else "<f8").astype(np.float64)
        if not np.all(np.isfinite(x)):
            raise AudioInputError(p, "float WAV contains NaN or infinite samples")
        return np.clip(x, -1.0, 1.0 - 2.0**-15)
    elif tag in (_ULAW, _ALAW) and width == 1:
        codes = np.frombuffer(raw, np.uint8)
        return (ulaw_decode(codes) if tag == _ULAW else alaw_decode(codes)) / 32768.0
    raise AudioInputError(p, f"unsupported WAV encoding (format tag {tag:#06x}, {8 * width}-bit samples)")


def write_wav(path: str | Path, samples: npt.ArrayLike, rate: int) -> Path:
    """Write mono 16-bit PCM; samples are floats in [-1, 1) and are clipped and rounded, never wrapped."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    pcm = np.clip(np.round(x * 32768.0), -32768, 32767).astype("<i2").tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + len(pcm),
        b"WAVE",
        b"fmt ",
        16,
        _PCM,
        1,
        rate,
        rate * 2,
        2,
        16,
        b"data",
        len(pcm),
    )
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(header + pcm)
    return p
