"""A busy jitter buffer (delay jumps, 10 ms time-warps) and recordings shorter than the reference.

These are the lab's pjsua2 calls on a loaded machine: no echo path, yet the old residual-based echo
estimate saw one; jitter-buffer events showed as dropouts and cost MOS; a recording that ended before
the reference reported a dropout at its end.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from harness.audio import Thresholds, analyze
from harness.audio import impair as imp
from harness.audio.align import align
from harness.audio.echo import estimate_echo
from harness.contracts.verdict import Verdict

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"
RATE = 8000
DELAY_MS = 80.0
#: (reference time s, kind, ms): two events 0.35 s apart, jumps both ways, frames dropped and repeated
EVENTS = (
    (1.3, "warp", 10.0),
    (2.2, "jump", -20.0),
    (2.55, "warp", -10.0),
    (3.8, "jump", 30.0),
    (5.0, "warp", 10.0),
    (6.4, "warp", -10.0),
)



def _path(ref: np.ndarray, events: tuple[tuple[float, str, float], ...] = EVENTS) -> np.ndarray:
    """``ref`` through a jitter buffer that makes ``events``, before any codec."""
    y, shift = imp.delay(ref, RATE, DELAY_MS), 0.0
    for at_s, kind, ms in events:
        pos = at_s + (DELAY_MS + shift) / 1000.0
        y = imp.time_warp(y, RATE, pos, ms) if kind == "warp" else imp.delay_jump(y, RATE, pos, ms)
        shift += ms
    return np.concatenate([y, np.zeros(1600)])


def _jittery(ref: np.ndarray, events: tuple[tuple[float, str, float], ...] = EVENTS) -> np.ndarray:
    return imp.g711(_path(ref, events))


def _clean(ref: np.ndarray) -> np.ndarray:
    return imp.g711(np.concatenate([imp.delay(ref, RATE, DELAY_MS), np.zeros(1600)]))


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    return np.pad(x, (0, max(n - len(x), 0)))[:n]


# ---- the delay path -------------------------------------------------------------------------------
def _talks(ref: np.ndarray) -> np.ndarray:
    """Per sample: the reference talks (10 ms frames within 35 dB of its loudest)."""
    f = RATE // 100
    e = 10 * np.log10(np.mean(ref[: len(ref) // f * f].reshape(-1, f) ** 2, axis=1) + 1e-12)
    return np.pad(np.repeat(e >= e.max() - 35.0, f), (0, len(ref) % f))


def test_delay_path_follows_every_jitter_buffer_event(caller: np.ndarray) -> None:
    al = align(_jittery(caller), caller, RATE)
    assert [round(j) for _, j in al.jumps(RATE)] == [round(ms) for _, _, ms in EVENTS]
    # between the events (40 ms clear of them) every speech sample is mapped at the true delay; in a
    # pause the change may fall anywhere
    talks = _talks(caller)
    bounds = [0.0, *[at for at, _, _ in EVENTS], len(caller) / RATE]
    delay = DELAY_MS
    for i in range(len(bounds) - 1):
        lo, hi = round((bounds[i] + 0.04) * RATE), round((bounds[i + 1] - 0.04) * RATE)
        used = set(al.delay_map[lo:hi][talks[lo:hi]].tolist())
        assert used == {round(delay * RATE / 1000)}, f"between events {i} and {i + 1}"
        if i < len(EVENTS):
            delay += EVENTS[i][2]


def test_two_events_within_one_second_are_both_followed(caller: np.ndarray) -> None:
    events = ((3.0, "warp", -10.0), (3.3, "warp", 10.0))  # one-second blocks saw neither
    al = align(_jittery(caller, events), caller, RATE)
    assert [round(j) for _, j in al.jumps(RATE)] == [-10, 10]
    assert set(al.delay_map[round(3.1 * RATE) : round(3.2 * RATE)].tolist()) == {round((DELAY_MS - 10) * 8)}


def test_band_limited_path_keeps_one_delay(caller: np.ndarray) -> None:
    """A filter's phase is the channel's, not a jitter buffer's: no jumps."""
    rec = imp.g711(imp.band_limit(_clean(caller), RATE, 300.0, 2000.0))
    assert align(rec, caller, RATE).jumps(RATE) == []


