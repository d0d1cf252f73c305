"""From a recording's RTP streams to the directions of the call: the legs of one audio through a relay,
the ingress leg among them, and the segments one sender's audio falls into.

Without transcoding rtpengine relays SSRC, sequence numbers and timestamps unchanged, so the same audio
on two legs (a capture that holds both, or another relay in the path) has the same SSRC. Streams with the
same SSRC that carry the same (sequence, timestamp) pairs are legs of one direction; the leg whose copies
were captured first (ties: first in the file) is the ingress leg and is the one decoded. Payload bytes are
not compared (a periodic test tone repeats them in both directions), so legs of a transcoding relay,
which rewrites the SSRC, stay separate directions. Streams both sent to rtpengine's ports, and the only
two streams of a recording, are never merged (an echo reflector may return the caller's packets
unchanged). Streams that follow each other in time from the same source, to the same destination or with
the same SSRC (an SSRC change after a re-INVITE, a new source port) are segments of one direction.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations

from harness.lab.pcap import Endpoint
from harness.lab.recorded_streams import RecordedStream, fmt_endpoint
from harness.lab.rtp_decode import Unique
from harness.lab.rtpengine_meta import RecordingMetadata, relay_ports

__all__ = ["Direction", "find_directions", "is_reverse"]

_SEGMENT_OVERLAP_S = 1.0  # groups overlapping less than this in time may be segments of one direction


@dataclass
class Direction:
    """The audio of one direction of the call: the ingress leg(s) decoded, relayed copies noted."""

    ingress: list[RecordedStream]  #: decoded segments in time order (usually one; more after an SSRC change)
    copies: list[RecordedStream] = field(default_factory=list)  #: the same audio on other legs, not decoded
    role: str | None = None  #: "caller" or "callee" when the recording's SDP tells, else None

    @property
    def src(self) -> Endpoint:
        return self.ingress[0].src

    @property
    def dst(self) -> Endpoint:
        return self.ingress[0].dst

    @property
    def first_time(self) -> float:
        return min(s.first_time for s in self.ingress)

    @property
    def last_time(self) -> float:
        return max(s.last_time for s in self.ingress)

    @property
    def packets(self) -> int:
        return sum(s.packets for s in self.ingress)

    @property
    def audio_packets(self) -> int:
        return sum(s.audio_packets for s in self.ingress)

    @property
    def lost(self) -> int:
        return sum(s.lost for s in self.ingress)

    @property
    def ssrcs(self) -> list[int]:
        return [s.ssrc for s in self.ingress]

    @property
    def codec(self) -> str:
        return "/".join(dict.fromkeys(s.codec for s in self.ingress))

    @property
    def legs(self) -> int:
        return len({(s.src, s.dst) for s in self.ingress + self.copies})

    @property
    def label(self) -> str:
        return f"{fmt_endpoint(self.src)} -> {fmt_endpoint(self.dst)} ssrc {'/'.join(f'{x:08x}' for x in self.ssrcs)}"


def is_reverse(a: RecordedStream, b: RecordedStream) -> bool:
    return a.src == b.dst and a.dst == b.src


def _group_copies(
    audio: list[RecordedStream], media: dict[int, Unique], relay: set[int]
) -> list[list[RecordedStream]]:
    """Sets of streams that carry the same packets: legs of one direction through a relay.

    A relay that does not transcode (rtpengine) keeps SSRC, sequence numbers and timestamps, so
    copies share the SSRC and most (seq, timestamp) pairs. Payload bytes are not compared: a periodic
    test tone gives identical payloads in both directions. Two streams both sent *to* rtpengine (its
    ports from the metadata SDP) are never copies, nor are the only two streams of a recording:
    rtpengine 10.5 records ingress only, and an echo reflector that returns the caller's packets
    unchanged must still give two directions.
    """
    if len(audio) <= 2:
        return [[s] for s in audio]
    keys = [{(p.seq, p.timestamp) for _, _, p in media[id(s)]} for s in audio]
    parent = list(range(len(audio)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in combinations(range(len(audio)), 2):
        a, b = audio[i], audio[j]
        if a.ssrc != b.ssrc or (a.src, a.dst) == (b.src, b.dst) or is_reverse(a, b):
            continue
        if a.dst[1] in relay and b.dst[1] in relay:
            continue
        if len(keys[i] & keys[j]) >= 0.5 * min(len(keys[i]), len(keys[j])):
            parent[root(j)] = root(i)
    groups: dict[int, list[RecordedStream]] = {}
    for i, s in enumerate(audio):
        groups.setdefault(root(i), []).append(s)
    return list(groups.values())


def _pick_ingress(members: list[RecordedStream], media: dict[int, Unique]) -> RecordedStream:
    """The leg whose copies of the shared packets were mostly captured first: it entered the relay."""
    if len(members) == 1:
        return members[0]
    first: dict[tuple[int, int], tuple[float, int, int]] = {}
    for idx, s in enumerate(members):
        for _, _, p in media[id(s)]:
            key, cand = (p.seq, p.timestamp), (p.time, p.frame, idx)
            if key not in first or cand < first[key]:
                first[key] = cand
    votes = Counter(idx for _, _, idx in first.values())
    return min(enumerate(members), key=lambda m: (-votes[m[0]], m[1].first_time, m[1].rtp[0].frame))[1]


@dataclass
class _Group:
    ingress: RecordedStream
    members: list[RecordedStream]

    @property
    def first(self) -> float:
        return min(s.first_time for s in self.members)

    @property
    def last(self) -> float:
        return max(s.last_time for s in self.members)


def _same_sender(a: _Group, b: _Group) -> bool:
    srcs_a, dsts_a = {s.src for s in a.members}, {s.dst for s in a.members}
    srcs_b, dsts_b = {s.src for s in b.members}, {s.dst for s in b.members}
    ssrcs_a, ssrcs_b = {s.ssrc for s in a.members}, {s.ssrc for s in b.members}
    return bool(srcs_a & srcs_b or dsts_a & dsts_b or ssrcs_a & ssrcs_b)


def find_directions(
    audio: list[RecordedStream], media: dict[int, Unique], meta: RecordingMetadata | None
) -> list[Direction]:
    """Every direction the audio streams make up, in order of first packet (roles not yet known)."""
    groups = [_Group(_pick_ingress(m, media), m) for m in _group_copies(audio, media, relay_ports(meta))]
    groups.sort(key=lambda g: (g.first, g.ingress.rtp[0].frame))
    chains: list[list[_Group]] = []
    for g in groups:
        # a group that follows another from the same sender (SSRC change, new port) continues it
        for chain in chains:
            if chain[-1].last - g.first < _SEGMENT_OVERLAP_S and _same_sender(chain[-1], g):
                chain.append(g)
                break
        else:
            chains.append([g])
    out = []
    for chain in chains:
        ingress = [g.ingress for g in chain]
        copies = [s for g in chain for s in g.members if s is not g.ingress]
        out.append(Direction(ingress=ingress, copies=copies))
    return out
