"""The MOS ceiling of a reference clip: what it scores through the negotiated codec and nothing else.

A perceptual MOS depends on the clip: on clean lab calls (G.711 μ-law, loopback) ``agent.wav`` scores
3.94-3.99 and ``caller.wav`` 4.05-4.22, because μ-law's quantisation noise sits differently under
different voices and levels. One absolute threshold therefore means something else for each clip.
The ceiling is the clip through the codec alone (:mod:`harness.audio.codecs`), scored by the same
model; the analysis reports the drop below it, which means the same for every clip.

It is computed once per clip window and codec and kept in memory (keyed by the samples' SHA-1, the
codec and the model's constants); with ``HARNESS_AUDIO_CACHE=DIR`` in the environment it is also kept
on disk, one small JSON file per key::

    >>> mos_ceiling(reference, "PCMU").mos          # doctest: +SKIP
    4.15
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from harness.audio.codecs import g711_roundtrip
from harness.audio.mos import DEFAULT_PARAMS, MODEL_RATE, perceptual_mos
from harness.contracts.settings import Settings

__all__ = ["Ceiling", "codec_law", "mos_ceiling"]

Signal = npt.NDArray[np.float64]

_MAX_ENTRIES = 256
_MEMORY: OrderedDict[str, Ceiling] = OrderedDict()

#: codec names (SDP encoding names and aliases, lower case) -> the G.711 law that codes them here
_LAWS = {
    "pcmu": "ulaw",
    "ulaw": "ulaw",
    "g711u": "ulaw",
    "mulaw": "ulaw",
    "pcma": "alaw",
    "alaw": "alaw",
    "g711a": "alaw",
}


@dataclass(frozen=True)
class Ceiling:
    """The clip's MOS through ``coded_with``; ``codec`` is what the caller named."""

    mos: float
    codec: str
    coded_with: str  #: "pcmu" or "pcma"; "pcmu" stands in for a codec with no coder here
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def codec_law(codec: str) -> tuple[str, str]:
    """``(law, note)``: the G.711 law that codes ``codec`` here, and a note when it only stands in."""
    key = codec.strip().lower()
    if key.endswith("-noplc"):
        key = key[: -len("-noplc")]
    if key in _LAWS:
        return _LAWS[key], ""
    return "ulaw", f"no {codec} coder here: the ceiling is the clip through G.711 μ-law"


def _key(reference: Signal, law: str) -> str:
    h = hashlib.sha1(np.ascontiguousarray(reference, dtype=np.float64).tobytes())
    h.update(f"{law}/{len(reference)}/{DEFAULT_PARAMS!r}".encode())
    return h.hexdigest()


def mos_ceiling(reference: Signal, codec: str = "PCMU", cache_dir: str | Path | None = None) -> Ceiling:
    """The perceptual MOS of ``reference`` (8 kHz) through ``codec`` alone, cached.

    ``cache_dir`` (default: ``$HARNESS_AUDIO_CACHE``, none when unset) keeps results across processes.
    """
    law, note = codec_law(codec)
    key = _key(reference, law)
    hit = _MEMORY.get(key)
    if hit is None:
        folder = cache_dir if cache_dir is not None else Settings.load().audio_cache
        path = Path(folder) / f"mos-ceiling-{key}.json" if folder else None
        mos = _read(path)
        if mos is None:
            mos = float(perceptual_mos(reference, g711_roundtrip(reference, law), MODEL_RATE).mos)
            _write(path, mos)
        hit = Ceiling(round(mos, 3), "", "pcmu" if law == "ulaw" else "pcma", note)
        _MEMORY[key] = hit
        while len(_MEMORY) > _MAX_ENTRIES:
            _MEMORY.popitem(last=False)
    else:
        _MEMORY.move_to_end(key)
    return Ceiling(hit.mos, codec.strip().lower(), hit.coded_with, note)


def _read(path: Path | None) -> float | None:
    if path is None or not path.is_file():
        return None
    try:
        return float(json.loads(path.read_text())["mos"])
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged cache entry is recomputed


def _write(path: Path | None, mos: float) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"mos": mos}))
        tmp.replace(path)
    except OSError:
        pass  # the cache is an optimisation: a read-only or full disk only costs the recomputation
