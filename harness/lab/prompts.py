"""The lab IVR's and queue's prompts, made from Debian's espeak-ng and sox (no recorded voices needed).

``build_prompts(dir)`` writes ``ivr-menu.wav``, ``ivr-invalid.wav`` and ``queue-music.wav`` (a simple
synthetic melody for music on hold): 8 kHz mono 16-bit, like every fixture. Idempotent.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

__all__ = ["PROMPTS", "build_prompts"]

PROMPTS = {
    "ivr-menu.wav": "For sales, press 1. For support, press 2.",
    "ivr-invalid.wav": "Sorry, that is not a valid choice.",
}
# notes of a short, recognisable loop (Hz, seconds): music on hold that is clearly not speech
MELODY = [(523.25, 0.3), (659.25, 0.3), (783.99, 0.3), (659.25, 0.3), (587.33, 0.3), (698.46, 0.3),
          (880.0, 0.6), (0, 0.3)]


def _run(argv: list[str]) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise RuntimeError(f"{argv[0]} is not installed; run scripts/setup.sh") from None
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{argv[0]} failed: {exc.stderr.decode(errors='replace').strip()}") from None


def build_prompts(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in PROMPTS.items():
            dest = out_dir / name
            if not dest.exists():
                raw = Path(tmp) / f"raw-{name}"
                _run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text])
                _run(["sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(dest), "norm", "-10",
                      "pad", "0.3", "0.3"])
            written.append(dest)
        dest = out_dir / "queue-music.wav"
        if not dest.exists():
            parts = []
            for i, (freq, dur) in enumerate(MELODY):
                part = Path(tmp) / f"note{i}.wav"
                synth = ["synth", f"{dur}", "sine", f"{freq}"] if freq else ["trim", "0", f"{dur}"]
                _run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(part), *synth, "vol", "0.08"])
                parts.append(str(part))
            _run(["sox", *parts, str(dest)])
        written.append(dest)
    return written
