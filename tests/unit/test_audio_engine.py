"""The engine's plumbing: the metric registry, the shared spectra, the exact fast paths of the
alignment (one delay first, the Viterbi search), and clean lab-like calls passing with margin."""

from __future__ import annotations

import importlib
import itertools
import pkgutil
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, fftconvolve, sosfiltfilt

import harness.audio.checks as checks
from harness.audio import CHECK_NAMES, RtpStats, analyze
from harness.audio import delaypath as dp
from harness.audio import impair as imp
from harness.audio.align import align
from harness.audio.blockcorr import block_corrs
from harness.audio.spectra import Spectra
from harness.audio.viterbi import SWITCH_COST, SWITCH_COST_PER_MS, viterbi
from harness.contracts.verdict import Verdict

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"
RATE = 8000



# ---- the registry --------------------------------------------------------------------------------------
def test_every_metric_module_is_registered_and_every_check_named() -> None:
    modules = [m.name for m in pkgutil.iter_modules(checks.__path__) if m.name != "base"]
    registered = {m.judge.__module__.rsplit(".", 1)[1] for m in checks.METRICS}
    assert set(modules) == registered
    for name in modules:
        assert importlib.import_module(f"harness.audio.checks.{name}").METRIC in checks.METRICS
    emitted = [n for m in checks.METRICS for n in m.names]
    assert sorted([*checks.GATE_NAMES, *emitted]) == sorted(CHECK_NAMES)
    assert {"coverage", "bandwidth", "mos_drop", "packet_loss"} <= set(CHECK_NAMES)


def test_checks_come_out_in_the_documented_order(caller: np.ndarray, agent: np.ndarray) -> None:
    rec = imp.g711(np.concatenate([imp.delay(caller, RATE, 30.0), np.zeros(2400)]))
    a = analyze(
        rec,
        caller,
        RATE,
        sent=np.pad(agent, (0, len(rec) - len(agent)))[: len(rec)] if len(agent) < len(rec) else agent[: len(rec)],
        rtp=RtpStats("PCMU", 0.0, 0.4, 0.5),
    )
    names = [c.name for c in a.checks]
    assert names == [n for n in CHECK_NAMES if n in names] and set(names) == set(CHECK_NAMES)


