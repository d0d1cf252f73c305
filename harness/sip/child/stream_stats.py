"""One audio stream's RTP/RTCP and jitter-buffer figures, as the ``stats`` reply carries them.

Reads pjsua2's ``StreamStat`` and ``StreamInfo`` (plain attribute access: this module loads nothing of
pjsua2 itself). A statistic with no samples is not measured: None, never 0 (``harness.contracts.rtp_stats``).
A re-INVITE replaces a call's stream, so a call keeps each stream's figures and adds them up
(:func:`harness.contracts.rtp_stats.aggregate_stats`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["stream_snapshot"]


def _mean_ms(stat: Any) -> float | None:
    return stat.mean / 1000.0 if stat.n else None


def stream_snapshot(st: Any, si: Any) -> dict[str, Any]:
    """The figures of one stream from its ``getStreamStat`` (``st``) and ``getStreamInfo`` (``si``)."""
    rtcp = st.rtcp
    rx, tx = rtcp.rxStat, rtcp.txStat
    return {
        "codec": si.codecName, "clock_rate": si.codecClockRate, "remote_rtp": si.remoteRtpAddress,
        "rx_packets": rx.pkt, "rx_bytes": rx.bytes, "rx_lost": rx.loss, "rx_dup": rx.dup,
        "rx_reorder": rx.reorder, "rx_discard": rx.discard,
        "rx_jitter_ms": _mean_ms(rx.jitterUsec),
        "rx_jitter_max_ms": rx.jitterUsec.max / 1000.0 if rx.jitterUsec.n else None,
        # each loss event's length (pjmedia's loss_period): with rx_lost it gives the burst ratio
        "rx_loss_events": rx.lossPeriodUsec.n,
        "rx_loss_period_mean_ms": _mean_ms(rx.lossPeriodUsec),
        "tx_packets": tx.pkt, "tx_lost": tx.loss,
        "tx_jitter_ms": _mean_ms(tx.jitterUsec),
        "rtt_ms": _mean_ms(rtcp.rttUsec),
        "rtt_n": rtcp.rttUsec.n,
        "rtt_min_ms": rtcp.rttUsec.min / 1000.0 if rtcp.rttUsec.n else None,
        "rtt_max_ms": rtcp.rttUsec.max / 1000.0 if rtcp.rttUsec.n else None,
        "jb_avg_delay_ms": st.jbuf.avgDelayMsec, "jb_lost": st.jbuf.lost, "jb_discard": st.jbuf.discard,
        "jb_empty": st.jbuf.empty, "jb_max_delay_ms": st.jbuf.maxDelayMsec,
    }
