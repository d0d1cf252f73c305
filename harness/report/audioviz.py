"""Pictures of one call direction: waveform (SVG) and spectrogram (palette PNG), reference against received.

Both signals are drawn on the reference's timeline: the received signal is shifted back by the
measured global delay, so a gap in the received lane sits right under the speech it lost, and the
dropouts found by the audio engine (``audio[dir].dropouts``, on the reference timeline) are marked
over both lanes. Images stay small: the waveform is a min/max envelope of ``WIDTH`` columns, the
spectrogram a ``WIDTH`` x ``SPEC_H`` palette PNG (a few kB each).
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from harness.report.markup import Markup, el, void
from harness.report.png import data_uri, encode_palette, palette

__all__ = ["SPEC_H", "WIDTH", "DirectionAudio", "load_direction", "spectrogram_img", "waveform_svg"]

Signal = npt.NDArray[np.float64]

WIDTH = 760
LANE_H = 54
SPEC_H = 72
FFT_N = 256
DB_RANGE = 75.0


@dataclass
class DirectionAudio:
    """The signals of one direction; either may be missing (then the lane says why)."""

    rate: int
    received: Signal | None
    reference: Signal | None  #: shifted onto the reference timeline is done at drawing time
    delay_s: float
    duration_s: float
    problems: list[str]


def _read_pcm16(path: Path) -> tuple[Signal, int] | None:
    """Mono or first-channel 16-bit PCM through the standard library, else None.

    What pjsua records and the fixtures hold. It spares ``harness report`` importing the audio
    engine (scipy: over a second) just to draw pictures.
    """
    try:
        with wave.open(str(path), "rb") as w:
            if w.getsampwidth() != 2 or w.getcomptype() != "NONE":
                return None
            n, ch, rate = w.getnframes(), w.getnchannels(), w.getframerate()
            data = np.frombuffer(w.readframes(n), dtype="<i2")
    except (OSError, EOFError, wave.Error):
        return None
    if len(data) == 0 or rate <= 0:
        return None
    return data[::ch].astype(np.float64) / 32768.0, rate


def _read(path: Path | None, what: str, problems: list[str]) -> tuple[Signal | None, int]:
    if path is None:
        problems.append(f"{what} not known: no file of it is recorded in the results")
        return None, 0
    fast = _read_pcm16(path)
    if fast is not None:
        return fast
    from harness.audio.wavio import read_wav  # every other WAV flavour, and its errors
    from harness.contracts.errors import AudioInputError

    try:
        x, rate = read_wav(path)
    except AudioInputError as exc:
        problems.append(f"{what}: {exc.reason} ({path.name})")
        return None, 0
    return x, rate


def load_direction(received: Path | None, reference: Path | None, analysis: dict[str, Any]) -> DirectionAudio:
    problems: list[str] = []
    rec, r_rate = _read(received, "received audio", problems)
    ref, f_rate = _read(reference, "reference audio", problems)
    if rec is not None and ref is not None and r_rate != f_rate:
        problems.append(f"reference rate {f_rate} Hz differs from the received {r_rate} Hz; reference not drawn")
        ref = None
    rate = r_rate or f_rate or 8000
    delay = analysis.get("delay_ms")
    delay_s = float(delay) / 1000.0 if isinstance(delay, int | float) else 0.0
    # the timeline is the call as received: reference beyond its end was never heard (the audio engine
    # does not judge it either), so it is not drawn as if it were missing
    duration = len(ref) / rate if ref is not None else 0.0
    if rec is not None:
        duration = max(len(rec) / rate - delay_s, 0.1)
    return DirectionAudio(rate=rate, received=rec, reference=ref, delay_s=delay_s, duration_s=duration,
                          problems=problems)


def _on_timeline(x: Signal, rate: int, shift_s: float, duration_s: float) -> Signal:
    """``x`` advanced by ``shift_s`` (dropping its first samples) and padded/cut to ``duration_s``."""
    n = max(1, round(duration_s * rate))
    k = round(shift_s * rate)
    y = x[k:] if k >= 0 else np.concatenate([np.zeros(-k), x])
    out = np.zeros(n)
    out[: min(n, len(y))] = y[:n]
    return out


def _envelope(x: Signal, width: int) -> tuple[Signal, Signal]:
    per = max(1, -(-len(x) // width))
    cols = np.zeros(per * width)
    cols[: min(len(x), per * width)] = x[: per * width]
    grid = cols.reshape(width, per)
    return grid.min(axis=1), grid.max(axis=1)


def _lane_path(x: Signal, width: int, top: float, height: float, scale: float) -> str:
    lo, hi = _envelope(x, width)
    mid = top + height / 2.0
    k = (height / 2.0 - 1.0) / scale
    pts_hi = " ".join(f"{i},{mid - v * k:.1f}" for i, v in enumerate(hi))
    pts_lo = " ".join(f"{i},{mid - v * k:.1f}" for i, v in reversed(list(enumerate(lo))))
    return f"M {pts_hi} L {pts_lo} Z"


def waveform_svg(audio: DirectionAudio, analysis: dict[str, Any], label_ref: str = "reference",
                 label_rec: str = "received") -> Markup:
    dur = audio.duration_s
    if dur <= 0:
        return el("p", "No audio to draw.", class_="muted")
    lanes = [(label_ref, audio.reference, 0.0), (label_rec, audio.received, audio.delay_s)]
    scale = max([float(np.max(np.abs(s))) for _, s, _ in lanes if s is not None and len(s)] + [1e-6])
    axis_h, gap = 16, 6
    height = 2 * LANE_H + gap + axis_h
    parts: list[Markup] = []
    for i, (name, sig, shift) in enumerate(lanes):
        top = i * (LANE_H + gap)
        parts.append(el("rect", x=0, y=top, width=WIDTH, height=LANE_H, class_="lane"))
        if sig is None:
            parts.append(el("text", f"{name}: not available", x=WIDTH / 2, y=top + LANE_H / 2 + 4, class_="na"))
        else:
            y = _on_timeline(sig, audio.rate, shift, dur)
            parts.append(el("path", d=_lane_path(y, WIDTH, top, LANE_H, scale), class_="wf" + str(i)))
        parts.append(el("text", name, x=4, y=top + 12, class_="lanel"))
    px = WIDTH / dur
    for d in analysis.get("dropouts") or []:
        try:
            x0, x1 = float(d["start_s"]) * px, float(d["end_s"]) * px
        except (KeyError, TypeError, ValueError):
            continue
        parts.append(el("rect", el("title", f"dropout {d['start_s']}-{d['end_s']} s"), x=f"{x0:.1f}", y=0,
                        width=f"{max(2.0, x1 - x0):.1f}", height=2 * LANE_H + gap, class_="drop"))
    for j in analysis.get("delay_jumps") or []:
        if isinstance(j, dict) and isinstance(j.get("at_s"), int | float):
            x = float(j["at_s"]) * px
            parts.append(el("line", el("title", f"delay jump {j.get('jump_ms')} ms at {j['at_s']} s"), x1=f"{x:.1f}",
                            y1=LANE_H + gap, x2=f"{x:.1f}", y2=2 * LANE_H + gap, class_="jump"))
    step = 1 if dur <= 12 else 2 if dur <= 30 else 5 if dur <= 90 else 30
    for s in range(0, int(dur) + 1, step):
        x = s * px
        parts.append(el("line", x1=f"{x:.1f}", y1=2 * LANE_H + gap, x2=f"{x:.1f}", y2=2 * LANE_H + gap + 4,
                        class_="tick"))
        parts.append(el("text", f"{s}s", x=f"{min(x + 2, WIDTH - 14):.1f}", y=height - 2, class_="tickl"))
    return el("svg", *parts, xmlns="http://www.w3.org/2000/svg", viewBox=f"0 0 {WIDTH} {height}",
              width=WIDTH, height=height, class_="wave", role="img",
              aria_label="waveform: reference above, received below, dropouts in red")


def _spectrogram(x: Signal, rate: int, width: int, height: int, vmax: float) -> npt.NDArray[np.uint8]:
    n = len(x)
    if n < FFT_N:
        x = np.concatenate([x, np.zeros(FFT_N - n)])
        n = FFT_N
    starts = np.linspace(0, n - FFT_N, width).astype(int)
    frames = np.stack([x[s : s + FFT_N] for s in starts]) * np.hanning(FFT_N)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (width, FFT_N/2+1)
    db = 10.0 * np.log10(power + 1e-12)
    rows = np.array_split(np.arange(db.shape[1]), height)
    img = np.stack([db[:, r].max(axis=1) for r in rows], axis=0)[::-1]  # low frequencies at the bottom
    norm = np.clip((img - (vmax - DB_RANGE)) / DB_RANGE, 0.0, 1.0)
    return (norm * 255.0).astype(np.uint8)


def _peak_db(x: Signal) -> float:
    if len(x) < FFT_N:
        return -120.0
    starts = np.linspace(0, len(x) - FFT_N, 64).astype(int)
    frames = np.stack([x[s : s + FFT_N] for s in starts]) * np.hanning(FFT_N)
    return float(10.0 * np.log10((np.abs(np.fft.rfft(frames, axis=1)) ** 2).max() + 1e-12))


def spectrogram_img(audio: DirectionAudio) -> list[tuple[str, Markup]]:
    """(label, <img>) for the reference and the received spectrogram, on one colour scale."""
    sigs = [("reference", audio.reference, 0.0), ("received", audio.received, audio.delay_s)]
    placed = [(name, None if s is None else _on_timeline(s, audio.rate, shift, audio.duration_s))
              for name, s, shift in sigs]
    vmax = max([_peak_db(s) for _, s in placed if s is not None] + [-120.0])
    out = []
    colours = palette()
    for name, s in placed:
        if s is None:
            continue
        png = encode_palette(_spectrogram(s, audio.rate, WIDTH, SPEC_H, vmax), colours)
        out.append((name, void("img", src=data_uri(png), width=WIDTH, height=SPEC_H, class_="spec",
                               alt=f"spectrogram of the {name} audio, 0-{audio.rate // 2} Hz")))
    return out
