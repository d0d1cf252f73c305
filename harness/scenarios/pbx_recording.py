"""Fetch the PBX's own recording of a call, wherever the target profile says it appears.

- ``format: rtpengine-pcap`` (the lab): rtpengine's pcap for the Call-ID, converted to one WAV per
  direction and a stereo mix (:mod:`harness.lab.recording`); it is complete once rtpengine has
  written the call's metadata file.
- ``format: wav`` / ``auto`` with ``dir``: the newest file matching ``glob`` (``{call_id}`` is replaced
  by the SIP Call-ID); a stereo WAV gives the two directions, a mono one is a mix of both.
- ``url_template``: HTTP(S) GET of the template with ``{call_id}`` filled in; 404 means not yet.

Every wait is bounded by ``wait_s``; a recording that never appears is a :class:`RecordingMissing`.
"""

from __future__ import annotations

import fnmatch
import time
import urllib.error
import urllib.parse
import urllib.request
import wave
from dataclasses import dataclass
from pathlib import Path

from harness.contracts.errors import RecordingMissing
from harness.contracts.target import RecordingSource

__all__ = ["PbxRecording", "fetch_recording"]


@dataclass
class PbxRecording:
    kind: str  #: what was found, for people
    source_name: str  #: file name or URL it came from
    dir1: Path | None  #: the caller's audio (toward the callee), or the mono mix
    dir2: Path | None  #: the callee's audio, or the mono mix
    mix: Path | None
    duration_s: float
    start_skew_ms: float = 0.0  #: how much later dir2's WAV starts than dir1's, in the recording


def fetch_recording(source: RecordingSource, call_id: str, out_dir: Path, stem: str, wait_s: float) -> PbxRecording:
    deadline = time.monotonic() + wait_s
    if source.url_template:
        return _from_url(source.url_template, call_id, out_dir, stem, deadline)
    if source.dir is None:
        raise RecordingMissing("the target profile's recordings section has neither dir nor url_template")
    if source.format == "rtpengine-pcap":
        return _from_rtpengine(source.dir, call_id, out_dir, stem, deadline)
    return _from_wav_dir(source, call_id, out_dir, stem, deadline)


def _from_rtpengine(rec_dir: Path, call_id: str, out_dir: Path, stem: str, deadline: float) -> PbxRecording:
    from harness.contracts.errors import RecordingError
    from harness.lab.recording import find_recordings, metadata_path_for, recording_to_wavs

    while True:
        pcaps = find_recordings(rec_dir, call_id=call_id)
        done = [p for p in pcaps if (m := metadata_path_for(p)) is not None and m.suffix == ".txt"]
        if done:
            break
        if time.monotonic() >= deadline:
            state = "still being written (call not closed in rtpengine)" if pcaps else "no recording"
            raise RecordingMissing(f"{state} for Call-ID {call_id} in {rec_dir}")
        time.sleep(0.1)
    try:
        wavs = recording_to_wavs(done[-1], out_dir, stem)
    except RecordingError as exc:
        raise RecordingMissing(f"the recording cannot be read: {exc}") from None
    d1, d2 = wavs.directions
    return PbxRecording("rtpengine pcap, two directions", done[-1].name,
                        wavs.dir1 if d1.present else None, wavs.dir2 if d2.present else None, wavs.mix,
                        wavs.mix_duration_s, start_skew_ms=round((d2.start_s - d1.start_s) * 1000.0, 1))


def _from_wav_dir(source: RecordingSource, call_id: str, out_dir: Path, stem: str, deadline: float) -> PbxRecording:
    assert source.dir is not None
    pattern = source.glob.replace("{call_id}", call_id)
    while True:
        found = sorted((p for p in source.dir.rglob("*") if p.is_file() and fnmatch.fnmatch(
            str(p.relative_to(source.dir)), pattern)), key=lambda p: p.stat().st_mtime)
        if found and time.time() - found[-1].stat().st_mtime > 0.5:  # not still being written
            return _split_wav(found[-1], out_dir, stem, found[-1].name)
        if time.monotonic() >= deadline:
            raise RecordingMissing(f"no file matching '{pattern}' in {source.dir}")
        time.sleep(0.2)


def _from_url(template: str, call_id: str, out_dir: Path, stem: str, deadline: float) -> PbxRecording:
    url = template.replace("{call_id}", urllib.parse.quote(call_id, safe=""))
    if urllib.parse.urlparse(url).scheme not in ("http", "https"):
        raise RecordingMissing(f"recording URL must be http or https: {url}")
    dest = out_dir / f"{stem}.wav"
    last = ""
    while True:
        try:
            with urllib.request.urlopen(url, timeout=max(1.0, deadline - time.monotonic())) as resp:
                dest.write_bytes(resp.read())
            return _split_wav(dest, out_dir, stem, url)
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if time.monotonic() >= deadline:
            raise RecordingMissing(f"{url}: {last}")
        time.sleep(0.5)


def _split_wav(path: Path, out_dir: Path, stem: str, source_name: str) -> PbxRecording:
    """A stereo recording gives one WAV per direction; a mono one is the mix of both."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            frames = w.readframes(n)
    except (wave.Error, EOFError, OSError) as exc:
        raise RecordingMissing(f"{source_name} is not a readable WAV: {exc}") from None
    if n == 0:
        raise RecordingMissing(f"{source_name} is empty")
    duration = n / float(rate)
    if channels == 1:
        return PbxRecording("mono WAV (a mix of both directions)", source_name, path, path, None, duration)
    if channels != 2 or width != 2:
        raise RecordingMissing(f"{source_name}: {channels} channels of {8 * width} bits; "
                               "expected 16-bit mono or stereo")
    import numpy as np

    data = np.frombuffer(frames, dtype="<i2").reshape(-1, 2)
    outs = []
    for ch in (0, 1):
        out = out_dir / f"{stem}_dir{ch + 1}.wav"
        with wave.open(str(out), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(data[:, ch].copy().tobytes())
        outs.append(out)
    return PbxRecording("stereo WAV, one direction per channel", source_name, outs[0], outs[1], path, duration)
