"""Each detector on generated signals: it fires on the impairment and stays quiet on a clean path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.audio import impair as imp
from harness.audio import read_wav
from harness.audio.align import align, gcc_phat
from harness.audio.clipping import detect_clipping
from harness.audio.dropouts import find_dropouts
from harness.audio.echo import estimate_echo, remove_reference
from harness.audio.level import active_level, gain_track, level_stability, normalise, rms_dbov
from harness.audio.noise import measure_noise, reference_silence
from harness.audio.synth import composite_source_signal, log_chirp, tone

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"
RATE = 8000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return read_wav(FIX / "speech" / "caller.wav")[0]


@pytest.fixture(scope="module")
def other() -> np.ndarray:
    return read_wav(FIX / "speech" / "agent.wav")[0]


# ---- level ---------------------------------------------------------------------------------------
def test_p56_level_of_a_continuous_sine() -> None:
    x = 0.1 * np.sin(2 * np.pi * 1000 * np.arange(4 * RATE) / RATE)
    lvl = active_level(x, RATE)
    assert lvl.level_dbov == pytest.approx(-23.0, abs=0.1)
    assert lvl.activity > 0.95


def test_p56_ignores_pauses_where_rms_does_not(speech: np.ndarray) -> None:
    padded = np.concatenate([speech, np.zeros(10 * RATE)])
    assert active_level(padded, RATE).level_dbov == pytest.approx(active_level(speech, RATE).level_dbov, abs=0.2)
    assert rms_dbov(padded) < rms_dbov(speech) - 3


def test_silence_has_no_level() -> None:
    lvl = active_level(np.zeros(RATE), RATE)
    assert lvl.activity == 0.0 and lvl.level_dbov <= -120


def test_normalise_hits_the_target(speech: np.ndarray) -> None:
    assert active_level(normalise(speech * 0.1, RATE, -30.0), RATE).level_dbov == pytest.approx(-30.0, abs=0.01)


def test_level_stability_sees_a_step_and_not_a_clean_path(speech: np.ndarray) -> None:
    mask = np.abs(speech) > 1e-3
    clean = level_stability(gain_track(imp.g711(speech), speech, RATE, mask))
    stepped = level_stability(gain_track(imp.gain_ramp(speech, RATE, 4.0, -10.0), speech, RATE, mask))
    assert clean < 0.5
    assert stepped == pytest.approx(10.0, abs=1.0)


# ---- alignment -----------------------------------------------------------------------------------
@pytest.mark.parametrize("delay_ms", [0.0, 12.5, 187.375, 1500.0])
def test_gcc_phat_finds_the_delay_through_a_codec(speech: np.ndarray, delay_ms: float) -> None:
    rec = imp.g711(imp.delay(speech, RATE, delay_ms), "alaw")
    lag, peak = gcc_phat(rec, speech, RATE)
    assert lag / RATE * 1000 == pytest.approx(delay_ms, abs=0.125)
    assert peak > 20


def test_received_that_starts_late_has_negative_delay(speech: np.ndarray) -> None:
    lag, _ = gcc_phat(speech[800:], speech, RATE)
    assert lag == pytest.approx(-800, abs=0.5)


def test_delay_track_follows_a_jitter_buffer_jump(speech: np.ndarray) -> None:
    rec = imp.g711(imp.delay_jump(imp.delay(speech, RATE, 50.0), RATE, 4.05, 40.0))
    al = align(rec, speech, RATE)
    delays = {round(b.delay_ms) for b in al.track if b.measured}
    assert delays == {50, 90}
    assert [round(j) for _, j in al.jumps(RATE)] == [40]
    # after the jump the aligned signal matches the reference again
    tail = slice(5 * RATE, 7 * RATE)
    err = np.sum((al.aligned[tail] - speech[tail]) ** 2) / np.sum(speech[tail] ** 2)
    assert err < 0.01


def test_no_jump_on_a_steady_path(speech: np.ndarray) -> None:
    al = align(imp.g711(imp.delay(speech, RATE, 70.0)), speech, RATE)
    assert al.jumps(RATE) == []
    assert al.delay_range_ms(RATE) == 0.0


# ---- dropouts ------------------------------------------------------------------------------------
def test_dropout_found_with_its_times(speech: np.ndarray) -> None:
    rec = imp.g711(imp.dropout(speech, RATE, 2.95, 120.0))  # inside a loud word
    events = find_dropouts(rec, speech, RATE)
    assert len(events) == 1
    assert events[0].start_s == pytest.approx(2.95, abs=0.015)
    assert events[0].end_s == pytest.approx(3.07, abs=0.015)


@pytest.mark.parametrize("path", ["ulaw", "alaw", "gain", "noise", "band"])
def test_no_dropouts_on_an_unbroken_path(speech: np.ndarray, path: str) -> None:
    rng = np.random.default_rng(3)
    rec = {
        "ulaw": lambda: imp.g711(speech),
        "alaw": lambda: imp.g711(speech, "alaw"),
        "gain": lambda: imp.scale_db(speech, -15.0),
        "noise": lambda: imp.white_noise(speech, -55.0, rng),
        "band": lambda: imp.band_limit(speech, RATE, 500.0, 2500.0),
    }[path]()
    assert find_dropouts(rec, speech, RATE) == []


def test_short_gap_below_the_minimum_is_ignored(speech: np.ndarray) -> None:
    assert find_dropouts(imp.dropout(speech, RATE, 1.55, 10.0), speech, RATE) == []


# ---- noise ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("level", [-65.0, -50.0, -40.0])
def test_noise_floor_measured_in_reference_silence(speech: np.ndarray, level: float) -> None:
    rng = np.random.default_rng(5)
    rec = imp.white_noise(speech, level, rng)
    res = measure_noise(rec, np.ones(len(rec), dtype=bool), speech, RATE, -26.0)
    assert res.floor_dbov == pytest.approx(level, abs=1.0)
    assert res.snr_db == pytest.approx(-26.0 - level, abs=1.0)


def test_clean_codec_path_has_a_silent_floor(speech: np.ndarray) -> None:
    res = measure_noise(imp.g711(speech), np.ones(len(speech), dtype=bool), speech, RATE, -26.0)
    assert res.floor_dbov < -90


def test_a_burst_at_the_start_of_the_recording_is_not_noise(speech: np.ndarray) -> None:
    """A recorder attached mid-call first gets leftover audio (50 ms at -33 dBov): not the line's noise."""
    rec = imp.g711(speech).copy()
    n = round(0.05 * RATE)
    rec[:n] = 10 ** (-33 / 20) * np.sqrt(2) * np.sin(2 * np.pi * 440 * np.arange(n) / RATE)
    assert measure_noise(rec, np.ones(len(rec), dtype=bool), speech, RATE, -26.0).floor_dbov < -90
    late = rec.copy()  # the same burst later in a silence is noise
    j = round(0.25 * RATE)
    late[j:j + n], late[:n] = rec[:n], 0.0
    assert measure_noise(late, np.ones(len(late), dtype=bool), speech, RATE, -26.0).floor_dbov > -60


