"""Turn rtpengine's pcap call recordings into WAV files, one per direction of the call, plus a stereo mix.

Usage::

    for pcap in find_recordings(rec_dir, call_id="a84b4c76e66710@pc33"):
        wavs = recording_to_wavs(pcap, out_dir)
        wavs.dir1, wavs.dir2, wavs.mix        # caller->callee, callee->caller, stereo (dir1 left)
        wavs.directions[0].src, wavs.durations

    rec = read_recording(pcap)               # streams and directions, without writing anything
    t0, samples = direction_audio(rec.directions[0])   # int16 at 8 kHz, t0 = capture time of sample 0

What rtpengine 10.5 writes (``recording-method = pcap``, measured with the Debian package 10.5.3.5):

* ``<recording-dir>/pcaps/<CALLID>-<TAG>.pcap`` where CALLID is the SIP Call-ID percent-escaped with
  ``g_uri_escape_string`` (everything except ``A-Za-z0-9-._~``, UTF-8 bytes escaped one by one: ``a@b``
  -> ``a%40b``) and TAG is 16 random lowercase hex digits. The ng reply to ``offer``/``answer`` names it
  under ``recordings``. One file per rtpengine call (Call-ID); the Call-ID is NOT inside the pcap, only in
  the file name, which is where :func:`call_id_from_path` takes it from.
* ``rtpengine-meta-<CALLID>-<TAG>.tmp`` in the recording dir's ``tmp`` folder while the call runs, renamed to
  ``<recording-dir>/metadata/rtpengine-meta-<CALLID>-<TAG>.txt`` when the call is deleted. It holds the
  pcap path (first line), then per SDP exchange ``Timestamp started ms``, ``SDP mode: offer|answer``,
  ``SDP before RTP packet: N`` and the SDP *as rtpengine rewrote it* (so the offer block advertises the
  rtpengine port the callee sends to, the answer block the port the caller sends to), then
  ``Timestamp terminated ms(first monologue)``, ``call start time``/``call end time`` (local time) and
  finally the ng ``metadata`` string, if one was given. No Call-ID line. If rtpengine is stopped with
  the call still up, the pcap is complete but the metadata stays in ``tmp/``.
* The pcap is written through stdio buffers: while the call runs it ends at a 4 KiB boundary, usually in
  the middle of a packet (read as "truncated"). It is complete once the call is deleted (a ``delete`` ng
  command or the BYE through kamailio; with ``delete-delay = 0`` at once).
* Link type Ethernet (``eth``; ``raw`` gives LINKTYPE_RAW) with zeroed MAC addresses and IP/UDP
  checksums 0. Capture time is rtpengine's event-loop clock, so packets handled in one loop pass share
  a timestamp to the microsecond.
* Only packets *received* by rtpengine are written (10.5 has no option to record the egress side):
  caller->rtpengine and callee->rtpengine, so a 2-party call gives 2 RTP streams, src = the endpoint,
  dst = rtpengine's local port. RTCP to the RTCP ports and telephone-event (RFC 4733) packets are in
  the file too; packets that arrive before rtpengine knows where to send them are recorded as well.
* Without transcoding rtpengine relays SSRC, sequence numbers and timestamps unchanged, so the same
  audio on two legs (a capture that holds both, or another relay in the path) has the same SSRC.

How streams become two directions: an RTP stream is one (SSRC, source, destination). Streams with the
same SSRC that carry the same (sequence, timestamp) pairs are legs of one direction (a capture holding
both sides of a relay); the leg whose copies were captured first (ties: first in the file) is the ingress
leg and is the one decoded. Payload bytes are not compared (a periodic test tone repeats them in both
directions), so legs of a transcoding relay, which rewrites the SSRC, stay separate directions. Streams
both sent to rtpengine's ports, and the only two streams of a recording, are never merged (an echo
reflector may return the caller's packets unchanged). Streams that follow each other in time from the
same source, to the same destination or with the same SSRC (an SSRC change after a re-INVITE, a new
source port) are segments of one direction. Of the directions found, the two kept are the caller's and
the callee's when the metadata SDP identifies them (the stream sent to the port rtpengine advertised in
the answer is the caller's), otherwise the pair of reverse flows or the two with the most audio. dir1 is
the caller's audio when known, else the direction that started first.

Decoding: PCMU (PT 0) and PCMA (PT 8) through lookup tables; every other payload type
(telephone-event, comfort noise, other codecs) is left out, so its time is silence. Each payload lands
at its RTP timestamp (32-bit wrap and 16-bit sequence wrap unwrapped, reordering undone, duplicates
dropped, gaps left as silence). A timestamp jump that the capture clock does not show starts a new run,
which is placed by capture time instead. Directions are aligned on capture time in the mix.
"""