# ---- shared spectra ------------------------------------------------------------------------------------
def test_spectra_band_is_a_zero_phase_butterworth(caller: np.ndarray) -> None:
    s = Spectra(caller, RATE)
    want = sosfiltfilt(butter(4, [300.0, 3400.0], btype="bandpass", fs=RATE, output="sos"), caller)
    got = s.band(300.0, 3400.0)
    inner = slice(RATE // 10, -RATE // 10)  # the edges differ: filtfilt pads by reflection, the FFT with zeros
    assert np.max(np.abs(got[inner] - want[inner])) < 1e-3 * np.max(np.abs(want))
    assert s.band(300.0, 3400.0) is got  # kept for the next metric
    assert s.band_power(300.0, 3400.0) == pytest.approx(float(np.mean(got**2)), rel=1e-6)


def test_batched_block_correlations_equal_one_by_one(caller: np.ndarray) -> None:
    rec = np.concatenate([np.zeros(500), caller, np.zeros(300)]) + 1e-3 * np.random.default_rng(0).standard_normal(
        len(caller) + 800
    )
    starts = [5000, 20000, 30000, 58500]  # the last block's search window runs past the recording
    blocks = [caller[s : s + 4000] for s in starts]
    for (lags, corr), s, blk in zip(block_corrs(rec, blocks, starts, 480, 2000), starts, blocks, strict=True):
        lo, hi = max(s + 480 - 2000, 0), min(s + 480 + 2000 + len(blk), len(rec))
        seg = rec[lo:hi]
        num = fftconvolve(seg, blk[::-1], mode="valid")
        e = np.convolve(seg**2, np.ones(len(blk)), mode="valid")
        want = num / np.sqrt(np.maximum(e, 1e-20) * np.sum(blk**2))
        assert np.allclose(corr, want, atol=1e-9) and lags[0] == lo - s
        assert lags[int(np.argmax(corr))] == 500 or s == 58500  # mostly the closing silence


# ---- the alignment's fast paths are exact --------------------------------------------------------------
def _reference_viterbi_cost(costs: np.ndarray, cands: list[int], rate: int) -> float:
    pos = np.asarray(cands, dtype=float) * 1000.0 / rate * SWITCH_COST_PER_MS
    trans = SWITCH_COST + np.abs(pos[:, None] - pos[None, :])
    np.fill_diagonal(trans, 0.0)
    acc = np.zeros(len(cands))
    for f in range(costs.shape[1]):
        acc = np.min(acc[:, None] + trans, axis=0) + costs[:, f]
    return float(acc.min())


def _path_cost(path: np.ndarray, costs: np.ndarray, cands: list[int], rate: int) -> float:
    pos = np.asarray(cands, dtype=float) * 1000.0 / rate * SWITCH_COST_PER_MS
    total = float(costs[path, np.arange(len(path))].sum())
    for a, b in itertools.pairwise(path):
        if a != b:
            total += SWITCH_COST + abs(pos[a] - pos[b])
    return total


def test_the_viterbi_search_finds_the_cheapest_path() -> None:
    rng = np.random.default_rng(3)
    for _ in range(40):
        k, nf = int(rng.integers(1, 9)), int(rng.integers(1, 150))
        costs = np.round(rng.random((k, nf)), 1)
        costs[:, rng.random(nf) < 0.3] = 0.0  # silent frames: the same for every delay
        cands = sorted(rng.choice(np.arange(-800, 800), k, replace=False).tolist())
        path = viterbi(costs, cands, RATE)
        assert _path_cost(path, costs, cands, RATE) == pytest.approx(_reference_viterbi_cost(costs, cands, RATE))


@pytest.mark.parametrize("case", ["clean", "noise", "plc", "dropout", "jump"])
def test_one_delay_first_gives_the_full_paths_answer(
    caller: np.ndarray, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate([imp.delay(caller, RATE, 45.0), np.zeros(1600)])
    if case == "noise":
        x = imp.white_noise(x, -45.0, rng)
    elif case == "plc":
        x = imp.packet_loss(x, RATE, 5.0, rng, conceal=True)[0]
    elif case == "dropout":
        x = imp.dropout(x, RATE, 3.0, 150.0)
    elif case == "jump":
        x = imp.delay_jump(x, RATE, 3.3, 20.0)
    rec = imp.g711(x)
    fast = align(rec, caller, RATE)
    monkeypatch.setattr(dp, "ONE_DELAY_FIRST", False)
    full = align(rec, caller, RATE)
    assert np.array_equal(fast.delay_map, full.delay_map)
    assert fast.fillers == full.fillers and fast.skips == full.skips


# ---- clean lab-like calls pass with margin -------------------------------------------------------------
@pytest.mark.parametrize("law", ["ulaw", "alaw"])
@pytest.mark.parametrize("delay_ms", [5.0, 60.0])
@pytest.mark.parametrize("jump_ms", [0.0, 20.0])
def test_clean_lab_calls_pass_with_margin(
    caller: np.ndarray, agent: np.ndarray, law: str, delay_ms: float, jump_ms: float
) -> None:
    for ref, other in ((caller, agent), (agent, caller)):
        y = imp.delay(ref, RATE, delay_ms)
        if jump_ms:
            y = imp.delay_jump(y, RATE, 3.3 + delay_ms / 1000, jump_ms)  # a jitter-buffer jump in mid-speech
        rec = imp.g711(np.concatenate([y, np.zeros(2400)]), law)
        sent = np.pad(other, (0, max(len(rec) - len(other), 0)))[: len(rec)]
        rtp = RtpStats("PCMU" if law == "ulaw" else "PCMA", 0.0, 0.4, 0.5, jitter_buffer_ms=40.0)
        a = analyze(rec, ref, RATE, sent=sent, rtp=rtp, expected_s=len(rec) / RATE)
        assert a.verdict is Verdict.PASS, [(c.name, c.value) for c in a.checks if c.verdict is not Verdict.PASS]
        assert a.mos_drop is not None and a.mos_drop <= 0.35
        assert a.bandwidth is not None and a.bandwidth["upper_hz"] >= 3800.0
        assert a.coverage is not None and a.coverage["share_pct"] == 100.0
        assert a.emodel is not None and a.emodel.r >= 90.0
        assert a.noise_floor_dbov is not None and a.noise_floor_dbov <= -70.0  # A-law's idle code is -72 dBov
