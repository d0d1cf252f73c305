"""The perceptual MOS model: ordered by impairment, level-blind, and never from the PESQ code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.audio import impair as imp
from harness.audio import read_wav
from harness.audio.mos import perceptual_mos, raw_to_mos

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"
RATE = 8000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return read_wav(FIX / "speech" / "caller.wav")[0]


def test_identical_signal_scores_the_top(speech: np.ndarray) -> None:
    assert perceptual_mos(speech, speech, RATE).mos >= 4.4


def test_g711_scores_high(speech: np.ndarray) -> None:
    for law in ("ulaw", "alaw"):
        assert 3.9 <= perceptual_mos(speech, imp.g711(speech, law), RATE).mos <= 4.5


def test_more_noise_scores_lower(speech: np.ndarray) -> None:
    rng = np.random.default_rng(7)
    scores = [perceptual_mos(speech, imp.white_noise(speech, lvl, rng), RATE).mos for lvl in (-70, -55, -45, -35)]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] - scores[-1] > 1.5


def test_more_loss_scores_lower(speech: np.ndarray) -> None:
    scores = []
    for pct in (1.0, 5.0, 20.0):
        y, _ = imp.packet_loss(speech, RATE, pct, np.random.default_rng(11))
        scores.append(perceptual_mos(speech, y, RATE).mos)
    assert scores == sorted(scores, reverse=True)


def test_a_fixed_gain_barely_matters(speech: np.ndarray) -> None:
    base = perceptual_mos(speech, imp.g711(speech), RATE).mos
    quieter = perceptual_mos(speech, imp.g711(imp.scale_db(speech, -6.0)), RATE).mos
    assert abs(base - quieter) < 0.3


def test_16khz_input_is_scored_narrowband(speech: np.ndarray) -> None:
    from scipy.signal import resample_poly

    s16 = resample_poly(speech, 2, 1)
    assert perceptual_mos(s16, s16, 16000).mos >= 4.4


def test_raw_to_mos_is_the_p862_1_map() -> None:
    assert raw_to_mos(4.5) == pytest.approx(4.549, abs=0.01)
    assert raw_to_mos(-0.5) == pytest.approx(1.02, abs=0.01)


def test_the_model_does_not_use_pesq() -> None:
    src = (Path(__file__).resolve().parents[2] / "harness" / "audio").rglob("*.py")
    for path in src:
        assert "import pesq" not in path.read_text() and "from pesq" not in path.read_text(), path


def test_warped_frames_mark_only_the_frames_around_a_delay_change() -> None:
    from harness.audio.mos import warped_frames
    from harness.audio.spectra import HOP, N_FFT

    n = 8000
    delay_map = np.zeros(n, dtype=np.int64)
    delay_map[4000:] = 160  # the jitter buffer grew by 20 ms at 0.5 s
    marks = warped_frames(n, delay_map, [])
    frames = np.flatnonzero(marks)
    assert len(frames) and all(f * HOP <= 4000 < f * HOP + N_FFT for f in frames)
    assert not np.any(warped_frames(n, np.zeros(n, dtype=np.int64), []))
    # a filler span marks every frame it touches
    assert np.count_nonzero(warped_frames(n, np.zeros(n, dtype=np.int64), [(2000, 2400)])) > len(frames)


def test_a_gain_step_outside_warped_frames_still_counts(speech: np.ndarray) -> None:
    """Holding the gain over warped frames must not hide a real level change elsewhere."""
    from harness.audio.mos import warped_frames

    y = speech.copy()
    y[len(y) // 2 :] *= 10 ** (-20 / 20)  # the line drops 20 dB half-way
    delay_map = np.zeros(len(y), dtype=np.int64)
    delay_map[len(y) // 4 :] = 1
    warped = warped_frames(len(y), delay_map, [])
    held = perceptual_mos(speech, y, RATE, warped=warped).mos
    plain = perceptual_mos(speech, y, RATE).mos
    assert abs(held - plain) < 0.05