from __future__ import annotations

import logging
import re
import wave
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import combinations, pairwise
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from numpy.typing import NDArray

from harness.audio.codecs import alaw_decode, ulaw_decode
from harness.contracts.errors import CaptureError, RecordingError
from harness.lab.pcap import Capture, Endpoint, read_capture

__all__ = [
    "SAMPLE_RATE",
    "CallRecording",
    "Direction",
    "DirectionInfo",
    "RecordingMetadata",
    "RecordingWavs",
    "RtpPacket",
    "RtpStream",
    "call_id_from_path",
    "direction_audio",
    "find_recordings",
    "metadata_path_for",
    "read_metadata",
    "read_recording",
    "recording_to_wavs",
]

log = logging.getLogger(__name__)

SAMPLE_RATE = 8000
PCMU, PCMA = 0, 8
_STATIC_CODECS = {0: "PCMU", 3: "GSM", 4: "G723", 8: "PCMA", 9: "G722", 13: "CN", 18: "G729"}

_JUMP_S = 1.0  # RTP clock and capture clock disagreeing by more than this starts a new run
_MAX_DROPOUT = 3000  # a sequence jump larger than this is a sender restart, not loss (RFC 3550 A.1)
_SEGMENT_OVERLAP_S = 1.0  # groups overlapping less than this in time may be segments of one direction
_MAX_SPAN_S = 24 * 3600.0  # refuse to allocate a WAV longer than this
_NAME_RE = re.compile(r"^(?P<callid>.+)-(?P<tag>[0-9a-f]{16})$")


# lookup tables: G.711 code -> 16-bit linear sample (harness.audio.codecs is bit-exact with ITU-T G.191)
_DECODE: dict[int, NDArray[np.int16]] = {
    PCMU: ulaw_decode(np.arange(256)).astype(np.int16),
    PCMA: alaw_decode(np.arange(256)).astype(np.int16),
}


# ------------------------------------------------------------------------------------------ the model


@dataclass(frozen=True, slots=True)
class RtpPacket:
    """One captured RTP packet (header fields and payload with padding removed)."""

    time: float  #: capture time, epoch seconds
    frame: int  #: frame number in the capture file
    seq: int
    timestamp: int
    payload_type: int
    marker: bool
    payload: bytes


@dataclass
class RtpStream:
    """One RTP stream: one SSRC from one source to one destination.

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
        return f"ssrc {self.ssrc:08x} {_fmt(self.src)} -> {_fmt(self.dst)}"


@dataclass
class Direction:
    """The audio of one direction of the call: the ingress leg(s) decoded, relayed copies noted."""

    ingress: list[RtpStream]  #: decoded segments in time order (usually one; more after an SSRC change)
    copies: list[RtpStream] = field(default_factory=list)  #: the same audio on other legs, not decoded
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
        return f"{_fmt(self.src)} -> {_fmt(self.dst)} ssrc {'/'.join(f'{x:08x}' for x in self.ssrcs)}"


@dataclass
class RecordingMetadata:
    """What rtpengine's metadata file for a recording says."""

    path: Path
    complete: bool  #: False while the file is still in ``tmp/`` (call not deleted)
    pcap_path: str | None = None
    sdp: list[tuple[str, str]] = field(default_factory=list)  #: (mode, SDP as rewritten by rtpengine)
    call_start: str | None = None
    call_end: str | None = None
    extra: str | None = None  #: the ng ``metadata`` string given with offer/answer

    def first_sdp(self, mode: str) -> str | None:
        return next((s for m, s in self.sdp if m == mode), None)


@dataclass
class CallRecording:
    """One rtpengine recording read from its pcap (and metadata file, when there is one)."""

    call_id: str | None
    pcap: Path
    streams: list[RtpStream]  #: every RTP stream, in order of first packet
    directions: list[Direction]  #: the two chosen directions, dir1 first (only one for one-way audio)
    other_directions: list[Direction] = field(default_factory=list)  #: found but not chosen
    metadata: RecordingMetadata | None = None
    truncated: str | None = None  #: why the pcap ended early, or None
    warnings: list[str] = field(default_factory=list)


