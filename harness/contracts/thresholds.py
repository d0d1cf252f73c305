"""Every threshold and its validation: the audio checks', the call and system checks', the harness's health.

Every number a verdict depends on lives here, so a target profile or scenario can tighten or relax
it by name and a report can show what a check was held to. Each default and its source (ITU-T
G.114, G.107/G.109, G.712, G.131/G.168, P.56 ...) is in ``docs/thresholds.md``; a unit test keeps
that table and these defaults equal::

    >>> t = Thresholds.from_mapping({"min_mos": 3.8, "max_dropouts": 1})
    >>> t.min_mos, t.max_delay_ms
    (3.8, 150.0)
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

from harness.contracts.yamlsrc import Fields

__all__ = ["DEFAULT_THRESHOLDS", "HEALTH_LIMIT_KEYS", "HealthLimits", "Thresholds", "validate_thresholds"]


@dataclass(frozen=True)
class Thresholds:
    """Thresholds of every audio check (names of checks in brackets); sources in docs/thresholds.md."""

    # gate [audio_present, reference_match]
    no_audio_level_dbov: float = -60.0  #: received P.56 level below this is "no audio"
    no_audio_min_activity: float = 0.01  #: received speech activity below this (0..1) is "no audio"
    #: received level spread (50 ms frames, 300-3400 Hz, 95th minus 10th percentile) below this is
    #: steady noise or a tone, not speech: hiss and comfort noise are "no audio"
    no_audio_min_modulation_db: float = 5.0
    min_reference_match: float = 0.5  #: max(waveform, envelope correlation) below this is "wrong audio"
    # coverage [coverage]
    min_coverage_pct: float = 95.0  #: share of the reference's active speech the recording let us judge
    # timing [delay, delay_variation]
    min_delay_ms: float = -30.0  #: a causal path cannot lead the reference: more negative is impossible
    max_delay_ms: float = 150.0  #: G.114: one-way delay up to 150 ms is good for most applications
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
    max_noise_floor_dbov: float = -60.0
    min_snr_db: float = 30.0
    # clipping [clipping]
    max_clipping_pct: float = 0.05  #: share of non-silent samples at the clip level
    # echo [echo] (only when the listener's sent signal is given)
    min_echo_loss_db: float = 40.0  #: sent level minus echo level in the received signal
    # bandwidth [bandwidth]
    min_bandwidth_hz: float = 3000.0  #: upper edge of the channel's response (10 dB down), telephone band 3400
    # perceptual, network and E-model [mos, mos_drop, packet_loss, emodel_r]
    min_mos: float = 3.1  #: absolute floor: G.107 Annex B MOS at R 60 (below every clip's ceiling - max drop)
    max_mos_drop: float = 0.5  #: MOS below what the clip scores through the codec alone (the decider)
    max_loss_pct: float = 1.0  #: RTP packet loss (only with rtp stats); concealed loss hides from the signal
    min_emodel_r: float = 80.0  #: G.109: R >= 80 "users satisfied" (call-center grade)

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
        need(0.0 <= self.min_coverage_pct <= 100.0, "min_coverage_pct", "must be within 0..100")
        need(1.0 <= self.min_mos <= 5.0, "min_mos", "must be within 1..5")
        need(0.0 <= self.min_emodel_r <= 100.0, "min_emodel_r", "must be within 0..100")
        for key in (
            "no_audio_min_modulation_db",
            "max_delay_ms",
            "max_delay_variation_ms",
            "max_abs_gain_db",
            "max_level_variation_db",
            "max_dropouts",
            "dropout_depth_db",
            "dropout_min_ms",
            "max_clipping_pct",
            "min_bandwidth_hz",
            "max_mos_drop",
            "max_loss_pct",
        ):
            need(getattr(self, key) >= 0.0, key, "must not be negative")
        need(self.min_delay_ms <= self.max_delay_ms, "min_delay_ms", "must not exceed max_delay_ms")

    def to_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


#: the call, flow and system checks' defaults (docs/thresholds.md, "Calls and system")
DEFAULT_THRESHOLDS: dict[str, Any] = {
    "setup_time_ms": 2000.0,  # INVITE -> 200 OK, measured at the caller
    "register_time_ms": 1000.0,
    "register_timeout_s": 8.0,  # no answer to REGISTER within this: the PBX is unreachable
    "call_timeout_s": 15.0,
    "hangup_timeout_s": 5.0,
    "transfer_time_ms": 3000.0,  # REFER received -> the transferred call answered
    "answer_time_ms": 20000.0,  # a queue or IVR call: the caller's INVITE -> an agent answered
    # system suite
    "options_rtt_p50_ms": 100.0,
    "options_rtt_p95_ms": 250.0,
    "options_loss_pct": 0.0,
    "tls_cert_min_days": 14.0,
    "clock_skew_s": 5.0,
    "dns_time_ms": 500.0,
}


@dataclass(frozen=True)
class HealthLimits:
    max_media_late_ms: float = 40.0
    max_wake_late_ms: float = 100.0
    max_memory_full_pct: float = 10.0
    max_steal_pct: float = 20.0
    max_lab_wait_ms: float = 40.0
    #: how long before a media window a starved harness still counts (the jitter buffers carry it)
    media_memory_s: float = 10.0

    @classmethod
    def from_mapping(cls, data: dict[str, Any] | None) -> HealthLimits:
        """Limits from a ``health`` thresholds section; unknown keys and non-numbers raise ValueError."""
        data = dict(data or {})
        unknown = set(data) - set(HEALTH_LIMIT_KEYS)
        if unknown:
            raise ValueError(f"unknown health threshold(s) {', '.join(sorted(unknown))} "
                             f"(known: {', '.join(HEALTH_LIMIT_KEYS)})")
        for key, value in data.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"health threshold {key} must be a non-negative number, got {value!r}")
        return cls(**{k: float(v) for k, v in data.items()})

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


HEALTH_LIMIT_KEYS = tuple(f.name for f in fields(HealthLimits))


def validate_thresholds(thresholds: Any, path: str, error: Any) -> None:
    """Known threshold names with numeric values; the audio and health ones are checked by their owners."""
    f = Fields(thresholds, path, error, "thresholds")
    for key in DEFAULT_THRESHOLDS:
        f.number(key, None, low=0)
    audio = f.opt("audio", dict, None)
    if audio is not None:
        try:
            Thresholds.from_mapping(dict(audio))
        except ValueError as exc:
            raise error(str(exc), path, f.line_of("audio"), "thresholds.audio") from None
    health = f.opt("health", dict, None)  # the harness's own health limits (harness.health.judge)
    if health is not None:
        try:
            HealthLimits.from_mapping(dict(health))
        except ValueError as exc:
            raise error(str(exc), path, f.line_of("health"), "thresholds.health") from None
    f.done()
