"""The impairment generators the benchmark and the tests rely on."""

from __future__ import annotations

import numpy as np
import pytest

from harness.audio import impair as imp
from harness.audio.synth import composite_source_signal, log_chirp, pad, silence, tone

RATE = 8000


def test_packet_loss_is_reproducible_and_near_the_rate() -> None:
    x = np.ones(60 * RATE)
    a, lost_a = imp.packet_loss(x, RATE, 5.0, np.random.default_rng(1))
    b, lost_b = imp.packet_loss(x, RATE, 5.0, np.random.default_rng(1))
    assert lost_a == lost_b and np.array_equal(a, b)
    assert len(lost_a) / 3000 == pytest.approx(0.05, abs=0.015)
    assert not a[lost_a[0] * 160 : (lost_a[0] + 1) * 160].any()


def test_bursty_loss_keeps_the_rate_and_makes_runs() -> None:
    x = np.ones(120 * RATE)
    _, lost = imp.packet_loss(x, RATE, 5.0, np.random.default_rng(2), burst=3.0)
    assert len(lost) / 6000 == pytest.approx(0.05, abs=0.02)
    runs = np.sum(np.diff(lost) == 1)
    assert runs > len(lost) / 2


def test_concealment_repeats_the_last_packet() -> None:
    x = np.sin(np.arange(10 * RATE) / 3.0)
    y, lost = imp.packet_loss(x, RATE, 10.0, np.random.default_rng(3), conceal=True)
    i = next(k for k in lost if k - 1 not in lost and k > 0)
    assert np.any(y[i * 160 : (i + 1) * 160])


def test_delay_jump_inserts_or_drops() -> None:
    x = np.arange(1000.0)
    assert len(imp.delay_jump(x, RATE, 0.05, 10.0)) == 1080
    assert len(imp.delay_jump(x, RATE, 0.05, -10.0)) == 920


def test_time_warp_drops_or_repeats_a_frame() -> None:
    x = np.arange(1000.0)
    dropped = imp.time_warp(x, RATE, 0.05, -10.0)
    assert len(dropped) == 920
    assert dropped[399] == 399.0 and dropped[400] == 480.0  # 80 samples discarded, spliced
    repeated = imp.time_warp(x, RATE, 0.05, 10.0)
    assert len(repeated) == 1080
    assert np.array_equal(repeated[400:480], x[320:400])  # the last frame played again
    assert repeated[480] == 400.0


def test_synthetic_signals() -> None:
    assert len(pad(tone(1000.0, 1.0, RATE), RATE)) == 2 * RATE
    assert not silence(1.0, RATE).any()
    c = log_chirp(200.0, 3400.0, 2.0, RATE)
    spec = np.abs(np.fft.rfft(c))
    f = np.fft.rfftfreq(len(c), 1 / RATE)
    assert spec[(f > 300) & (f < 3300)].min() > 0.1 * spec.max()
    css = composite_source_signal(2.0, RATE)
    assert np.array_equal(css, composite_source_signal(2.0, RATE))  # deterministic
    assert (np.abs(css) < 1e-12).mean() > 0.2  # has pauses
