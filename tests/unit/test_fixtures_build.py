"""The committed fixtures are what the builder makes, and the builder is idempotent."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from harness.audio.level import active_level
from harness.audio.wavio import read_wav

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"


def test_committed_fixtures_match_their_manifest() -> None:
    manifest = json.loads((FIX / "manifest.json").read_text())["fixtures"]
    assert {"speech/caller.wav", "speech/agent.wav", "synthetic/silence.wav"} <= set(manifest)
    assert any(k.startswith("speech/espeak_") for k in manifest)
    total = 0
    for rel, meta in manifest.items():
        data = (FIX / rel).read_bytes()
        total += len(data)
        assert hashlib.sha256(data).hexdigest() == meta["sha256"], rel
        x, rate = read_wav(FIX / rel)
        assert rate == meta["rate_hz"] == 8000
        assert len(x) / rate == pytest.approx(meta["duration_s"], abs=1e-3)
    assert total < 3_000_000


@pytest.mark.parametrize("name", ["caller", "agent", "espeak_us_f", "espeak_gb_m"])
def test_speech_fixtures_are_normalised_and_padded(name: str) -> None:
    x, rate = read_wav(FIX / "speech" / f"{name}.wav")
    assert active_level(x, rate).level_dbov == pytest.approx(-26.0, abs=0.1)
    assert 7.0 <= len(x) / rate <= 10.0
    half = rate // 2
    assert not x[:half].any() and not x[-half:].any()  # 0.5 s digital silence each side


def test_caller_and_agent_differ() -> None:
    assert (FIX / "speech" / "caller.wav").read_bytes() != (FIX / "speech" / "agent.wav").read_bytes()


def test_attribution_and_licence_present() -> None:
    text = (FIX / "ATTRIBUTION.md").read_text()
    assert "Allison Smith" in text and "CC-BY-SA-3.0" in text and "Digium" in text
    assert "Attribution-ShareAlike" in (FIX / "LICENSE-asterisk-sounds.txt").read_text()
