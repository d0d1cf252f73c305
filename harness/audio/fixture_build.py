"""Build the audio fixtures from Debian's packages: speech references, held-out voices, test signals.

The speech comes from ``asterisk-core-sounds-en-wav`` (Allison Smith, CC-BY-SA-3.0) and from
``espeak-ng``; synthetic signals are generated here. Building is deterministic and idempotent: a file
whose bytes would not change is not rewritten, so a second build is a no-op and a clean checkout
can prove its committed fixtures are what the builder makes::

    $ python -m harness.audio.fixture_build --out audio_fixtures

Every speech fixture is 8 kHz mono 16-bit, P.56-normalised to -26 dBov, with 0.5 s of digital
silence on each side and short pauses between prompts, so that noise-floor and SNR measurements
have reference silences to work in.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from harness.audio import synth
from harness.audio.level import active_level, normalise
from harness.audio.wavio import read_wav, write_wav
from harness.contracts.errors import AudioInputError, FixtureBuildError

__all__ = [
    "ASTERISK_SOUNDS_DIR",
    "FIXTURE_RATE",
    "TARGET_DBOV",
    "build_fixtures",
    "espeak_speech",
    "main",
    "prompt_speech",
]

Signal = npt.NDArray[np.float64]

#: Where Debian's asterisk-core-sounds-en-wav puts Allison Smith's US English prompts.
ASTERISK_SOUNDS_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
ASTERISK_COPYRIGHT = Path("/usr/share/doc/asterisk-core-sounds-en-wav/copyright")
FIXTURE_RATE = 8000
TARGET_DBOV = -26.0
EDGE_SILENCE_S = 0.5

# Distinct content for the two directions, so a crossed or looped-back stream is "wrong audio".
CALLER_PROMPTS: tuple[tuple[str, float], ...] = (
    ("hello", 0.45),
    ("something-terribly-wrong", 0.60),
    ("tt-weasels", 0.0),
)
AGENT_PROMPTS: tuple[tuple[str, float], ...] = (
    ("queue-thankyou", 0.40),
    ("one-moment-please", 0.50),
    ("pls-hold-while-try", 0.35),
    ("queue-reporthold", 0.0),
)
# Held-out synthetic voices (different engine, accents, pitch) for the accuracy benchmark.
ESPEAK_VOICES: tuple[tuple[str, str, str], ...] = (
    (
        "espeak_us_f",
        "en-us+f3",
        "Thank you for calling. Your account number is four seven two nine. "
        "Please hold while I check the order status for you.",
    ),
    (
        "espeak_gb_m",
        "en-gb+m3",
        "Hello, I am calling about my last bill. The amount looks wrong to me. "
        "Could you explain the extra charge from Tuesday?",
    ),
)


@dataclass(frozen=True)
class _Fixture:
    rel: str
    samples: Signal
    source: str


def _trim(x: Signal, rate: int, floor_db: float = 40.0, margin_s: float = 0.03) -> Signal:
    """Cut leading/trailing silence of a prompt: frames more than ``floor_db`` below its loudest frame."""
    f = round(0.01 * rate)
    n = len(x) // f
    e = 10 * np.log10(np.mean(x[: n * f].reshape(n, f) ** 2, axis=1) + 1e-12)
    act = np.flatnonzero(e > e.max() - floor_db)
    m = round(margin_s * rate)
    start = max(int(act[0]) * f - m, 0)
    end = min((int(act[-1]) + 1) * f + m, len(x))
    y = x[start:end].copy()
    ramp = min(m, len(y) // 2)
    w = np.linspace(0.0, 1.0, ramp)
    y[:ramp] *= w
    y[len(y) - ramp :] *= w[::-1]
    return y


def prompt_speech(
    prompts: Sequence[tuple[str, float]], sounds_dir: Path = ASTERISK_SOUNDS_DIR, rate: int = FIXTURE_RATE
) -> Signal:
    """Concatenate asterisk prompts (name, pause after it in s), trimmed, padded and P.56-normalised."""
    parts: list[Signal] = []
    for name, pause_s in prompts:
        path = sounds_dir / f"{name}.wav"
        try:
            x, r = read_wav(path)
        except AudioInputError as exc:
            raise FixtureBuildError(f"{exc} (install Debian package asterisk-core-sounds-en-wav)") from exc
        if r != rate:
            x = resample_poly(x, rate, r)
        parts += [_trim(x, rate), np.zeros(round(pause_s * rate))]
    speech = np.concatenate(parts)
    return normalise(synth.pad(speech, rate, EDGE_SILENCE_S), rate, TARGET_DBOV)


def _espeak_env(private: Path) -> dict[str, str]:
    """The whole environment espeak-ng runs in: of the caller's, only PATH; everything else private.

    espeak-ng 1.51 opens an audio device even when it writes a file (``-w``), so it loads the
    PulseAudio client, which shares glibc's unseeded ``rand()`` with espeak-ng's breath noise (voices
    with ``breath``, such as the ``f3`` variant). When the client finds no valid runtime directory
    (no ``~/.config/pulse/<machine-id>-runtime`` link yet, as on a fresh machine, or one pointing to a
    ``pulse-*`` directory in the temporary directory that a reboot or cleaner removed) and
    ``XDG_RUNTIME_DIR`` is unset, it names a new ``pulse-`` directory there with 12 random characters,
    one ``rand()`` call each, per attempt: that run's speech
    carries other noise, so a first build differed from all later ones. A server address that does not
    exist, in a private runtime directory, keeps the client from drawing random numbers whatever the
    machine's state. A private HOME also keeps a user's ``~/espeak-ng-data`` (which espeak-ng would
    prefer to the system's voice data) and audio configuration out; ``ESPEAK_DATA_PATH`` is not passed.
    """
    client_conf = private / "pulse-client.conf"
    client_conf.write_text("", encoding="ascii")
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(private),
        "TMPDIR": str(private),
        "XDG_RUNTIME_DIR": str(private),
        "PULSE_SERVER": f"unix:{private / 'no-pulseaudio-server'}",
        "PULSE_CLIENTCONFIG": str(client_conf),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }


def espeak_speech(voice: str, text: str, rate: int = FIXTURE_RATE, speed_wpm: int = 150) -> Signal:
    """Speak ``text`` with espeak-ng, resample to ``rate``, trim, pad and P.56-normalise.

    espeak-ng runs in a private directory and environment (:func:`_espeak_env`), so its output does not
    depend on the machine's HOME, /tmp or audio state, nor on other processes using them.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise FixtureBuildError("espeak-ng not found (install Debian package espeak-ng)")
    with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:  # mode 0700, ours: a valid runtime dir
        private = Path(tmp)
        out = private / "espeak.wav"
        proc = subprocess.run(
            [exe, "-v", voice, "-s", str(speed_wpm), "-w", str(out), text],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            cwd=private,
            env=_espeak_env(private),
            check=False,
        )
        if proc.returncode != 0 or not out.exists():
            raise FixtureBuildError(f"espeak-ng -v {voice} failed: {proc.stderr.strip()}")
        x, r = read_wav(out)
    g = np.gcd(rate, r)
    y = resample_poly(x, rate // g, r // g)
    return normalise(synth.pad(_trim(y, rate), rate, EDGE_SILENCE_S), rate, TARGET_DBOV)


def _synthetic(rate: int) -> list[_Fixture]:
    def norm(x: Signal) -> Signal:
        return normalise(synth.pad(x, rate, EDGE_SILENCE_S), rate, TARGET_DBOV)

    return [
        _Fixture(
            "synthetic/chirp_200_3400.wav",
            norm(synth.log_chirp(200.0, 3400.0, 5.0, rate)),
            "log chirp 200-3400 Hz, 5 s",
        ),
        _Fixture(
            "synthetic/css.wav",
            norm(synth.composite_source_signal(8.0, rate)),
            "P.501-style composite source signal (voiced burst, pseudo-noise, pause), 8 s",
        ),
        _Fixture("synthetic/tone_1k.wav", norm(synth.tone(1000.0, 3.0, rate)), "1 kHz tone, 3 s"),
        _Fixture("synthetic/silence.wav", synth.silence(5.0, rate), "digital silence, 5 s"),
    ]


def _sha256(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _wav_bytes(x: Signal, rate: int) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return write_wav(Path(tmp) / "x.wav", x, rate).read_bytes()


def _attribution(fixtures: list[_Fixture]) -> str:
    lines = [
        "# Audio fixture attribution",
        "",
        "Generated by `python -m harness.audio.fixture_build` (function `harness.audio.fixture_build.build_fixtures`).",
        "",
        "## Allison Smith prompts (speech/caller.wav, speech/agent.wav)",
        "",
        "- Source: Debian package `asterisk-core-sounds-en-wav`",
        "  (upstream: asterisk-core-sounds, voice en_US_f_Allison).",
        "- Recorded by Allison Smith (http://www.theivrvoice.com);",
        "  financial contributions by Digium, Inc. (http://www.digium.com).",
        "- Copyright 2003-2010 Allison Smith.",
        "- Licence: Creative Commons Attribution-ShareAlike 3.0 (CC-BY-SA-3.0),",
        "  text as shipped by Debian in `LICENSE-asterisk-sounds.txt` beside this file.",
        "- Changes made: prompts trimmed of leading/trailing silence, concatenated with short pauses,",
        f"  normalised to {TARGET_DBOV:g} dBov (ITU-T P.56 active speech level),",
        f"  {EDGE_SILENCE_S:g} s of silence added on each side.",
        "  The derived files are shared under the same licence (CC-BY-SA-3.0).",
        "",
        "| fixture | prompts, in order (pause after each, s) |",
        "|---|---|",
        "| speech/caller.wav | " + ", ".join(f"`{n}` ({p:g})" for n, p in CALLER_PROMPTS) + " |",
        "| speech/agent.wav | " + ", ".join(f"`{n}` ({p:g})" for n, p in AGENT_PROMPTS) + " |",
        "",
        "## espeak-ng voices (speech/espeak_*.wav)",
        "",
        "Synthesised with the Debian package `espeak-ng` (text written for this project),",
        "resampled to 8 kHz, normalised the same way. Used as held-out voices in the accuracy benchmark.",
        "",
        "| fixture | voice | text |",
        "|---|---|---|",
    ]
    lines += [f"| speech/{stem}.wav | `{voice}` | {text} |" for stem, voice, text in ESPEAK_VOICES]
    lines += [
        "",
        "## Synthetic signals (synthetic/*.wav)",
        "",
        "Generated by `harness.audio.synth`; no third-party content.",
        "",
    ]
    lines += [f"- `{f.rel}`: {f.source}" for f in fixtures if f.rel.startswith("synthetic/")]
    return "\n".join(lines) + "\n"


def _licence_text(copyright_file: Path) -> str:
    """The licence as the Debian copyright file carries it (CC-BY-SA-3.0 full text included upstream)."""
    if not copyright_file.exists():
        raise FixtureBuildError(f"{copyright_file}: not found (install asterisk-core-sounds-en-wav)")
    return copyright_file.read_text(encoding="utf-8")


def build_fixtures(
    out_dir: Path,
    sounds_dir: Path = ASTERISK_SOUNDS_DIR,
    copyright_file: Path = ASTERISK_COPYRIGHT,
) -> list[Path]:
    """Create (or confirm) every fixture under ``out_dir``; returns the paths of all files it manages.

    Idempotent: unchanged files are left untouched. Raises :class:`FixtureBuildError` when a source
    package is missing.
    """
    out_dir = Path(out_dir)
    rate = FIXTURE_RATE
    fixtures = [
        _Fixture(
            "speech/caller.wav",
            prompt_speech(CALLER_PROMPTS, sounds_dir, rate),
            "asterisk prompts: " + " ".join(n for n, _ in CALLER_PROMPTS),
        ),
        _Fixture(
            "speech/agent.wav",
            prompt_speech(AGENT_PROMPTS, sounds_dir, rate),
            "asterisk prompts: " + " ".join(n for n, _ in AGENT_PROMPTS),
        ),
    ]
    fixtures += [
        _Fixture(f"speech/{stem}.wav", espeak_speech(voice, text, rate), f"espeak-ng voice {voice}")
        for stem, voice, text in ESPEAK_VOICES
    ]
    fixtures += _synthetic(rate)

    written: list[Path] = []
    manifest: dict[str, dict[str, object]] = {}
    for fx in fixtures:
        data = _wav_bytes(fx.samples, rate)
        path = out_dir / fx.rel
        _write_if_changed(path, data)
        written.append(path)
        x, _ = read_wav(path)  # describe what was written (after 16-bit rounding), not the float source
        lvl = active_level(x, rate)
        manifest[fx.rel] = {
            "duration_s": round(len(x) / rate, 4),
            "rate_hz": rate,
            "channels": 1,
            "bits": 16,
            "active_level_dbov": round(lvl.level_dbov, 2),
            "activity": round(lvl.activity, 3),
            "sha256": _sha256(data),
            "source": fx.source,
        }
    texts = {
        "ATTRIBUTION.md": _attribution(fixtures),
        "LICENSE-asterisk-sounds.txt": _licence_text(copyright_file),
        "manifest.json": json.dumps({"fixtures": manifest}, indent=2, sort_keys=True) + "\n",
    }
    for name, text in texts.items():
        path = out_dir / name
        _write_if_changed(path, text.encode("utf-8"))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.audio.fixture_build [--out DIR]``: build the fixtures, print what is there."""
    ap = argparse.ArgumentParser(prog="python -m harness.audio.fixture_build", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("audio_fixtures"), help="output directory (default: %(default)s)")
    args = ap.parse_args(argv)
    try:
        paths = build_fixtures(args.out)
    except FixtureBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
