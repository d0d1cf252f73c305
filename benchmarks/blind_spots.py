"""Blind spots of the audio engine: does every fault a call center cares about FAIL, on the right check?

    .venv/bin/python benchmarks/blind_spots.py              # full run: 6 voices (a minute or two on 2 cores)
    .venv/bin/python benchmarks/blind_spots.py --quick      # the 4 committed voices, fewer labels
    .venv/bin/python benchmarks/blind_spots.py --json out.json

A generated corpus (numpy/scipy only; no PESQ) from the committed speech fixtures and, when
``espeak-ng`` is installed, two more espeak voices. Every item goes through what a clean lab call
does (a 5-60 ms delay, G.711, the recorder started with the player) and then one fault:

- ``truncation``: the recording cut at 40 / 65 / 85 % of the reference (and once with the planned
  length given, ``expected_s``: a dropped call);
- ``late_media``: the first 1-3 s of the reference never arrive (the recording started on time), once
  with comfort noise (-55 dBov) where they should be;
- ``band_limit``: a 6th-order low-pass at 800 / 1500 / 2500 Hz before the codec (muffled audio);
- ``packet_loss``: 3 / 5 / 10 % of 20 ms packets lost, zero-filled or concealed (repeated with a
  fade), with the RTP statistics the harness would have measured (the loss it saw);
- ``hiss_one_way``: the listener sends speech but receives only hiss at -45 / -55 / -65 dBov;
- ``echo``: the listener's own speech back 15-30 dB down at 50-300 ms (with its sent signal);
- ``level``: too quiet (-40 dBov), too loud (+8 dB) and too loud into clipping (+12 dB);
- ``clean`` controls: G.711 μ-law and A-law, 5-60 ms delays, a 20 ms jitter-buffer jump or two, a
  10 ms time-warp, a recorder started 200 ms before the player (``start_offset_s`` given) or 15 ms
  after it (not given), all with the listener's sent signal and clean RTP statistics.

A fault is caught when the verdict is FAIL (not PASS, not ERROR) with one of the family's checks
among the failing ones (the one-way family also needs ``one_way``); a control raises a false alarm
when its verdict is anything but PASS. Goals: every fault family 100 %, no false alarm.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, sosfilt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.audio import RtpStats, analyze, read_wav  # noqa: E402
from harness.audio import impair as imp  # noqa: E402

Signal = npt.NDArray[np.float64]
RATE = 8000
FIX = ROOT / "audio_fixtures" / "speech"
COMMITTED = ("caller", "agent", "espeak_us_f", "espeak_gb_m")
ESPEAK = {
    "espeak_us_m": ("en-us+m1", "Good morning. I ordered a replacement card two weeks ago and it has not arrived yet. "
                    "Can you tell me where it is?"),
    "espeak_rp_f": ("en-gb-x-rp+f4", "Your request has been received. A confirmation message will be sent to your "
                    "phone within the next hour. Goodbye."),
}  # fmt: skip

#: family -> the checks that name its fault (one of them must FAIL)
RIGHT: dict[str, set[str]] = {
    "truncation": {"coverage"},
    "late_media": {"coverage"},
    "band_limit": {"bandwidth"},
    "packet_loss": {"packet_loss", "emodel_r", "mos", "mos_drop", "dropouts"},
    "hiss_one_way": {"audio_present"},
    "echo": {"echo"},
    "level": {"gain", "speech_level", "clipping"},
    "clean": set(),
}


@dataclass
class Item:
    voice: str
    family: str
    label: str
    ref: Signal
    rec: Signal
    sent: Signal | None = None
    rtp: RtpStats | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)


def load_voices(quick: bool) -> dict[str, Signal]:
    voices = {name: read_wav(FIX / f"{name}.wav")[0] for name in COMMITTED}
    if not quick and shutil.which("espeak-ng"):
        from harness.audio.fixture_build import espeak_speech

        for name, (voice, text) in ESPEAK.items():
            voices[name] = espeak_speech(voice, text)
    return voices


def _rtp(law: str = "ulaw", loss_pct: float = 0.0, rng: np.random.Generator | None = None) -> RtpStats:
    """What pjsua2 reports on a loopback lab call (jitter under 1 ms, RTT ~0.5 ms, buffer 20-40 ms)."""
    jb = 20.0 if rng is None else float(rng.choice([20.0, 38.0, 40.0]))
    return RtpStats("PCMU" if law == "ulaw" else "PCMA", loss_pct, 0.4, 0.5, jitter_buffer_ms=jb)


def _fit(x: Signal, n: int) -> Signal:
    return np.pad(x, (0, max(n - len(x), 0)))[:n]


def _speech_time(ref: Signal, rng: np.random.Generator, lo: float = 0.3, hi: float = 0.7) -> float:
    """A moment inside the reference's speech, between ``lo`` and ``hi`` of its length."""
    f = RATE // 100
    e = 10 * np.log10(np.mean(ref[: len(ref) // f * f].reshape(-1, f) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(e > np.percentile(e, 90) - 15)
    loud = loud[(loud > lo * len(e)) & (loud < hi * len(e))]
    return float(rng.choice(loud)) / 100 if len(loud) else 0.5 * len(ref) / RATE


def lab_path(
    ref: Signal, rng: np.random.Generator, law: str = "ulaw", events: tuple[tuple[str, float], ...] = ()
) -> tuple[Signal, float]:
    """``ref`` as a clean lab call delivers it: 5-60 ms late, jitter-buffer ``events`` ("jump"/"warp",
    ms) at moments inside speech, 0.3 s of silence after, G.711. Returns (received, delay ms)."""
    d = float(rng.integers(5, 61))
    y = imp.delay(ref, RATE, d)
    shift = 0.0
    for i, (kind, ms) in enumerate(events):
        at = _speech_time(ref, rng, 0.25 + 0.4 * i / max(len(events), 1), 0.45 + 0.4 * i / max(len(events), 1))
        pos = at + (d + shift) / 1000.0
        y = imp.delay_jump(y, RATE, pos, ms) if kind == "jump" else imp.time_warp(y, RATE, pos, ms)
        shift += ms
    return imp.g711(np.concatenate([y, np.zeros(round(0.3 * RATE))]), law), d


def build(voices: dict[str, Signal], quick: bool) -> list[Item]:
    items: list[Item] = []
    names = list(voices)
    for vi, v in enumerate(names):
        ref = voices[v]
        other = voices[names[(vi + 1) % len(names)]]

        def rng(label: str, v: str = v) -> np.random.Generator:
            return np.random.default_rng(zlib.crc32(f"{v}/{label}".encode()))

        def add(
            family: str,
            label: str,
            rec: Signal,
            sent: bool = True,
            v: str = v,
            ref: Signal = ref,
            other: Signal = other,
            **kw: Any,
        ) -> None:
            rtp = kw.pop("rtp", _rtp(rng=rng(label + "/rtp")))
            own = _fit(other, len(rec)) if sent else None
            items.append(Item(v, family, label, ref, rec, own, rtp, kw))

        # ---- truncation: the recording stops early
        for frac in (0.4, 0.65, 0.85):
            y, _ = lab_path(ref, rng(f"cut{frac}"))
            add("truncation", f"cut{frac:.0%}", y[: round(frac * len(ref))])
        y, _ = lab_path(ref, rng("cut65e"))
        add("truncation", "cut65%+expected", y[: round(0.65 * len(ref))], expected_s=len(y) / RATE)
        # ---- late media: the first seconds never arrive, the recording started on time
        for s in (1.0, 2.0, 3.0) if not quick else (1.0, 3.0):
            y, d = lab_path(ref, rng(f"late{s}"))
            y = y.copy()
            y[: round((s + d / 1000.0) * RATE)] = 0.0
            add("late_media", f"first{s:g}s", y)
        y, d = lab_path(ref, rng("late-hiss"))  # the gap filled with comfort noise, as some PBXs do
        y = y.copy()
        y[: round((2.0 + d / 1000.0) * RATE)] = 0.0
        add("late_media", "first2s+hiss-55dBov", imp.pink_noise(y, -55.0, rng("late-hiss-noise")))
        # ---- band limits: muffled audio
        for fc in (800.0, 1500.0, 2500.0):
            r_ = rng(f"lp{fc}")
            d = float(r_.integers(5, 61))
            x = np.concatenate([imp.delay(ref, RATE, d), np.zeros(round(0.3 * RATE))])
            y = imp.g711(sosfilt(butter(6, fc, btype="lowpass", fs=RATE, output="sos"), x))
            add("band_limit", f"lowpass{fc:g}Hz", y)
        # ---- packet loss, with the RTP statistics the harness would have measured
        for conceal in (False, True):
            for pct in (3.0, 5.0, 10.0):
                label = f"{pct:g}%{'+plc' if conceal else ''}"
                r_ = rng(label)
                d = float(r_.integers(5, 61))
                x = np.concatenate([imp.delay(ref, RATE, d), np.zeros(round(0.3 * RATE))])
                y, lost = imp.packet_loss(x, RATE, pct, r_, conceal=conceal)
                seen = 100.0 * len(lost) / -(-len(x) // round(0.02 * RATE))
                add("packet_loss", label, imp.g711(y), rtp=_rtp(loss_pct=seen, rng=r_))
        # ---- one-way audio: hiss only, while the listener talks
        for lvl in (-45.0, -55.0, -65.0):
            r_ = rng(f"hiss{lvl}")
            n = len(ref) + round(0.35 * RATE)
            add("hiss_one_way", f"hiss{lvl:g}dBov", imp.g711(imp.pink_noise(np.zeros(n), lvl, r_)))
        # ---- echo of the listener's own speech
        for loss_db, delay_ms in ((15.0, 50.0), (20.0, 150.0), (25.0, 300.0), (30.0, 100.0)):
            if quick and loss_db in (20.0, 30.0):
                continue
            y, _ = lab_path(ref, rng(f"echo{loss_db}"))
            add(
                "echo",
                f"{loss_db:g}dB@{delay_ms:g}ms",
                imp.g711(imp.add_echo(y, _fit(other, len(y)), RATE, delay_ms, loss_db)),
            )
        # ---- level
        for label, gain in (("quiet-40dBov", -14.0), ("loud+8dB", 8.0), ("clipped+12dB", 12.0)):
            r_ = rng(label)
            d = float(r_.integers(5, 61))
            x = np.concatenate([imp.delay(ref, RATE, d), np.zeros(round(0.3 * RATE))])
            add("level", label, imp.g711(np.clip(imp.scale_db(x, gain), -1.0, 1.0)))
        # ---- clean controls, as clean lab calls are
        for law in ("ulaw", "alaw"):
            y, _ = lab_path(ref, rng(f"clean-{law}"), law)
            add("clean", f"g711{law[0]}", y, rtp=_rtp(law, rng=rng(f"clean-{law}")), expected_s=len(y) / RATE)
        for label, events in (
            ("jump+20ms", (("jump", 20.0),)),
            ("jump-20ms", (("jump", -20.0),)),
            ("jumps+20/-20ms", (("jump", 20.0), ("jump", -20.0))),
            ("warp10ms", (("warp", -10.0),)),
        ):
            if quick and label.startswith("jumps"):
                continue
            y, _ = lab_path(ref, rng(label), events=events)
            add("clean", label, y)
        y, _ = lab_path(ref, rng("recorder-first"))
        add("clean", "recorder_first200ms", np.concatenate([np.zeros(round(0.2 * RATE)), y]), start_offset_s=-0.2)
        y, _ = lab_path(ref, rng("recorder-late"))
        add("clean", "recorder_late15ms", y[round(0.015 * RATE) :])
    return items


def evaluate(item: Item) -> dict[str, Any]:
    t0 = time.process_time()
    a = analyze(item.rec, item.ref, RATE, sent=item.sent, rtp=item.rtp, **item.kwargs)
    cpu = time.process_time() - t0
    failing = [c.name for c in a.checks if c.verdict.value == "FAIL"]
    errors = [c.name for c in a.checks if c.verdict.value == "ERROR"]
    right = RIGHT[item.family]
    if item.family == "clean":
        ok = a.verdict.value == "PASS"
    else:
        ok = a.verdict.value == "FAIL" and bool(right & set(failing))
        if item.family == "hiss_one_way":
            ok = ok and bool(a.one_way)
    detail = {c.name: c.detail for c in a.checks if c.verdict.value != "PASS"}
    return {
        "voice": item.voice,
        "family": item.family,
        "label": item.label,
        "ok": ok,
        "verdict": a.verdict.value,
        "failing": failing,
        "errors": errors,
        "detail": detail,
        "mos": a.mos,
        "mos_drop": a.mos_drop,
        "cpu_s": cpu,
        "seconds": len(item.rec) / RATE,
    }


def render(rows: list[dict[str, Any]], wall: float) -> str:
    fams = [f for f in RIGHT if any(r["family"] == f for r in rows)]
    head = ("family", "items", "caught / false alarms", "rate", "checks that failed (items)")
    lines = [
        f"| {head[0]:<13} | {head[1]:>5} | {head[2]:<22} | {head[3]:>6} | {head[4]:<60} |",
        f"|{'-' * 15}|{'-' * 7}|{'-' * 24}|{'-' * 8}|{'-' * 62}|",
    ]
    for f in fams:
        sel = [r for r in rows if r["family"] == f]
        good = sum(r["ok"] for r in sel)
        seen = Counter(n for r in sel for n in r["failing"] + r["errors"])
        checks = ", ".join(f"{n} {k}" for n, k in seen.most_common(6)) or "-"
        if f == "clean":
            bad = len(sel) - good
            what, rate = f"{bad} false alarm(s)", 100.0 * bad / len(sel)
        else:
            what, rate = f"{good}/{len(sel)} caught", 100.0 * good / len(sel)
        lines.append(f"| {f:<13} | {len(sel):>5} | {what:<22} | {rate:>5.1f}% | {checks:<60} |")
    cpu = sum(r["cpu_s"] for r in rows)
    secs = sum(r["seconds"] for r in rows)
    lines.append("")
    lines.append(
        f"{len(rows)} items, {wall:.0f} s wall; analysis CPU {cpu:.1f} s for {secs / 60:.1f} min of audio "
        f"({cpu / (secs / 60):.2f} s per call minute, {secs / cpu:.0f}x real time)"
    )
    misses = [r for r in rows if not r["ok"]]
    for r in misses:
        what = "false alarm" if r["family"] == "clean" else "missed"
        lines.append(f"  {what}: {r['family']}/{r['label']}/{r['voice']}: {r['verdict']} {r['detail']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="committed voices only, fewer labels")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", type=Path, help="also write every item's result here")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    items = build(load_voices(args.quick), args.quick)
    if args.jobs > 1:
        with Pool(args.jobs) as pool:
            rows = pool.map(evaluate, items, chunksize=2)
    else:
        rows = [evaluate(i) for i in items]
    wall = time.perf_counter() - t0
    print(f"blind spots ({'quick' if args.quick else 'full'}): faults must FAIL on their check, controls PASS\n")
    print(render(rows, wall))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
