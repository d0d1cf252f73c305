"""Building the fixtures runs espeak-ng (a process): the build reproduces the committed files byte for byte,
is idempotent, and does not depend on the caller's HOME or audio setup."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from harness.audio.fixture_build import (
    ASTERISK_SOUNDS_DIR,
    ESPEAK_VOICES,
    FIXTURE_RATE,
    _wav_bytes,
    build_fixtures,
    espeak_speech,
)

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"


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
    a pulse-* directory in the temporary directory, which shifts espeak-ng's breath noise: the first
    build differed from every later one. A user's ~/espeak-ng-data would replace the system's voice data.
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
