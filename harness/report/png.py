"""A minimal PNG encoder (palette images) with zlib, so spectrograms need no imaging library.

A spectrogram is a matrix of 8-bit indices into a 256-colour palette: a palette PNG keeps it small
(one byte per pixel before deflate) and the report self-contained as a ``data:`` URI::

    png = encode_palette(indices, palette)   # indices: uint8 (height, width); palette: 256 x RGB
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np
import numpy.typing as npt

__all__ = ["data_uri", "encode_palette", "palette"]

#: Anchor colours of the spectrogram palette (dark blue -> purple -> orange -> light yellow, like "magma"):
#: perceptually ordered, readable in greyscale prints, and quiet for silence.
_ANCHORS = ((0.0, (12, 8, 38)), (0.25, (80, 18, 123)), (0.5, (182, 54, 121)), (0.75, (251, 136, 97)),
            (1.0, (252, 253, 191)))


def palette() -> npt.NDArray[np.uint8]:
    """256 RGB entries interpolated between the anchors."""
    x = np.linspace(0.0, 1.0, 256)
    pos = [a[0] for a in _ANCHORS]
    return np.stack([np.interp(x, pos, [a[1][ch] for a in _ANCHORS]) for ch in range(3)], axis=1).astype(np.uint8)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_palette(indices: npt.NDArray[np.uint8], colours: npt.NDArray[np.uint8]) -> bytes:
    """PNG bytes of an 8-bit palette image; ``indices`` is (height, width), ``colours`` (n <= 256, 3)."""
    if indices.ndim != 2 or indices.dtype != np.uint8:
        raise ValueError("indices must be a 2-D uint8 array")
    if colours.ndim != 2 or colours.shape[1] != 3 or not 1 <= colours.shape[0] <= 256:
        raise ValueError("palette must be (n <= 256, 3)")
    h, w = indices.shape
    rows = np.zeros((h, w + 1), dtype=np.uint8)  # filter byte 0 (None) before every row
    rows[:, 1:] = indices
    head = struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", head) + _chunk(b"PLTE", colours.astype(np.uint8).tobytes())
            + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _chunk(b"IEND", b""))


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
