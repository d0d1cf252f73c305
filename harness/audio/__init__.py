"""Audio quality engine: pure numpy/scipy functions that judge what a call sounded like.

Analyse one call direction against the reference that was played::

    from harness.audio import Thresholds, analyze_files

    a = analyze_files("agent_heard.wav", "audio_fixtures/speech/caller.wav", direction="caller->agent")
    a.verdict            # Verdict.PASS / FAIL / ERROR (worst of a.checks)
    a.to_dict()["mos"]   # every metric, JSON-safe
    for c in a.checks:   # stable names: harness.audio.CHECK_NAMES
        print(c.name, c.verdict.value, c.value, c.detail)

The gate (``audio_present``, ``reference_match``) runs first; when it fails the other metrics are not
measured and are listed in ``a.skipped`` with the reason. Every judgement states how much of the
reference it judged (``a.coverage``); pass ``start_offset_s`` (recording start minus playback start),
``expected_s`` (the planned recording length) and ``codec`` when known (see ``analyze``). Thresholds
come from ``Thresholds.from_mapping({...})``; the defaults and their sources are in
``docs/thresholds.md``. ``emodel()`` gives the ITU-T G.107 R-factor from RTP statistics.
The metrics are plug-ins, one module each, registered in :mod:`harness.audio.checks`; the
measurements they use: align (delaypath, blockcorr, viterbi), level, gate, dropouts, noise, clipping,
echo, spectra, mos, ceiling, emodel, codecs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.audio.analysis import CHECK_NAMES, Analysis, RtpStats, analyze, analyze_files
    from harness.audio.emodel import EModelResult, emodel
    from harness.audio.wavio import read_wav, write_wav
    from harness.contracts.errors import AudioInputError
    from harness.contracts.thresholds import Thresholds

# The names load on first use (PEP 562): scipy takes most of a second to import, and the CLI, the
# scenario loader and the thresholds need none of it until a recording is actually analysed.
_HOMES = {"CHECK_NAMES": "analysis", "Analysis": "analysis", "RtpStats": "analysis", "analyze": "analysis",
          "analyze_files": "analysis", "EModelResult": "emodel", "emodel": "emodel", "Thresholds": "analysis",
          "AudioInputError": "wavio", "read_wav": "wavio", "write_wav": "wavio"}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'harness.audio' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"harness.audio.{_HOMES[name]}"), name)
    globals()[name] = value
    return value

__all__ = [
    "CHECK_NAMES",
    "Analysis",
    "AudioInputError",
    "EModelResult",
    "RtpStats",
    "Thresholds",
    "analyze",
    "analyze_files",
    "emodel",
    "read_wav",
    "write_wav",
]