def test_loud_echo_does_not_move_the_delay_path(caller: np.ndarray, agent: np.ndarray) -> None:
    path = _path(caller, ())
    rec = imp.g711(imp.add_echo(path, _fit(agent, len(path)), RATE, 40.0, 15.0))
    a = analyze(rec, caller, RATE, sent=_fit(agent, len(rec)))
    assert a.delay_jumps == [] and a.dropouts == []


# ---- problem 1: echo on a call without an echo path -----------------------------------------------
@pytest.mark.parametrize("listener", ["caller", "agent"])
def test_no_echo_path_with_jitter_buffer_events_passes(caller: np.ndarray, agent: np.ndarray, listener: str) -> None:
    ref, sent = (agent, caller) if listener == "caller" else (caller, agent)  # the listener hears the other
    rec = _jittery(ref)
    a = analyze(rec, ref, RATE, sent=_fit(sent, len(rec)))
    check = a.check("echo")
    assert a.echo is not None and not a.echo.detected
    assert check is not None and check.verdict is Verdict.PASS, check.detail
    assert check.value is not None and check.value >= 40.0
    assert "no echo found" in check.detail


@pytest.mark.parametrize("extra", ["noise", "concealment"])
def test_no_false_echo_from_noise_or_concealed_loss(caller: np.ndarray, agent: np.ndarray, extra: str) -> None:
    rng = np.random.default_rng(4)
    y = _path(caller)
    if extra == "noise":
        y = imp.white_noise(y, -65.0, rng)
    else:
        y, _ = imp.packet_loss(y, RATE, 3.0, rng, conceal=True)
    rec = imp.g711(y)
    a = analyze(rec, caller, RATE, sent=_fit(agent, len(rec)))
    check = a.check("echo")
    assert a.echo is not None and not a.echo.detected
    assert check is not None and check.verdict is Verdict.PASS, check.detail


def test_real_echo_in_a_jittery_call_is_measured_exactly(caller: np.ndarray, agent: np.ndarray) -> None:
    y = _path(caller)
    sent = _fit(agent, len(y))
    rec = imp.g711(imp.add_echo(y, sent, RATE, 120.0, 30.0))
    a = analyze(rec, caller, RATE, sent=sent)
    assert a.echo is not None and a.echo.detected
    assert a.echo.delay_ms == pytest.approx(120.0, abs=0.125)
    assert a.echo.loss_db == pytest.approx(30.0, abs=0.5)
    check = a.check("echo")
    assert check is not None and check.verdict is Verdict.FAIL


@pytest.mark.parametrize(("delay_ms", "loss_db"), [(40.0, 15.0), (250.0, 35.0), (400.0, 45.0)])
def test_echo_level_and_delay_exact_through_analyze(
    caller: np.ndarray, agent: np.ndarray, delay_ms: float, loss_db: float
) -> None:
    path = _path(caller, ())
    sent = _fit(agent, len(path))
    a = analyze(imp.g711(imp.add_echo(path, sent, RATE, delay_ms, loss_db)), caller, RATE, sent=sent)
    assert a.echo is not None and a.echo.detected
    assert a.echo.delay_ms == pytest.approx(delay_ms, abs=0.125)
    assert a.echo.loss_db == pytest.approx(loss_db, abs=0.5)


@pytest.mark.parametrize("echo_db", [None, 30.0])
def test_16khz_recording_with_an_odd_delay(caller: np.ndarray, agent: np.ndarray, echo_db: float | None) -> None:
    """pjsua2's bridge runs at 16 kHz: an odd delay is half a sample at 8 kHz, where the echo is measured."""
    wide, ref, sent = 16000, resample_poly(caller, 2, 1), resample_poly(agent, 2, 1)
    y = imp.delay(ref, wide, 1009 / 16)  # 1009 samples
    y = imp.time_warp(y, wide, 2.2 + 0.063, -161 / 16)  # and a warp of an odd number of samples
    y = np.concatenate([y, np.zeros(3200)])
    sent = _fit(sent, len(y))
    if echo_db is not None:
        y = imp.add_echo(y, sent, wide, 100.0, echo_db)
    a = analyze(y, ref, wide, sent=sent)
    assert a.echo is not None
    if echo_db is None:
        check = a.check("echo")
        assert not a.echo.detected and check is not None and check.verdict is Verdict.PASS, check.detail
    else:
        assert a.echo.detected and a.echo.delay_ms == pytest.approx(100.0, abs=0.125)
        assert a.echo.loss_db == pytest.approx(echo_db, abs=0.5)