@dataclass
class DirectionInfo:
    """Where one direction's WAV came from."""

    index: int  #: 1 or 2
    present: bool  #: False when the recording has no audio in this direction (its WAV is silence)
    role: str | None
    src: Endpoint | None
    dst: Endpoint | None
    ssrcs: list[int]
    codec: str | None
    packets: int
    lost: int
    legs: int  #: streams (legs) that carried this audio in the recording
    first_time: float | None  #: capture time of the WAV's first sample
    start_s: float  #: where this direction starts in the mix
    duration_s: float


@dataclass
class RecordingWavs:
    """The WAV files written for one recording and what they hold."""

    pcap: Path
    call_id: str | None
    dir1: Path
    dir2: Path
    mix: Path  #: stereo, dir1 left, dir2 right, aligned on capture time
    directions: list[DirectionInfo]  #: always two, dir1 first
    start_time: float  #: capture time (epoch seconds) of the mix's first sample
    mix_duration_s: float
    sample_rate: int = SAMPLE_RATE
    truncated: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def durations(self) -> tuple[float, float]:
        return self.directions[0].duration_s, self.directions[1].duration_s


def _fmt(ep: Endpoint) -> str:
    return f"[{ep[0]}]:{ep[1]}" if ":" in ep[0] else f"{ep[0]}:{ep[1]}"


# ---------------------------------------------------------------------------------- files and names


def call_id_from_path(path: Path) -> str | None:
    """The SIP Call-ID in an rtpengine recording's file name (pcap or metadata), or None."""
    stem = Path(path).name
    for suffix in (".pcap", ".txt", ".tmp"):
        stem = stem.removesuffix(suffix)
    stem = stem.removeprefix("rtpengine-meta-")
    m = _NAME_RE.match(stem)
    return unquote(m["callid"], errors="replace") if m else None


def metadata_path_for(pcap: Path) -> Path | None:
    """rtpengine's metadata file for a pcap: ``metadata/*.txt`` when the call is over, else ``tmp/*.tmp``."""
    pcap = Path(pcap)
    spool = pcap.parent.parent
    for candidate in (
        spool / "metadata" / f"rtpengine-meta-{pcap.stem}.txt",
        pcap.parent / f"rtpengine-meta-{pcap.stem}.txt",
        spool / "tmp" / f"rtpengine-meta-{pcap.stem}.tmp",
    ):
        if candidate.is_file():
            return candidate
    return None


_SDP_BLOCK_RE = re.compile(
    r"(?:\nLabel: [^\n]*)?\nTimestamp started ms: [^\n]*\nSDP mode: (?P<mode>[^\n]*)\n"
    r"SDP before RTP packet: [^\n]*\n\n"
)
_TAIL_RE = re.compile(r"\nTimestamp terminated ms")
_START_RE = re.compile(r"^call start time: (.*)$", re.M)
_END_RE = re.compile(r"^call end time: (.*)$", re.M)


