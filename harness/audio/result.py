"""What :func:`harness.audio.analyze` returns: :class:`Analysis`, and the :class:`RtpStats` it takes.

Both are re-exported by :mod:`harness.audio.analysis` and :mod:`harness.audio`; import them from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.audio.clipping import ClippingResult
from harness.audio.dropouts import Dropout
from harness.audio.echo import EchoResult
from harness.audio.emodel import EModelResult
from harness.audio.mos import MosResult
from harness.contracts.rtp_stats import RtpStats
from harness.contracts.verdict import CheckResult, Verdict, worst

__all__ = ["Analysis", "RtpStats", "json_safe"]



@dataclass
class Analysis:
    """Every metric of one direction, and the checks judged from them. NaN/None: not measured."""

    direction: str = ""
    rate: int = 0
    duration_s: float = 0.0
    no_audio: bool = False
    one_way: bool | None = None  #: received silent (or only steady noise) while the listener sends audio
    wrong_audio: bool | None = None
    modulation_db: float | None = None  #: received level spread (speech-likeness; see harness.audio.gate)
    reference_match: float | None = None  #: max(waveform, envelope correlation)
    waveform_corr: float | None = None
    envelope_corr: float | None = None
    #: the stretch of the reference judged, ``(start_s, end_s)``, when the recording holds less than
    #: all of it (it ended early, or started late); None when the whole reference was heard
    overlap_s: tuple[float, float] | None = None
    #: how much of the reference was judged (seconds, share of its active speech) and, when not all
    #: of it, why not; see :mod:`harness.audio.checks.check_coverage`
    coverage: dict[str, Any] | None = None
    delay_ms: float | None = None  #: one-way delay: the recording's lag plus ``start_offset_s``
    recording_lag_ms: float | None = None  #: where the reference starts in the recording (GCC-PHAT)
    start_offset_s: float | None = None  #: as passed: recording start minus playback start
    delay_variation_ms: float | None = None
    delay_track: list[dict[str, float | bool]] = field(default_factory=list)
    delay_jumps: list[dict[str, float]] = field(default_factory=list)
    level_dbov: float | None = None  #: received P.56 active speech level
    activity: float | None = None
    reference_level_dbov: float | None = None
    gain_db: float | None = None
    level_stability_db: float | None = None
    noise_floor_dbov: float | None = None
    noise_snr_db: float | None = None
    dropouts: list[Dropout] = field(default_factory=list)
    clipping: ClippingResult | None = None
    echo: EchoResult | None = None
    bandwidth: dict[str, Any] | None = None  #: upper/lower edge of the channel's response, Hz
    mos: float | None = None
    mos_detail: MosResult | None = None
    mos_ceiling: float | None = None  #: the reference clip's MOS through the codec alone
    mos_drop: float | None = None  #: ``mos_ceiling - mos``
    codec: str = ""  #: the codec the ceiling was computed for
    emodel: EModelResult | None = None
    checks: list[CheckResult] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  #: check name -> why it was not judged

    @property
    def verdict(self) -> Verdict:
        """Worst verdict of all checks (ERROR > FAIL > PASS); no checks at all is ERROR."""
        return worst([c.verdict for c in self.checks])

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASS

    def check(self, name: str) -> CheckResult | None:
        """The check called ``name``, or None when it was not judged."""
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict: NaN becomes None, dataclasses become dicts."""
        return json_safe(
            {
                "direction": self.direction,
                "verdict": self.verdict.value,
                "rate": self.rate,
                "duration_s": self.duration_s,
                "no_audio": self.no_audio,
                "one_way": self.one_way,
                "wrong_audio": self.wrong_audio,
                "modulation_db": self.modulation_db,
                "reference_match": self.reference_match,
                "waveform_corr": self.waveform_corr,
                "envelope_corr": self.envelope_corr,
                "mos": self.mos,
                "mos_ceiling": self.mos_ceiling,
                "mos_drop": self.mos_drop,
                "codec": self.codec,
                "mos_detail": None
                if self.mos_detail is None
                else {
                    "raw": self.mos_detail.raw,
                    "d_sym": self.mos_detail.d_sym,
                    "d_asym": self.mos_detail.d_asym,
                },
                "overlap_s": None if self.overlap_s is None else list(self.overlap_s),
                "coverage": self.coverage,
                "delay_ms": self.delay_ms,
                "recording_lag_ms": self.recording_lag_ms,
                "start_offset_s": self.start_offset_s,
                "delay_variation_ms": self.delay_variation_ms,
                "delay_track": self.delay_track,
                "delay_jumps": self.delay_jumps,
                "level_dbov": self.level_dbov,
                "activity": self.activity,
                "reference_level_dbov": self.reference_level_dbov,
                "gain_db": self.gain_db,
                "level_stability_db": self.level_stability_db,
                "noise_floor_dbov": self.noise_floor_dbov,
                "noise_snr_db": self.noise_snr_db,
                "dropouts": [d.to_dict() for d in self.dropouts],
                "clipping": None if self.clipping is None else self.clipping.to_dict(),
                "echo": None if self.echo is None else self.echo.to_dict(),
                "bandwidth": self.bandwidth,
                "emodel": None if self.emodel is None else self.emodel.to_dict(),
                "checks": [c.to_dict() for c in self.checks],
                "skipped": dict(self.skipped),
            }
        )


def json_safe(v: Any) -> Any:
    """``v`` with NaN/inf floats as None, numpy scalars as Python ones, tuples as lists."""
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [json_safe(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return None if not math.isfinite(v) else round(v, 4)
    return v
