"""``bandwidth``: muffled (low-passed) audio FAILs on its own check; G.711, the telephone band and a
16 kHz (G.722-like) path pass; noise does not hide a band limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, resample_poly, sosfilt, sosfreqz

from harness.audio import analyze, read_wav
from harness.audio import impair as imp
from harness.audio.checks.check_bandwidth import channel_edges
from harness.audio.spectra import stft
from harness.contracts.verdict import Verdict

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"
RATE = 8000


@pytest.fixture(scope="module", params=["caller", "agent", "espeak_gb_m"])
def speech(request: pytest.FixtureRequest) -> np.ndarray:
    return read_wav(FIX / "speech" / f"{request.param}.wav")[0]


def _through(ref: np.ndarray, sos: np.ndarray | None, law: str = "ulaw") -> np.ndarray:
    x = np.concatenate([imp.delay(ref, RATE, 30.0), np.zeros(2400)])
    return imp.g711(sosfilt(sos, x) if sos is not None else x, law)


def _ten_db(sos: np.ndarray) -> float:
    f, h = sosfreqz(sos, worN=np.arange(0.0, RATE / 2, 1.0), fs=RATE)
    return float(f[np.flatnonzero(np.abs(h) < 10 ** (-10 / 20))[0]])


@pytest.mark.parametrize("cutoff", [800.0, 1500.0, 2500.0])
def test_low_passed_speech_fails_bandwidth(speech: np.ndarray, cutoff: float) -> None:
    sos = butter(6, cutoff, btype="lowpass", fs=RATE, output="sos")
    a = analyze(_through(speech, sos), speech, RATE)
    c = a.check("bandwidth")
    assert c is not None and c.verdict is Verdict.FAIL and "muffled" in c.detail
    assert a.bandwidth is not None and a.bandwidth["upper_hz"] == pytest.approx(_ten_db(sos), abs=50.0)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_g711_passes_everything_the_clip_holds(speech: np.ndarray, law: str) -> None:
    a = analyze(_through(speech, None, law), speech, RATE)
    c = a.check("bandwidth")
    assert c is not None and c.verdict is Verdict.PASS and c.value >= 3800.0


def test_the_telephone_band_and_a_high_pass_pass(speech: np.ndarray) -> None:
    for sos in (
        butter(6, [300.0, 3400.0], btype="bandpass", fs=RATE, output="sos"),
        butter(6, 500.0, btype="highpass", fs=RATE, output="sos"),
    ):
        a = analyze(_through(speech, sos), speech, RATE)
        c = a.check("bandwidth")
        assert c is not None and c.verdict is Verdict.PASS and c.value >= 3300.0


def test_a_16khz_wideband_path_passes() -> None:
    ref = resample_poly(read_wav(FIX / "speech" / "caller.wav")[0], 2, 1)
    rec = np.concatenate([np.zeros(480), ref, np.zeros(1600)])  # 16 kHz, 30 ms late, flat to 8 kHz (G.722-like)
    a = analyze(rec, ref, 16000)
    assert a.check("bandwidth").verdict is Verdict.PASS  # type: ignore[union-attr]


def test_noise_does_not_hide_a_band_limit(speech: np.ndarray) -> None:
    sos = butter(6, 1500.0, btype="lowpass", fs=RATE, output="sos")
    noisy = imp.white_noise(_through(speech, sos), -45.0, np.random.default_rng(3))
    a = analyze(noisy, speech, RATE)
    assert a.bandwidth is not None and a.bandwidth["upper_hz"] == pytest.approx(_ten_db(sos), abs=100.0)


def test_channel_edges_of_an_identical_signal_reach_the_reference_s() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal(RATE * 2)
    s = stft(x)
    edges = channel_edges(s, s, np.ones(len(s), dtype=bool), RATE)
    assert edges is not None and edges["upper_hz"] == edges["reference_upper_hz"] == 4000.0
    assert channel_edges(s, s, np.zeros(len(s), dtype=bool), RATE) is None  # no speech frames: nothing to say