def read_metadata(path: Path) -> RecordingMetadata:
    """Parse an rtpengine (pcap method) metadata file; unknown or damaged parts are left empty."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise RecordingError(path, f"cannot read metadata: {exc.strerror or exc}") from exc
    meta = RecordingMetadata(path=path, complete=path.suffix == ".txt")
    first, _, _ = text.partition("\n")
    meta.pcap_path = first.strip() or None
    blocks = list(_SDP_BLOCK_RE.finditer(text))
    tail = _TAIL_RE.search(text, blocks[-1].end() if blocks else 0)
    for i, m in enumerate(blocks):
        end = blocks[i + 1].start() if i + 1 < len(blocks) else (tail.start() if tail else len(text))
        meta.sdp.append((m["mode"].strip(), text[m.end() : end]))
    if tail:
        rest = text[tail.start() :]
        if s := _START_RE.search(rest):
            meta.call_start = s[1].strip()
        if e := _END_RE.search(rest):
            meta.call_end = e[1].strip()
            meta.extra = rest[e.end() :].strip("\n") or None
    return meta


def _sdp_audio_endpoint(sdp: str) -> tuple[str | None, int] | None:
    """(connection address or None, port) of the first audio m-line of an SDP."""
    session_addr: str | None = None
    port: int | None = None
    media_addr: str | None = None
    in_audio = False
    for raw in sdp.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            if port is not None:
                break
            parts = line[2:].split()
            in_audio = bool(parts) and parts[0] == "audio" and len(parts) > 1 and parts[1].isdigit()
            if in_audio:
                port = int(parts[1])
        elif line.startswith("c="):
            parts = line[2:].split()
            addr = parts[2].split("/")[0] if len(parts) >= 3 else None
            if port is None and not in_audio:
                session_addr = addr
            elif in_audio:
                media_addr = addr
    if port is None:
        return None
    addr = media_addr or session_addr
    return (None if addr in (None, "0.0.0.0", "::") else addr), port


def _sdp_rtpmap(sdps: Iterable[str]) -> dict[int, str]:
    names: dict[int, str] = {}
    for sdp in sdps:
        for m in re.finditer(r"^a=rtpmap:(\d+) ([^/\s]+)", sdp, re.M):
            names.setdefault(int(m[1]), m[2])
    return names


def find_recordings(rec_dir: Path, call_id: str | None = None, since: float | None = None) -> list[Path]:
    """rtpengine pcaps under ``rec_dir`` (the recording-dir, or its ``pcaps/``), oldest first.

    ``call_id`` keeps those whose file name carries that SIP Call-ID (rtpengine 10.5 puts it there,
    percent-escaped; its metadata file does not name it). ``since`` (epoch seconds) keeps files
    modified at or after that time. One Call-ID can have several pcaps (recording restarted).
    """
    rec_dir = Path(rec_dir)
    if not rec_dir.is_dir():
        raise RecordingError(rec_dir, "recording directory does not exist")
    where = rec_dir / "pcaps" if (rec_dir / "pcaps").is_dir() else rec_dir
    found: list[tuple[float, str, Path]] = []
    for p in where.iterdir():
        if p.suffix not in (".pcap", ".pcapng") or not p.is_file():
            continue
        if call_id is not None and call_id_from_path(p) != call_id:
            continue
        try:
            mtime = p.stat().st_mtime
        except OSError:  # removed while we looked
            continue
        if since is not None and mtime < since:
            continue
        found.append((mtime, p.name, p))
    return [p for _, _, p in sorted(found)]


# ---------------------------------------------------------------------------------------- RTP parsing


def _parse_rtp(data: bytes) -> tuple[int, int, int, int, bool, bytes] | None:
    """(ssrc, seq, timestamp, payload type, marker, payload) of an RTP packet, None for anything else."""
    if len(data) < 12 or data[0] >> 6 != 2:
        return None
    if 192 <= data[1] <= 223:  # RTCP (SR 200, RR 201, SDES, BYE, APP, feedback...), RFC 5761
        return None
    cc = data[0] & 0x0F
    pos = 12 + 4 * cc
    if data[0] & 0x10:  # header extension: 16-bit profile, 16-bit length in 32-bit words
        if len(data) < pos + 4:
            return None
        pos += 4 + 4 * int.from_bytes(data[pos + 2 : pos + 4], "big")
    end = len(data)
    if data[0] & 0x20:  # padding: the last byte counts the padding bytes, itself included
        if end == 0 or data[-1] == 0:
            return None
        end -= data[-1]
    if pos > end:
        return None
    return (
        int.from_bytes(data[8:12], "big"),
        int.from_bytes(data[2:4], "big"),
        int.from_bytes(data[4:8], "big"),
        data[1] & 0x7F,
        bool(data[1] & 0x80),
        data[pos:end],
    )


def _unwrap(values: list[int], bits: int) -> list[int]:
    """Unwrap a modular counter, each value taken as the closest to the one before it."""
    mod, half = 1 << bits, 1 << (bits - 1)
    out: list[int] = []
    prev: int | None = None
    for v in values:
        cur = v if prev is None else prev + ((v - prev + half) % mod) - half
        out.append(cur)
        prev = cur
    return out


@dataclass
class _Run:
    anchor: float  #: capture time of sample 0
    samples: NDArray[np.int16]


_Unique = list[tuple[int, int, RtpPacket]]  # (extended seq, extended timestamp, packet), seq order


def _analyse(rtp: list[RtpPacket]) -> tuple[_Unique, int, int]:
    """Unique packets (first copy of each sequence number), lost and duplicate counts of one stream."""
    seqs = _unwrap([p.seq for p in rtp], 16)
    stamps = _unwrap([p.timestamp for p in rtp], 32)
    seen: dict[int, tuple[int, int, RtpPacket]] = {}
    for s, ts, p in zip(seqs, stamps, rtp, strict=True):
        seen.setdefault(s, (s, ts, p))
    unique = sorted(seen.values(), key=lambda u: u[0])
    lost = 0
    for (a, _, _), (b, _, _) in pairwise(unique):
        if 1 < b - a <= _MAX_DROPOUT:
            lost += b - a - 1
    return unique, lost, len(rtp) - len(unique)


def _layout(unique: _Unique) -> list[tuple[float, int, list[tuple[int, RtpPacket]]]]:
    """Split the audio packets into runs the RTP clock agrees with: (anchor time, length, packets)."""
    groups: list[list[tuple[int, RtpPacket]]] = []
    prev: tuple[int, RtpPacket] | None = None
    for _, ts, p in unique:
        if p.payload_type not in _DECODE or not p.payload:
            continue
        if prev is None or abs((ts - prev[0]) / SAMPLE_RATE - (p.time - prev[1].time)) > _JUMP_S:
            groups.append([])
        groups[-1].append((ts, p))
        prev = (ts, p)
    out = []
    for g in groups:
        base = min(ts for ts, _ in g)
        # the least-delayed packet tells best when the run's first sample was sent
        anchor = min(p.time - (ts - base) / SAMPLE_RATE for ts, p in g)
        length = max(ts - base + len(p.payload) for ts, p in g)
        out.append((anchor, length, [(ts - base, p) for ts, p in g]))
    return out


def _decode_runs(unique: _Unique) -> list[_Run]:
    runs = []
    for anchor, length, pkts in _layout(unique):
        out = np.zeros(length, dtype=np.int16)
        for pos, p in pkts:
            out[pos : pos + len(p.payload)] = _DECODE[p.payload_type][np.frombuffer(p.payload, np.uint8)]
        runs.append(_Run(anchor, out))
    return runs


def _codec_name(pt: int, rtpmap: dict[int, str]) -> str:
    if pt in _STATIC_CODECS:
        return _STATIC_CODECS[pt]
    return rtpmap.get(pt, f"PT{pt}")


def _build_streams(capture: Capture, rtpmap: dict[int, str]) -> tuple[list[RtpStream], dict[int, _Unique]]:
    by_key: dict[tuple[int, Endpoint, Endpoint], list[RtpPacket]] = {}
    for d in capture.datagrams:
        r = _parse_rtp(d.payload)
        if r is None:
            continue
        ssrc, seq, ts, pt, marker, payload = r
        by_key.setdefault((ssrc, d.src, d.dst), []).append(
            RtpPacket(d.time, d.frame, seq, ts, pt, marker, payload)
        )
    streams: list[RtpStream] = []
    media: dict[int, _Unique] = {}
    for (ssrc, src, dst), rtp in by_key.items():
        unique, lost, dups = _analyse(rtp)
        pts = Counter(p.payload_type for p in rtp)
        audio_pts = Counter(p.payload_type for _, _, p in unique if p.payload_type in _DECODE and p.payload)
        pt = (audio_pts or pts).most_common(1)[0][0]
        if runs := _layout(unique):
            start = min(anchor for anchor, _, _ in runs)
            duration = max(anchor + n / SAMPLE_RATE for anchor, n, _ in runs) - start
        else:
            duration = rtp[-1].time - rtp[0].time
        stream = RtpStream(
            ssrc=ssrc,
            payload_type=pt,
            codec=_codec_name(pt, rtpmap),
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


# ------------------------------------------------------------------------------ streams -> directions


def _reverse(a: RtpStream, b: RtpStream) -> bool:
    return a.src == b.dst and a.dst == b.src


def _group_copies(
    audio: list[RtpStream], media: dict[int, _Unique], relay_ports: set[int]
) -> list[list[RtpStream]]:
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
        if a.ssrc != b.ssrc or (a.src, a.dst) == (b.src, b.dst) or _reverse(a, b):
            continue
        if a.dst[1] in relay_ports and b.dst[1] in relay_ports:
            continue
        if len(keys[i] & keys[j]) >= 0.5 * min(len(keys[i]), len(keys[j])):
            parent[root(j)] = root(i)
    groups: dict[int, list[RtpStream]] = {}
    for i, s in enumerate(audio):
        groups.setdefault(root(i), []).append(s)
    return list(groups.values())


def _pick_ingress(members: list[RtpStream], media: dict[int, _Unique]) -> RtpStream:
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
    ingress: RtpStream
    members: list[RtpStream]

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


def _relay_ports(meta: RecordingMetadata | None) -> set[int]:
    """rtpengine's receiving ports, from the SDP it wrote to the metadata file."""
    if meta is None:
        return set()
    return {ep[1] for _, sdp in meta.sdp if (ep := _sdp_audio_endpoint(sdp)) is not None}


