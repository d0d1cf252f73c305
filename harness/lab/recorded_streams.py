"""The RTP streams of a capture: one :class:`RecordedStream` per (SSRC, source, destination), with its counts,
its codec and its span.

rtpengine 10.5 records only the packets it *receives* (it has no option to record the egress side):
caller->rtpengine and callee->rtpengine, so a 2-party call gives 2 RTP streams, src = the endpoint,
dst = rtpengine's local port. RTCP to the RTCP ports and telephone-event (RFC 4733) packets are in the
file too (RTCP is not RTP and is skipped here); packets that arrive before rtpengine knows where to send
them are recorded as well. Capture time is rtpengine's event-loop clock, so packets handled in one loop
pass share a timestamp to the microsecond.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from harness.lab.pcap import Capture, Endpoint
from harness.lab.rtp_decode import DECODE, SAMPLE_RATE, RtpPacket, Unique, layout, parse_rtp, unique_packets

__all__ = ["RecordedStream", "build_streams", "codec_name", "fmt_endpoint"]

_STATIC_CODECS = {0: "PCMU", 3: "GSM", 4: "G723", 8: "PCMA", 9: "G722", 13: "CN", 18: "G729"}


def fmt_endpoint(ep: Endpoint) -> str:
    return f"[{ep[0]}]:{ep[1]}" if ":" in ep[0] else f"{ep[0]}:{ep[1]}"


@dataclass
class RecordedStream:
    """One RTP stream in a recording: one SSRC from one source to one destination.

    ``packets`` counts every RTP packet captured (all payload types, duplicates included), ``lost``
    the sequence numbers never seen, ``duration_s`` the decoded audio span (capture span when the
    stream has no G.711 audio).
    """

    ssrc: int
    payload_type: int  #: the most frequent audio payload type (most frequent of all if none is G.711)
    codec: str  #: "PCMU", "PCMA", an rtpmap name from the SDP, or "PT<n>"
    src: Endpoint
    dst: Endpoint
    packets: int
    lost: int
    first_time: float
    last_time: float
    duration_s: float
    audio_packets: int = 0  #: G.711 packets that were decoded (duplicates excluded)
    duplicates: int = 0
    payload_types: dict[int, int] = field(default_factory=dict)  #: packets per payload type
    rtp: list[RtpPacket] = field(default_factory=list, repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"ssrc {self.ssrc:08x} {fmt_endpoint(self.src)} -> {fmt_endpoint(self.dst)}"


def codec_name(pt: int, rtpmap: dict[int, str]) -> str:
    if pt in _STATIC_CODECS:
        return _STATIC_CODECS[pt]
    return rtpmap.get(pt, f"PT{pt}")


def build_streams(capture: Capture, rtpmap: dict[int, str]) -> tuple[list[RecordedStream], dict[int, Unique]]:
    """Every RTP stream of the capture in order of first packet, and each one's unique packets by ``id()``."""
    by_key: dict[tuple[int, Endpoint, Endpoint], list[RtpPacket]] = {}
    for d in capture.datagrams:
        r = parse_rtp(d.payload)
        if r is None:
            continue
        ssrc, seq, ts, pt, marker, payload = r
        by_key.setdefault((ssrc, d.src, d.dst), []).append(
            RtpPacket(d.time, d.frame, seq, ts, pt, marker, payload)
        )
    streams: list[RecordedStream] = []
    media: dict[int, Unique] = {}
    for (ssrc, src, dst), rtp in by_key.items():
        unique, lost, dups = unique_packets(rtp)
        pts = Counter(p.payload_type for p in rtp)
        audio_pts = Counter(p.payload_type for _, _, p in unique if p.payload_type in DECODE and p.payload)
        pt = (audio_pts or pts).most_common(1)[0][0]
        if runs := layout(unique):
            start = min(anchor for anchor, _, _ in runs)
            duration = max(anchor + n / SAMPLE_RATE for anchor, n, _ in runs) - start
        else:
            duration = rtp[-1].time - rtp[0].time
        stream = RecordedStream(
            ssrc=ssrc,
            payload_type=pt,
            codec=codec_name(pt, rtpmap),
            src=src,
            dst=dst,
            packets=len(rtp),
            lost=lost,
            first_time=min(p.time for p in rtp),
            last_time=max(p.time for p in rtp),
            duration_s=round(duration, 6),
            audio_packets=sum(audio_pts.values()),
            duplicates=dups,
            payload_types=dict(sorted(pts.items())),
            rtp=rtp,
        )
        media[id(stream)] = unique
        streams.append(stream)
    streams.sort(key=lambda s: (s.first_time, s.rtp[0].frame))
    return streams, media
