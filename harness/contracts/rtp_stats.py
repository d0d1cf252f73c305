"""RTP statistics: a call's figures over its streams, and the E-model's view of them (:class:`RtpStats`).

A re-INVITE (hold, resume) replaces a call's stream, so each stream's figures are kept when it is
destroyed and added up (:func:`aggregate_stats`). Figures with no samples stay None: not measured.

The RTCP round trip of a replaced stream's first sample is not trusted. pjmedia's RTCP clock
(``pjmedia_rtcp_get_ntp_time``) is the session's start second plus the time since, dropping the start's
milliseconds, so each stream's NTP clock is off real time by its own 0-999 ms. The far end's first
receiver report to a new stream still answers a sender report of the stream before it, on the other
clock: that round trip is wrong by up to a second (717 ms seen on the loopback lab after a resume, whose
other samples were 0.26-0.3 ms; an E-model FAIL blamed on the PBX). pjmedia already caps a stream's later
samples at 3x its mean, so only the first one can be that far off; being the largest, it is taken out
through the stream's max, and a replaced stream's lone sample is not counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["RtpStats", "aggregate_stats"]

_SUMMED = ("rx_packets", "rx_bytes", "rx_lost", "rx_dup", "rx_reorder", "rx_discard", "tx_packets", "tx_lost",
           "jb_lost", "jb_discard", "jb_empty", "rx_loss_events")
_MAXED = ("rx_jitter_max_ms", "jb_max_delay_ms")
_WEIGHTED = ("rx_jitter_ms", "tx_jitter_ms", "jb_avg_delay_ms")


def _trusted_rtt(snaps: list[dict[str, Any]]) -> tuple[float | None, int, int]:
    """The mean round trip (ms) over the samples trusted, their count, and the count of those set aside."""
    total = 0.0
    trusted = dropped = 0
    for i, s in enumerate(snaps):
        mean, n = s.get("rtt_ms"), int(s.get("rtt_n", 1) or 0)  # no count given: one sample
        if mean is None or n <= 0:
            continue
        if i > 0:  # a replaced stream: its first sample, the largest, may answer the old stream's report
            top = s.get("rtt_max_ms")
            if n < 2 or top is None:
                dropped += n
                continue
            total += float(mean) * n - float(top)
            trusted += n - 1
            dropped += 1
            continue
        total += float(mean) * n
        trusted += n
    return (round(total / trusted, 3) if trusted else None), trusted, dropped


def aggregate_stats(snaps: list[dict[str, Any]]) -> dict[str, Any]:
    """One call's RTP figures from the snapshots of its successive streams."""
    if not snaps:
        return {}
    out = dict(snaps[-1])
    out["streams"] = len(snaps)
    for k in _SUMMED:
        out[k] = sum(int(s.get(k) or 0) for s in snaps)
    for k in _MAXED:
        seen = [float(s[k]) for s in snaps if s.get(k) is not None]
        out[k] = max(seen) if seen else None
    weights = [max(1, int(s.get("rx_packets") or 0)) for s in snaps]
    for k in _WEIGHTED:
        vals = [(float(s[k]), w) for s, w in zip(snaps, weights, strict=True) if s.get(k) is not None]
        out[k] = round(sum(v * w for v, w in vals) / sum(w for _, w in vals), 3) if vals else None
    out["rtt_ms"], out["rtt_n"], out["rtt_set_aside"] = _trusted_rtt(snaps)
    mins = [float(s["rtt_min_ms"]) for s in snaps if s.get("rtt_min_ms") is not None]
    out["rtt_min_ms"] = min(mins) if mins else None
    out.pop("rtt_max_ms", None)  # a replaced stream's max may be the untrusted sample
    return out


@dataclass(frozen=True)
class RtpStats:
    """Stream statistics for the E-model, as the SIP layer reads them from pjsua2/RTCP.

    ``None`` is "not measured", never zero: no packets counted (``loss_pct``), no jitter computed, no
    RTCP round trip (``rtt_ms``), no loss pattern (``burst_ratio``, when packets were lost). The checks
    that need a figure say what they lacked, and are ERROR rather than scored as the best case.
    """

    codec: str
    loss_pct: float | None
    jitter_ms: float | None
    rtt_ms: float | None
    burst_ratio: float | None = 1.0
    jitter_buffer_ms: float | None = None
    packets: int | None = None  #: RTP packets received (None: not counted)

    @classmethod
    def from_party(cls, st: dict[str, Any]) -> RtpStats | None:
        """From a party's ``stats`` reply (harness.sip.child): the loss is the network's, the RTP packets
        missing from the sequence; the burst ratio comes from the loss events (G.107's BurstR = mean burst
        length x (1 - loss)). None when the party has no stream.

        pjmedia's ``jb_discard`` is not loss: it counts frames the jitter buffer removed itself, the static
        algorithm shedding delay it no longer needs (one frame per 200 ms at most, only while it holds twice
        its burst level) and the rare overflow (``jbuf.c``); packets that came too late are refused on
        arrival and not counted there. Counting those removals as loss made a 44 ms host stall a
        packet_loss verdict and pulled a clean line's E-model R under 90; what they do to the audio is
        judged on the audio itself (dropouts, delay jumps, MOS)."""
        if not st or not st.get("codec"):
            return None
        received = _int(st.get("rx_packets"))
        lost = max(0, _int(st.get("rx_lost")) or 0)
        expected = (received or 0) + lost
        loss = 100.0 * lost / expected if received and expected else None
        burst: float | None = 1.0
        if loss is not None and lost:
            events = _int(st.get("rx_loss_events"))
            burst = max(1.0, (lost / events) * (1.0 - loss / 100.0)) if events else None
        return cls(codec=str(st["codec"]), loss_pct=loss, jitter_ms=_float(st.get("rx_jitter_ms")),
                   rtt_ms=_float(st.get("rtt_ms")), burst_ratio=burst,
                   jitter_buffer_ms=_float(st.get("jb_avg_delay_ms")) if st.get("jb_avg_delay_ms") else None,
                   packets=received)

    def lacks(self) -> list[str]:
        """The figures that were not measured."""
        out = [name for name, v in (("packet loss (no RTP packets counted)", self.loss_pct),
                                    ("jitter", self.jitter_ms), ("RTCP round-trip time", self.rtt_ms)) if v is None]
        if self.burst_ratio is None:
            out.append("the loss pattern (burst ratio)")
        return out


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None


def _float(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) else None
