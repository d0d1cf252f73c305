"""The committed fixtures are what the builder makes, and the builder is idempotent."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import pytest

from harness.audio.fixtures import (
    ASTERISK_SOUNDS_DIR,
    ESPEAK_VOICES,
    FIXTURE_RATE,
    _wav_bytes,
    build_fixtures,
    espeak_speech,
)
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


@pytest.mark.skipif(
    not ASTERISK_SOUNDS_DIR.is_dir() or shutil.which("espeak-ng") is None,
    reason="needs Debian packages asterisk-core-sounds-en-wav and espeak-ng",
)
def test_build_is_idempotent_and_reproduces_the_committed_files(tmp_path: Path) -> None:
    paths = build_fixtures(tmp_path)
    stamps = {p: p.stat().st_mtime_ns for p in paths}
    assert build_fixtures(tmp_path) == paths
    assert {p: p.stat().st_mtime_ns for p in paths} == stamps  # nothing rewritten
    for p in paths:
        rel = p.relative_to(tmp_path)
        assert p.read_bytes() == (FIX / rel).read_bytes(), rel


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs Debian package espeak-ng")
@pytest.mark.parametrize("home_state", ["fresh", "own espeak-ng-data"])
def test_espeak_fixture_does_not_depend_on_the_callers_home_or_audio_setup(
    home_state: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The breathy en-us+f3 voice comes out as committed whatever HOME, /tmp and PulseAudio hold.

    espeak-ng 1.51 loads the PulseAudio client even when writing a file. On a fresh machine (no
    ~/.config/pulse runtime link yet, no XDG_RUNTIME_DIR) that client draws from glibc's rand() to name
    a /tmp/pulse-* directory, which shifts espeak-ng's breath noise: the first build differed from every
    later one. A user's ~/espeak-ng-data would replace the system's voice data.
    """
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir(mode=0o700)
    tmp.mkdir(mode=0o700)
    if home_state == "own espeak-ng-data":
        (home / "espeak-ng-data").mkdir()  # empty: espeak-ng would fail on it if it looked there
    for var in ("XDG_RUNTIME_DIR", "PULSE_SERVER", "PULSE_RUNTIME_PATH", "PULSE_CLIENTCONFIG", "ESPEAK_DATA_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", tempfile.gettempdir())  # our own temp files stay where they were
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp))
    stem, voice, text = next(v for v in ESPEAK_VOICES if v[1] == "en-us+f3")
    committed = (FIX / "speech" / f"{stem}.wav").read_bytes()
    for run in ("first run on this machine", "second run"):
        assert _wav_bytes(espeak_speech(voice, text), FIXTURE_RATE) == committed, run