def test_noise_not_measurable_without_reference_silence() -> None:
    continuous = log_chirp(200, 3400, 3.0, RATE)
    assert not reference_silence(continuous, RATE).any()
    res = measure_noise(continuous, np.ones(len(continuous), dtype=bool), continuous, RATE, -26.0)
    assert np.isnan(res.floor_dbov) and np.isnan(res.snr_db)


def test_reference_silence_excludes_speech_edges() -> None:
    css = composite_source_signal(3.0, RATE)
    padded = np.concatenate([np.zeros(RATE), css, np.zeros(RATE)])
    sil = reference_silence(padded, RATE)
    assert sil[: RATE - 400].all()  # the lead-in, less the 50 ms guard
    assert not sil[RATE - 300 : RATE + 300].any()


# ---- clipping ------------------------------------------------------------------------------------
@pytest.mark.parametrize("law", ["none", "ulaw", "alaw"])
def test_clipping_found_after_any_path(speech: np.ndarray, law: str) -> None:
    y = imp.clip(speech, 0.4 * float(np.max(np.abs(speech))))
    y = y if law == "none" else imp.g711(y, law)
    res = detect_clipping(y)
    assert res.clipped and res.ratio_pct > 0.1 and res.runs >= 2


def test_g711_overload_is_clipping(speech: np.ndarray) -> None:
    res = detect_clipping(imp.g711(imp.scale_db(speech, 14.0)))  # peaks far above full scale
    assert res.clipped
    assert res.clip_level == pytest.approx(32124 / 32768, abs=1e-4)


@pytest.mark.parametrize("case", ["speech", "ulaw", "loud_ulaw", "tone", "chirp", "silence"])
def test_no_clipping_on_clean_signals(speech: np.ndarray, case: str) -> None:
    x = {
        "speech": lambda: speech,
        "ulaw": lambda: imp.g711(speech),
        "loud_ulaw": lambda: imp.g711(imp.scale_db(speech, 7.0)),  # peak near -1.5 dBFS, not clipped
        "tone": lambda: tone(1000.0, 2.0, RATE, 0.9),  # the 1 kHz peaks repeat exactly, never in runs
        "chirp": lambda: log_chirp(200.0, 3400.0, 2.0, RATE, 0.9),
        "silence": lambda: np.zeros(RATE),
    }[case]()
    assert not detect_clipping(x).clipped


# ---- echo ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("delay_ms", "loss_db"), [(30.0, 20.0), (180.0, 35.0), (420.0, 45.0)])
def test_echo_delay_and_level(speech: np.ndarray, other: np.ndarray, delay_ms: float, loss_db: float) -> None:
    n = max(len(speech), len(other)) + 4000
    sent = np.pad(other, (0, n - len(other)))
    received = np.pad(speech, (0, n - len(speech)))
    rec = imp.g711(imp.add_echo(received, sent, RATE, delay_ms, loss_db))
    residual = remove_reference(rec, speech, np.zeros(len(speech), dtype=np.int64), 1.0)
    e = estimate_echo(residual, sent, RATE)
    assert e.detected
    assert e.delay_ms == pytest.approx(delay_ms, abs=0.125)
    assert e.loss_db == pytest.approx(loss_db, abs=0.5)


def test_no_echo_on_a_clean_path(speech: np.ndarray, other: np.ndarray) -> None:
    n = max(len(speech), len(other))
    sent = np.pad(other, (0, n - len(other)))
    rec = imp.g711(np.pad(speech, (0, n - len(speech))))
    residual = remove_reference(rec, speech, np.zeros(len(speech), dtype=np.int64), 1.0)
    e = estimate_echo(residual, sent, RATE)
    assert not e.detected
    assert e.bound_db > 45  # an echo louder than this would have shown


def test_echo_with_silent_sent_signal_is_not_measurable(speech: np.ndarray) -> None:
    e = estimate_echo(speech, np.zeros(len(speech)), RATE)
    assert not e.detected and np.isnan(e.bound_db)
