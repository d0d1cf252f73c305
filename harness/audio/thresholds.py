"""Pass/fail thresholds of the audio checks, with defaults a call-center path should meet.

Every number a verdict depends on lives here, so a target profile or scenario can tighten or relax
it by name and a report can show what a check was held to::

    >>> t = Thresholds.from_mapping({"min_mos": 3.8, "max_dropouts": 1})
    >>> t.min_mos, t.max_delay_ms
    (3.8, 400.0)
    >>> Thresholds.from_mapping({"min_moss": 3.8})
    Traceback (most recent call last):
    ...
    ValueError: unknown audio threshold 'min_moss' (did you mean 'min_mos'?)
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = ["Thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """Thresholds of every audio check (names of checks in brackets)."""

    # gate [audio_present, reference_match]
    no_audio_level_dbov: float = -60.0  #: received P.56 level below this is "no audio"
    no_audio_min_activity: float = 0.01  #: received speech activity below this (0..1) is "no audio"
    min_reference_match: float = 0.5  #: max(waveform, envelope correlation) below this is "wrong audio"
    # timing [delay, delay_variation]
    max_delay_ms: float = 400.0  #: G.114 upper bound for one-way delay (planning)
    max_delay_variation_ms: float = 100.0  #: largest minus smallest delay through the call
    # level [gain, speech_level, level_stability]
    max_abs_gain_db: float = 6.0  #: |received level - reference level|
    min_speech_level_dbov: float = -36.0  #: received P.56 active speech level
    max_level_variation_db: float = 6.0  #: spread of the per-second gain through the call
    # dropouts [dropouts]
    max_dropouts: float = 0.0  #: number of dropout events allowed
    dropout_depth_db: float = 20.0  #: a frame this far below the gain-matched reference is lost
    dropout_min_ms: float = 20.0  #: shorter gaps are not reported
    # noise [noise_floor, snr]
    max_noise_floor_dbov: float = -50.0
    min_snr_db: float = 20.0
    # clipping [clipping]
    max_clipping_pct: float = 0.05  #: share of non-silent samples at the clip level
    # echo [echo] (only when the listener's sent signal is given)
    min_echo_loss_db: float = 40.0  #: sent level minus echo level in the received signal
    # perceptual and E-model [mos, emodel_r]
    min_mos: float = 3.5
    min_emodel_r: float = 70.0  #: G.107 R below 70 means "some users dissatisfied"

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any] | None) -> Thresholds:
        """Defaults overridden by ``data``; raises ValueError naming any unknown key or bad value."""
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"audio thresholds must be a mapping, got {type(data).__name__}")
        names = [f.name for f in fields(cls)]
        changes: dict[str, float] = {}
        for key, value in data.items():
            if key not in names:
                hint = difflib.get_close_matches(str(key), names, n=1)
                more = f" (did you mean {hint[0]!r}?)" if hint else f" (known: {', '.join(names)})"
                raise ValueError(f"unknown audio threshold {key!r}{more}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"audio threshold {key!r} must be a number, got {value!r}")
            if not math.isfinite(float(value)):
                raise ValueError(f"audio threshold {key!r} must be finite, got {value!r}")
            changes[key] = float(value)
        t = replace(cls(), **changes)
        t._validate()
        return t

    def _validate(self) -> None:
        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise ValueError(f"audio threshold {key!r} {what}, got {getattr(self, key)!r}")

        need(0.0 <= self.no_audio_min_activity <= 1.0, "no_audio_min_activity", "must be within 0..1")
        need(-1.0 <= self.min_reference_match <= 1.0, "min_reference_match", "must be within -1..1")
        need(1.0 <= self.min_mos <= 5.0, "min_mos", "must be within 1..5")
        need(0.0 <= self.min_emodel_r <= 100.0, "min_emodel_r", "must be within 0..100")
        for key in (
            "max_delay_ms",
            "max_delay_variation_ms",
            "max_abs_gain_db",
            "max_level_variation_db",
            "max_dropouts",
            "dropout_depth_db",
            "dropout_min_ms",
            "max_clipping_pct",
        ):
            need(getattr(self, key) >= 0.0, key, "must not be negative")

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