def _directions(
    audio: list[RtpStream], media: dict[int, _Unique], meta: RecordingMetadata | None
) -> list[Direction]:
    groups = [_Group(_pick_ingress(m, media), m) for m in _group_copies(audio, media, _relay_ports(meta))]
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


def _choose(dirs: list[Direction], meta: RecordingMetadata | None) -> tuple[list[Direction], list[Direction]]:
    """The two directions of the call, dir1 first, and the rest."""
    if meta is not None:
        _assign_roles(dirs, meta)
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
    return any(_reverse(x, y) for x in a.ingress + a.copies for y in b.ingress + b.copies)


def _assign_roles(dirs: list[Direction], meta: RecordingMetadata) -> None:
    # rtpengine writes the SDP it sent out: the offer goes to the callee and advertises the port the
    # callee sends to; the answer goes to the caller and advertises the port the caller sends to
    for mode, role in (("answer", "caller"), ("offer", "callee")):
        sdp = meta.first_sdp(mode)
        want = _sdp_audio_endpoint(sdp) if sdp else None
        if want is None:
            continue
        addr, port = want
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


# -------------------------------------------------------------------------------------- public API


def read_recording(pcap_path: Path, *, strict: bool = False) -> CallRecording:
    """Read an rtpengine pcap recording: its RTP streams and the two directions of the call.

    A truncated pcap (call still running, crash) gives what was read before the cut, with
    ``truncated`` and a warning set; ``strict=True`` raises :class:`RecordingError` instead.
    Raises :class:`RecordingError` for a file that is not a capture, holds no RTP, or no G.711 audio.
    """
    pcap_path = Path(pcap_path)
    try:
        capture = read_capture(pcap_path)
    except CaptureError as exc:
        raise RecordingError(pcap_path, exc.message) from exc
    warnings: list[str] = []
    if capture.truncated:
        if strict:
            raise RecordingError(pcap_path, f"truncated: {capture.truncated}")
        msg = f"{pcap_path}: truncated, using the {capture.frames} frames before the cut: {capture.truncated}"
        log.warning("%s", msg)
        warnings.append(msg)
    meta_path = metadata_path_for(pcap_path)
    meta = read_metadata(meta_path) if meta_path else None
    rtpmap = _sdp_rtpmap(s for _, s in meta.sdp) if meta else {}
    streams, media = _build_streams(capture, rtpmap)
    cut = f" (file truncated: {capture.truncated})" if capture.truncated else ""
    if not streams:
        raise RecordingError(
            pcap_path,
            f"no RTP packets in {capture.frames} frames ({len(capture.datagrams)} UDP datagrams){cut}",
        )
    audio = [s for s in streams if s.audio_packets]
    if not audio:
        pts = Counter[int]()
        for s in streams:
            pts.update(s.payload_types)
        found = ", ".join(f"{pt} ({_codec_name(pt, rtpmap)})" for pt in sorted(pts))
        raise RecordingError(
            pcap_path,
            f"unsupported codec: RTP carries payload types {found}; only PCMU (0) and PCMA (8) decode{cut}",
        )
    chosen, others = _choose(_directions(audio, media, meta), meta)
    for s in streams:
        skipped = {pt: c for pt, c in s.payload_types.items() if pt not in _DECODE}
        if s.audio_packets and skipped:
            names = ", ".join(f"{c} x {_codec_name(pt, rtpmap)}" for pt, c in skipped.items())
            warnings.append(f"{s.label}: left out packets that are not G.711 audio ({names})")
    if len(chosen) < 2:
        warnings.append(f"{pcap_path}: audio in one direction only ({chosen[0].label})")
    for d in others:
        warnings.append(f"{pcap_path}: extra direction not used: {d.label} ({d.audio_packets} audio packets)")
    return CallRecording(
        call_id=call_id_from_path(pcap_path),
        pcap=pcap_path,
        streams=streams,
        directions=chosen,
        other_directions=others,
        metadata=meta,
        truncated=capture.truncated,
        warnings=warnings,
    )


