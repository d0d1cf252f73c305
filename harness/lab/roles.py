"""Which directions of a recording are the call's two, and which is the caller's.

Of the directions found, the two kept are the caller's and the callee's when the metadata SDP identifies
them (rtpengine writes the SDP it sent out: the offer goes to the callee and advertises the port the
callee sends to, the answer goes to the caller and advertises the port the caller sends to), otherwise
the pair of reverse flows or the two with the most audio. dir1 is the caller's audio when known, else
the direction that started first.
"""

from __future__ import annotations

from itertools import combinations

from harness.lab.directions import Direction, is_reverse
from harness.lab.rtpengine_meta import RecordingMetadata

__all__ = ["assign_roles", "choose_directions"]


def choose_directions(dirs: list[Direction], meta: RecordingMetadata | None) -> tuple[list[Direction], list[Direction]]:
    """The two directions of the call, dir1 first, and the rest."""
    if meta is not None:
        assign_roles(dirs, meta)
    caller = next((d for d in dirs if d.role == "caller"), None)
    callee = next((d for d in dirs if d.role == "callee"), None)
    rest = [d for d in dirs if d is not caller and d is not callee]
    if caller is not None and callee is not None:
        return [caller, callee], rest
    known = caller or callee
    if known is not None:
        if not rest:
            return [known], []
        # prefer the reverse flow of the known direction, then the most audio
        other = max(rest, key=lambda d: (_is_reverse_pair(known, d), d.audio_packets))
        pair = [known, other] if known is caller else [other, known]
        return pair, [d for d in rest if d is not other]
    if len(dirs) <= 2:
        pair = sorted(dirs, key=lambda d: (d.first_time, d.ingress[0].rtp[0].frame))
        return pair, []
    best = max(
        combinations(dirs, 2),
        key=lambda ab: (_is_reverse_pair(*ab), ab[0].audio_packets + ab[1].audio_packets),
    )
    pair = sorted(best, key=lambda d: (d.first_time, d.ingress[0].rtp[0].frame))
    return pair, [d for d in dirs if d not in pair]


def _is_reverse_pair(a: Direction, b: Direction) -> bool:
    return any(is_reverse(x, y) for x in a.ingress + a.copies for y in b.ingress + b.copies)


def assign_roles(dirs: list[Direction], meta: RecordingMetadata) -> None:
    """Mark the caller's and the callee's direction by the port rtpengine advertised to each."""
    for mode, role in (("answer", "caller"), ("offer", "callee")):
        want = meta.advertised(mode)
        if want is None:
            continue
        addr, port = want.connectable, want.port
        # the advertised address may not be the local one (interface=local!public): port alone then
        for strict in (True, False):
            match = next(
                (
                    d
                    for d in dirs
                    if d.role is None
                    and any(s.dst[1] == port and (not strict or addr in (None, s.dst[0])) for s in d.ingress)
                ),
                None,
            )
            if match is not None:
                match.role = role
                break