def test_echo_without_single_talk_in_noise_is_an_error_that_says_why(caller: np.ndarray, agent: np.ndarray) -> None:
    """The listener only talks while the far end does, and the line is noisy: nothing to measure in."""
    from harness.audio.noise import reference_silence

    rec = imp.white_noise(_clean(caller), -40.0, np.random.default_rng(2))
    far_talks = np.zeros(len(rec), dtype=bool)
    start = round(DELAY_MS * RATE / 1000)
    far_talks[start : start + len(caller)] = ~reference_silence(caller, RATE, below_db=40.0)
    sent = np.where(far_talks, _fit(agent, len(rec)), 0.0)
    noisy_ok = Thresholds.from_mapping(
        {"max_noise_floor_dbov": -30.0, "min_snr_db": 10.0, "min_mos": 1.0, "max_mos_drop": 4.0}
    )
    check = analyze(rec, caller, RATE, noisy_ok, sent=sent).check("echo")
    assert check is not None and check.verdict is Verdict.ERROR
    assert "too little single talk" in check.detail
    # with the default thresholds the noise FAILs: the echo it hides is not an ERROR on top, but skipped
    a = analyze(rec, caller, RATE, sent=sent)
    assert a.check("echo") is None and a.verdict is Verdict.FAIL
    assert "too little single talk" in a.skipped["echo"] and "noise_floor" in a.skipped["echo"]


def test_weights_keep_out_what_is_not_echo(agent: np.ndarray) -> None:
    """Weighted-out stretches hold loud junk; the echo's level and delay stay exact."""
    n = len(agent) + 4000
    sent = _fit(agent, n)
    residual = imp.add_echo(np.zeros(n), sent, RATE, 50.0, 25.0)
    junk = np.zeros(n, dtype=bool)
    junk[RATE : 3 * RATE] = True
    residual[junk] += 0.3 * np.random.default_rng(1).standard_normal(int(junk.sum()))
    e = estimate_echo(residual, sent, RATE, weights=(~junk).astype(float))
    assert e.detected and e.delay_ms == pytest.approx(50.0, abs=0.125)
    assert e.loss_db == pytest.approx(25.0, abs=0.3)
    assert not estimate_echo(residual, sent, RATE).detected  # the junk, counted, hides it


# ---- problem 2: a recording shorter than the reference ---------------------------------------------
def test_recording_that_ended_early_is_judged_on_the_overlap(caller: np.ndarray, agent: np.ndarray) -> None:
    """What it holds is judged as before (no dropout at its end); that it holds too little FAILs coverage."""
    rec = _clean(caller)[: 5 * RATE]  # a probe recorded 5 s of an 8 s reference
    a = analyze(rec, caller, RATE, sent=agent[: 5 * RATE], expected_s=5.0)
    assert a.dropouts == []
    assert [c.name for c in a.checks if c.verdict is not Verdict.PASS] == ["coverage"]
    assert a.overlap_s == pytest.approx((0.0, 5.0 - DELAY_MS / 1000), abs=0.01)
    assert a.mos is not None and a.mos >= 4.0
    assert a.to_dict()["overlap_s"] == pytest.approx([0.0, 4.92], abs=0.01)
    coverage = a.check("coverage")
    assert coverage is not None and coverage.blame == "harness"  # recorded as planned: the plan was too short
    assert a.coverage is not None and a.coverage["diagnosis"] == ["recording_too_short"]
    assert "record at least 8" in coverage.detail


def test_recording_that_started_late_is_judged_on_the_overlap(caller: np.ndarray) -> None:
    rec = _clean(caller)[RATE:]  # the recorder started 1 s after the player
    a = analyze(rec, caller, RATE)
    assert a.dropouts == []
    assert a.overlap_s is not None and a.overlap_s[0] == pytest.approx(1.0 - DELAY_MS / 1000, abs=0.01)
    # without the offset the reference seems to lead the recording: impossible for a causal path
    delay = a.check("delay")
    assert delay is not None and delay.verdict is Verdict.FAIL and "impossible" in delay.detail
    told = analyze(rec, caller, RATE, start_offset_s=1.0)
    assert told.delay_ms == pytest.approx(DELAY_MS, abs=0.2)
    assert [c.name for c in told.checks if c.verdict is not Verdict.PASS] == ["coverage"]
    assert told.coverage is not None and told.coverage["diagnosis"] == ["recording_started_late"]