def direction_audio(direction: Direction) -> tuple[float, NDArray[np.int16]]:
    """The decoded audio of a direction: (capture time of sample 0, int16 samples at 8 kHz)."""
    runs = [r for s in direction.ingress for r in _decode_runs(_analyse(s.rtp)[0])]
    if not runs:
        return direction.first_time, np.zeros(0, dtype=np.int16)
    t0 = min(r.anchor for r in runs)
    starts = [round((r.anchor - t0) * SAMPLE_RATE) for r in runs]
    total = max(pos + len(r.samples) for pos, r in zip(starts, runs, strict=True))
    if total > _MAX_SPAN_S * SAMPLE_RATE:
        raise RecordingError(direction.ingress[0].label, f"audio spans {total / SAMPLE_RATE:.0f} s, refusing")
    out = np.zeros(total, dtype=np.int16)
    for pos, r in sorted(zip(starts, runs, strict=True), key=lambda x: x[1].anchor):
        out[pos : pos + len(r.samples)] = r.samples
    return t0, out


def recording_to_wavs(pcap_path: Path, out_dir: Path, stem: str | None = None) -> RecordingWavs:
    """Write ``<stem>_dir1.wav``, ``<stem>_dir2.wav`` (16-bit mono) and ``<stem>_mix.wav`` (stereo) at 8 kHz.

    dir1 is the caller's audio toward the callee when the metadata tells which stream that is,
    otherwise the direction that started first. A direction without audio (one-way audio) is written
    as silence as long as the other and reported with ``present=False``. ``stem`` defaults to the
    pcap's file stem. Raises :class:`RecordingError` like :func:`read_recording`.
    """
    pcap_path = Path(pcap_path)
    rec = read_recording(pcap_path)
    stem = stem or pcap_path.stem
    audio = [direction_audio(d) for d in rec.directions]
    t_mix = min(t for t, _ in audio)
    starts = [round((t - t_mix) * SAMPLE_RATE) for t, _ in audio]
    n_mix = max(pos + len(x) for pos, (_, x) in zip(starts, audio, strict=True))
    infos = [
        _info(i + 1, d, t, x, pos / SAMPLE_RATE)
        for i, (d, (t, x), pos) in enumerate(zip(rec.directions, audio, starts, strict=True))
    ]
    if len(audio) == 1:  # one-way audio: the missing direction is silence over the same span
        audio.append((audio[0][0], np.zeros(len(audio[0][1]), dtype=np.int16)))
        starts.append(starts[0])
        infos.append(DirectionInfo(2, False, None, None, None, [], None, 0, 0, 0, None, 0.0, 0.0))
    mix = np.zeros((n_mix, 2), dtype=np.int16)
    for ch, (pos, (_, x)) in enumerate(zip(starts, audio, strict=True)):
        mix[pos : pos + len(x), ch] = x
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / f"{stem}_dir1.wav", out_dir / f"{stem}_dir2.wav", out_dir / f"{stem}_mix.wav"]
        _write_wav(paths[0], audio[0][1])
        _write_wav(paths[1], audio[1][1])
        _write_wav(paths[2], mix)
    except OSError as exc:
        raise RecordingError(pcap_path, f"cannot write WAVs to {out_dir}: {exc.strerror or exc}") from exc
    return RecordingWavs(
        pcap=pcap_path,
        call_id=rec.call_id,
        dir1=paths[0],
        dir2=paths[1],
        mix=paths[2],
        directions=infos,
        start_time=t_mix,
        mix_duration_s=n_mix / SAMPLE_RATE,
        truncated=rec.truncated,
        warnings=list(rec.warnings),
    )


def _info(index: int, d: Direction, t0: float, x: NDArray[np.int16], start_s: float) -> DirectionInfo:
    return DirectionInfo(
        index=index,
        present=True,
        role=d.role,
        src=d.src,
        dst=d.dst,
        ssrcs=d.ssrcs,
        codec=d.codec,
        packets=d.packets,
        lost=d.lost,
        legs=d.legs,
        first_time=t0,
        start_s=start_s,
        duration_s=len(x) / SAMPLE_RATE,
    )


def _write_wav(path: Path, samples: NDArray[np.int16]) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1 if samples.ndim == 1 else samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(samples.astype("<i2").tobytes())
