"""ITU-T G.107 E-model: an R-factor and MOS from RTP/RTCP statistics.

The signal-based score cannot see everything: packet loss concealed by PLC leaves no gap in the
waveform, and a recording says nothing about the network's future. The E-model turns what the RTP
stack measured (loss, burstiness, jitter, round-trip time) and the codec into a planning score, and
the harness reports it next to the perceptual MOS::

    >>> r = emodel("PCMU", loss_pct=0.0, jitter_ms=0.0, rtt_ms=0.0, ptime_ms=0.0)
    >>> round(r.r, 1), round(r.mos, 2)
    (93.2, 4.41)

Only the transmission-planning defaults of G.107 are used (send/receive loudness ratings, room noise,
TELR 65 dB, WEPL 110 dB), so Ro - Is = 93.2; what changes is the delay impairment Id (from the
one-way delay) and the effective equipment impairment Ie,eff (codec plus packet loss).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = ["CODECS", "CodecImpairment", "EModelResult", "emodel", "one_way_delay_ms", "r_to_mos"]

_RO = 94.77  # G.107 basic signal-to-noise ratio with default parameters (Nc -70, Nfor -64, Ps/Pr 35 dB(A))
_IS = 1.41  # simultaneous impairment with default loudness ratings (SLR 8, RLR 2, STMR 15)
_TELR = 65.0  # talker echo loudness rating, G.107 default
_WEPL = 110.0  # weighted echo path loss, G.107 default


@dataclass(frozen=True)
class CodecImpairment:
    """G.113 Appendix I planning values: equipment impairment ``ie`` and loss robustness ``bpl``."""

    ie: float
    bpl: float
    frame_ms: float  #: algorithmic delay (frame + look-ahead) added to the one-way delay
    note: str = ""


#: Planning values by codec name (SDP encoding names, lower case). G.711 assumes PLC, as pjsua2 and
#: most PBXs conceal loss; ``pcmu-noplc`` / ``pcma-noplc`` are the values without it.
CODECS: dict[str, CodecImpairment] = {
    "pcmu": CodecImpairment(0.0, 25.1, 0.0, "G.711 with PLC (G.113 App. I)"),
    "pcma": CodecImpairment(0.0, 25.1, 0.0, "G.711 with PLC (G.113 App. I)"),
    "pcmu-noplc": CodecImpairment(0.0, 4.3, 0.0, "G.711 without PLC (G.113 App. I)"),
    "pcma-noplc": CodecImpairment(0.0, 4.3, 0.0, "G.711 without PLC (G.113 App. I)"),
    # GSM 06.10 full rate: Ie = 20 is G.113's value; G.113 gives no Bpl for it, so the GSM-EFR value
    # (10) stands in: its substitution-and-muting concealment is of the same simple kind.
    "gsm": CodecImpairment(20.0, 10.0, 20.0, "GSM-FR: Ie from G.113 App. I, Bpl assumed (EFR value)"),
    "g729": CodecImpairment(11.0, 19.0, 15.0, "G.729A + VAD (G.113 App. I)"),
}
_ALIASES = {
    "g711u": "pcmu",
    "ulaw": "pcmu",
    "g711a": "pcma",
    "alaw": "pcma",
    "gsm-fr": "gsm",
    "g729a": "g729",
}


@dataclass(frozen=True)
class EModelResult:
    """R-factor, its MOS-CQE, and the parts it was made of."""

    r: float
    mos: float
    codec: str
    one_way_delay_ms: float
    id: float  #: delay impairment
    ie_eff: float  #: effective equipment impairment (codec + loss)
    ppl: float  #: packet-loss % used

    def to_dict(self) -> dict[str, float | str]:
        return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def r_to_mos(r: float) -> float:
    """G.107 Annex B: R to MOS-CQE (1.0 .. 4.5)."""
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return 1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6


def _idd(ta: float) -> float:
    """Delay impairment from the absolute one-way delay ``ta`` (ms)."""
    if ta <= 100.0:
        return 0.0
    x = math.log10(ta / 100.0) / math.log10(2.0)
    return 25.0 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)


def _idte(t: float) -> float:
    """Talker-echo impairment for mean one-way echo-path delay ``t`` (ms) at the default TELR."""
    no = -61.18  # G.107 default total noise power No (dBm0p)
    roe = -1.5 * (no - 2.0)
    re = 80.0 + 2.5 * (_TELR - 14.0)
    return max(((roe - re) / 2 + math.sqrt((roe - re) ** 2 / 4 + 100.0) - 1.0) * (1.0 - math.exp(-t)), 0.0)


def _idle(tr: float) -> float:
    """Listener-echo impairment for round-trip delay ``tr`` (ms) at the default WEPL."""
    rle = 10.5 * (_WEPL + 7.0) * (tr + 1.0) ** -0.25
    return (_RO - rle) / 2 + math.sqrt((_RO - rle) ** 2 / 4 + 169.0)


def one_way_delay_ms(rtt_ms: float, jitter_buffer_ms: float, codec: CodecImpairment, ptime_ms: float) -> float:
    """Mouth-to-ear estimate: half the RTT, the jitter buffer, packetisation and codec delay."""
    return rtt_ms / 2.0 + jitter_buffer_ms + ptime_ms + codec.frame_ms


def emodel(
    codec: str,
    loss_pct: float,
    jitter_ms: float,
    rtt_ms: float,
    burst_ratio: float = 1.0,
    jitter_buffer_ms: float | None = None,
    ptime_ms: float = 20.0,
    one_way_ms: float | None = None,
) -> EModelResult:
    """R-factor and MOS from stream statistics.

    ``loss_pct`` is the network packet loss in percent, ``jitter_ms`` the RFC 3550 interarrival jitter,
    ``rtt_ms`` the RTCP round-trip time, ``burst_ratio`` G.107's BurstR (1 = random loss).
    ``jitter_buffer_ms`` is the delay the receiver's jitter buffer adds (pjsua2 reports its average);
    ``None`` assumes an adaptive buffer holding twice the jitter, at least one packet. Packets that
    arrived too late to play are loss too: add them to ``loss_pct``. ``one_way_ms``, a measured
    mouth-to-ear delay, replaces the estimate from RTT, jitter buffer and packetisation. Raises ValueError
    for an unknown codec or a value out of range.
    """
    key = codec.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in CODECS:
        raise ValueError(f"unknown codec {codec!r} for the E-model (known: {', '.join(sorted(CODECS))})")
    for name, v in (("loss_pct", loss_pct), ("jitter_ms", jitter_ms), ("rtt_ms", rtt_ms)):
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a non-negative number, got {v!r}")
    if loss_pct > 100:
        raise ValueError(f"loss_pct must be within 0..100, got {loss_pct!r}")
    if not math.isfinite(burst_ratio) or burst_ratio < 1.0:
        raise ValueError(f"burst_ratio must be >= 1 (1 = random loss), got {burst_ratio!r}")
    c = CODECS[key]
    if jitter_buffer_ms is None:
        jb = max(2.0 * jitter_ms, ptime_ms)
    else:
        if not math.isfinite(jitter_buffer_ms) or jitter_buffer_ms < 0:
            raise ValueError(f"jitter_buffer_ms must be a non-negative number, got {jitter_buffer_ms!r}")
        jb = jitter_buffer_ms
    ppl = loss_pct
    ta = one_way_delay_ms(rtt_ms, jb, c, ptime_ms) if one_way_ms is None else max(0.0, float(one_way_ms))
    idd = _idd(ta)
    idte = _idte(ta)
    idle = _idle(2.0 * ta)
    id_total = idte + idle + idd
    ie_eff = c.ie + (95.0 - c.ie) * ppl / (ppl / burst_ratio + c.bpl)
    r = _RO - _IS - id_total - ie_eff
    return EModelResult(r=r, mos=r_to_mos(r), codec=key, one_way_delay_ms=ta, id=id_total, ie_eff=ie_eff, ppl=ppl)