def test_short_recording_still_reports_a_dropout_inside_it(caller: np.ndarray) -> None:
    rec = imp.dropout(_clean(caller), RATE, 2.95 + DELAY_MS / 1000, 120.0)[: 5 * RATE]
    a = analyze(rec, caller, RATE)
    assert [(round(d.start_s, 2), round(d.end_s, 2)) for d in a.dropouts] == [(2.95, 3.07)]


def test_silence_recorded_after_the_call_is_a_dropout(caller: np.ndarray) -> None:
    """The recorder kept running after the audio stopped: that is a dropout, not a short recording."""
    rec = np.concatenate([_clean(caller)[: 5 * RATE], np.zeros(4 * RATE)])
    a = analyze(rec, caller, RATE)
    assert a.overlap_s is None
    assert len(a.dropouts) == 1 and a.dropouts[0].start_s == pytest.approx(4.92, abs=0.02)


def test_recording_of_only_the_references_silence_is_an_error(caller: np.ndarray) -> None:
    rec = imp.white_noise(np.zeros(3000), -30.0, np.random.default_rng(3))  # not silent, yet nothing to judge
    a = analyze(rec, caller, RATE)
    assert a.verdict is not Verdict.PASS


# ---- problem 3: MOS and dropouts with jitter-buffer events -----------------------------------------
@pytest.mark.parametrize("who", ["caller", "agent"])
def test_jitter_buffer_events_cost_little_mos_and_no_dropout(caller: np.ndarray, agent: np.ndarray, who: str) -> None:
    ref = caller if who == "caller" else agent
    clean, jittery = analyze(_clean(ref), ref, RATE), analyze(_jittery(ref), ref, RATE)
    assert clean.mos is not None and jittery.mos is not None
    assert jittery.mos >= clean.mos - 0.5 and jittery.mos >= 3.5  # PESQ: 3.50 / 3.70 for these two
    assert jittery.dropouts == []
    assert len(jittery.delay_jumps) == len(EVENTS)
    assert jittery.verdict is Verdict.PASS, [c for c in jittery.checks if c.verdict is not Verdict.PASS]


def test_a_small_jump_and_warp_cost_what_pesq_says(caller: np.ndarray) -> None:
    """PESQ: 4.17 clean, 4.07 with the warp, 3.79 with both (its utterance re-alignment); ours tracks it."""
    events = ((2.2, "warp", -10.0), (3.3, "jump", 20.0))  # both inside words
    clean = analyze(_clean(caller), caller, RATE)
    warp, both = (analyze(_jittery(caller, ev), caller, RATE) for ev in (events[:1], events))
    assert clean.mos is not None and warp.mos is not None and both.mos is not None
    assert warp.mos >= clean.mos - 0.1
    assert both.mos >= clean.mos - 0.35
    assert warp.dropouts == [] and both.dropouts == []


def test_delay_jump_in_mid_speech_is_the_jumps_gap_not_a_dropout(caller: np.ndarray) -> None:
    rec = _jittery(caller, ((3.3, "jump", 40.0),))  # the jitter buffer grew by 40 ms inside a word
    a = analyze(rec, caller, RATE)
    assert a.dropouts == []
    assert [(round(j["jump_ms"]), j["gap_ms"]) for j in a.delay_jumps] == [(40, pytest.approx(40.0, abs=0.5))]
    variation = a.check("delay_variation")
    assert variation is not None and "mid-speech" in variation.detail
    big = analyze(_jittery(caller, ((3.3, "jump", 150.0),)), caller, RATE).check("delay_variation")
    assert big is not None and big.verdict is Verdict.FAIL  # a stall is still judged, as a jump


def test_real_dropout_among_jitter_buffer_events_is_still_found(caller: np.ndarray) -> None:
    rec = _jittery(imp.dropout(caller, RATE, 2.95, 120.0))  # a lost talk spurt, then the jitter buffer
    a = analyze(rec, caller, RATE)
    assert [(round(d.start_s, 2), round(d.end_s, 2)) for d in a.dropouts] == [(2.95, 3.07)]
