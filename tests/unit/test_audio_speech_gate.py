"""Hiss is not audio: steady noise or a tone at any level is "no audio" (one-way audio when the
listener sends), never "wrong audio"; speech over heavy noise still is audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.audio import analyze
from harness.audio import impair as imp
from harness.audio.gate import modulation_db
from harness.contracts.verdict import Verdict

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"
RATE = 8000



@pytest.mark.parametrize("level", [-45.0, -55.0, -65.0])
@pytest.mark.parametrize("kind", ["white", "pink"])
def test_hiss_alone_is_one_way_audio_not_wrong_audio(
    caller: np.ndarray, agent: np.ndarray, level: float, kind: str
) -> None:
    rng = np.random.default_rng(5)
    noise = imp.white_noise if kind == "white" else imp.pink_noise
    rec = imp.g711(noise(np.zeros(len(caller) + 2400), level, rng))
    a = analyze(rec, caller, RATE, sent=np.pad(agent, (0, max(len(rec) - len(agent), 0)))[: len(rec)])
    present = a.check("audio_present")
    assert present is not None and present.verdict is Verdict.FAIL
    assert a.no_audio and a.one_way is True and a.wrong_audio is None
    assert "one-way audio" in present.detail
    assert ("steady noise" if level > -60.0 else "level -6") in present.detail  # -65 dBov is too quiet anyway
    assert a.check("reference_match") is None and "reference_match" in a.skipped


def test_hiss_without_a_sent_signal_is_no_audio(caller: np.ndarray) -> None:
    rec = imp.g711(imp.pink_noise(np.zeros(len(caller)), -55.0, np.random.default_rng(1)))
    a = analyze(rec, caller, RATE)
    assert a.no_audio and a.checks[0].verdict is Verdict.FAIL and "no audio received" in a.checks[0].detail


def test_a_steady_tone_is_no_speech(caller: np.ndarray) -> None:
    tone = imp.g711(0.05 * np.sin(2 * np.pi * 425 * np.arange(len(caller)) / RATE))
    assert analyze(tone, caller, RATE).no_audio


@pytest.mark.parametrize("level", [-45.0, -35.0, -30.0])
def test_speech_over_heavy_noise_is_still_audio(caller: np.ndarray, level: float) -> None:
    rec = imp.g711(
        imp.white_noise(np.concatenate([np.zeros(320), caller, np.zeros(800)]), level, np.random.default_rng(2))
    )
    a = analyze(rec, caller, RATE)
    assert not a.no_audio and not a.wrong_audio
    assert a.modulation_db is not None and a.modulation_db >= 9.0


def test_modulation_separates_steady_noise_from_speech(caller: np.ndarray) -> None:
    rng = np.random.default_rng(4)
    for level in (-75.0, -45.0):
        assert modulation_db(imp.g711(imp.pink_noise(np.zeros(9 * RATE), level, rng)), RATE) < 2.5
    assert modulation_db(imp.g711(caller), RATE) > 25.0
    assert modulation_db(np.zeros(RATE), RATE) == 0.0  # digital silence: no frames to judge


def test_a_steady_reference_does_not_need_a_moving_received(caller: np.ndarray) -> None:
    """A tone played as the reference arrives as a tone: that is audio, judged against the reference."""
    t = np.arange(4 * RATE) / RATE
    ref = np.concatenate([np.zeros(RATE // 2), 0.1 * np.sin(2 * np.pi * 1000 * t)])
    a = analyze(imp.g711(ref), ref, RATE)
    assert not a.no_audio
