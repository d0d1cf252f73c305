"""A call's RTP figures over its streams: a re-INVITE (hold, resume) replaces the stream, so each
stream's figures are kept when it is destroyed and added up here. Figures with no samples stay None."""

from __future__ import annotations

from typing import Any

__all__ = ["aggregate_stats"]

_SUMMED = ("rx_packets", "rx_bytes", "rx_lost", "rx_dup", "rx_reorder", "rx_discard", "tx_packets", "tx_lost",
           "jb_lost", "jb_discard", "rx_loss_events")
_MAXED = ("rx_jitter_max_ms",)
_WEIGHTED = ("rx_jitter_ms", "tx_jitter_ms", "rtt_ms", "jb_avg_delay_ms")


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
    return out
