"""Turn rtpengine's pcap call recordings into WAV files, one per direction of the call, plus a stereo mix.

Usage::

    for pcap in find_recordings(rec_dir, call_id="a84b4c76e66710@pc33"):
        wavs = recording_to_wavs(pcap, out_dir)
        wavs.dir1, wavs.dir2, wavs.mix        # caller->callee, callee->caller, stereo (dir1 left)
        wavs.directions[0].src, wavs.durations

    rec = read_recording(pcap)               # streams and directions, without writing anything
    t0, samples = direction_audio(rec.directions[0])   # int16 at 8 kHz, t0 = capture time of sample 0

The steps, each in its own module:

* the files rtpengine writes, their names and its metadata file: :mod:`harness.lab.rtpengine_meta`;
* the capture: :mod:`harness.lab.pcap`. rtpengine 10.5 writes the pcap through stdio buffers: while the
  call runs it ends at a 4 KiB boundary, usually in the middle of a packet (read as "truncated"). It is
  complete once the call is deleted (a ``delete`` ng command or the BYE through kamailio; with
  ``delete-delay = 0`` at once). Link type Ethernet (``eth``; ``raw`` gives LINKTYPE_RAW) with zeroed
  MAC addresses and IP/UDP checksums 0;
* RTP packets and G.711 decoding: :mod:`harness.lab.rtp_decode`;
* the RTP streams (:class:`RecordedStream`): :mod:`harness.lab.recorded_streams`;
* streams -> directions (legs through a relay, the ingress leg, segments): :mod:`harness.lab.directions`;
* the call's two directions and who is the caller: :mod:`harness.lab.roles`.

Directions are aligned on capture time in the mix.
"""

from __future__ import annotations

import logging
import wave
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from harness.audio.wavio import write_wav
from harness.contracts.errors import CaptureError, RecordingError
from harness.lab.directions import Direction, find_directions
from harness.lab.pcap import Endpoint, read_capture
from harness.lab.recorded_streams import RecordedStream, build_streams, codec_name
from harness.lab.roles import choose_directions
from harness.lab.rtp_decode import DECODE, SAMPLE_RATE, RtpPacket, decode_runs, unique_packets
from harness.lab.rtpengine_meta import (
    RecordingMetadata,
    call_id_from_path,
    find_recordings,
    metadata_path_for,
    payload_names,
    read_metadata,
)

__all__ = [
    "SAMPLE_RATE",
    "CallRecording",
    "Direction",
    "DirectionInfo",
    "RecordedStream",
    "RecordingError",
    "RecordingMetadata",
    "RecordingWavs",
    "RtpPacket",
    "call_id_from_path",
    "direction_audio",
    "find_recordings",
    "metadata_path_for",
    "read_metadata",
    "read_recording",
    "recording_to_wavs",
]

log = logging.getLogger(__name__)

_MAX_SPAN_S = 24 * 3600.0  # refuse to allocate a WAV longer than this


@dataclass
class CallRecording:
    """One rtpengine recording read from its pcap (and metadata file, when there is one)."""

    call_id: str | None
    pcap: Path
    streams: list[RecordedStream]  #: every RTP stream, in order of first packet
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
    rtpmap = payload_names(meta)
    streams, media = build_streams(capture, rtpmap)
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
        found = ", ".join(f"{pt} ({codec_name(pt, rtpmap)})" for pt in sorted(pts))
        raise RecordingError(
            pcap_path,
            f"unsupported codec: RTP carries payload types {found}; only PCMU (0) and PCMA (8) decode{cut}",
        )
    chosen, others = choose_directions(find_directions(audio, media, meta), meta)
    for s in streams:
        skipped = {pt: c for pt, c in s.payload_types.items() if pt not in DECODE}
        if s.audio_packets and skipped:
            names = ", ".join(f"{c} x {codec_name(pt, rtpmap)}" for pt, c in skipped.items())
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
    runs = [r for s in direction.ingress for r in decode_runs(unique_packets(s.rtp)[0])]
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
        # int16 / 32768 is exact in float64, so write_wav gives back the very samples (and wave's header)
        write_wav(paths[0], audio[0][1] / 32768.0, SAMPLE_RATE)
        write_wav(paths[1], audio[1][1] / 32768.0, SAMPLE_RATE)
        _write_stereo_wav(paths[2], mix)
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


def _write_stereo_wav(path: Path, samples: NDArray[np.int16]) -> None:
    """16-bit PCM, two channels interleaved (harness.audio.wavio.write_wav writes mono only)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(samples.shape[1])
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(samples.astype("<i2").tobytes())
