"""``coverage``: how much of the reference was judged, and why not all; the delay's lower bound and the
start offset. A recording cut short, started late, or whose media started late or stopped, FAILs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.audio import analyze
from harness.audio import impair as imp
from harness.contracts.verdict import Verdict

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"
RATE = 8000
DELAY_MS = 40.0



def _call(ref: np.ndarray, tail_s: float = 0.3) -> np.ndarray:
    """``ref`` as a clean lab call delivers it: 40 ms late, G.711, a little silence after."""
    return imp.g711(np.concatenate([imp.delay(ref, RATE, DELAY_MS), np.zeros(round(tail_s * RATE))]))


def _failing(a: object) -> list[str]:
    return [c.name for c in a.checks if c.verdict is not Verdict.PASS]  # type: ignore[attr-defined]


def test_a_whole_recording_is_fully_covered(caller: np.ndarray) -> None:
    a = analyze(_call(caller), caller, RATE, expected_s=len(_call(caller)) / RATE)
    c = a.check("coverage")
    assert c is not None and c.verdict is Verdict.PASS and c.value == 100.0
    assert a.coverage is not None and a.coverage["diagnosis"] == []
    assert a.coverage["judged_s"] == [0.0, pytest.approx(len(caller) / RATE, abs=0.01)]
    assert 4.0 < a.coverage["speech_s"] < len(caller) / RATE  # active speech, not the padding
    assert "judged 0.00-7.96 s" in c.detail


@pytest.mark.parametrize("frac", [0.4, 0.65, 0.85])
def test_a_recording_cut_short_fails_coverage(caller: np.ndarray, frac: float) -> None:
    rec = _call(caller)[: round(frac * len(caller))]
    a = analyze(rec, caller, RATE)
    c = a.check("coverage")
    assert c is not None and c.verdict is Verdict.FAIL and c.value < 90.0
    assert a.coverage is not None and a.coverage["diagnosis"] == ["recording_ended_early"]
    assert "with received audio to its end" in c.detail
    assert a.mos is not None and a.mos > 4.0  # what was heard was fine: only coverage says it was too little


def test_the_planned_length_tells_a_dropped_call_from_a_short_recording(caller: np.ndarray) -> None:
    rec = _call(caller)[: round(0.6 * len(caller))]
    dropped = analyze(rec, caller, RATE, expected_s=9.0)  # meant to last 9 s, ended after 4.8
    short = analyze(rec, caller, RATE, expected_s=len(rec) / RATE)  # lasted as planned: the plan was short
    assert dropped.coverage is not None and dropped.coverage["diagnosis"] == ["call_dropped"]
    assert short.coverage is not None and short.coverage["diagnosis"] == ["recording_too_short"]
    d, s = dropped.check("coverage"), short.check("coverage")
    assert d is not None and s is not None and d.verdict is Verdict.FAIL and s.verdict is Verdict.ERROR
    assert d.blame == "" and s.blame == "harness"  # the target dropped it / the harness recorded too little
    assert "record at least 8.1 s" in s.detail


@pytest.mark.parametrize("late_s", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("hiss", [False, True])
def test_media_that_starts_late_fails_coverage(caller: np.ndarray, late_s: float, hiss: bool) -> None:
    rec = _call(caller)
    rec[: round((late_s + DELAY_MS / 1000) * RATE)] = 0.0  # the recorder ran, the first seconds never came
    if hiss:  # comfort noise where the speech should be is not speech heard
        rec = imp.pink_noise(rec, -55.0, np.random.default_rng(4))
    a = analyze(rec, caller, RATE)
    c = a.check("coverage")
    assert c is not None and c.verdict is Verdict.FAIL
    assert a.coverage is not None and a.coverage["diagnosis"] == ["media_started_late"]
    assert a.coverage["heard_s"][0] == pytest.approx(late_s, abs=0.3)
    assert "media started late" in c.detail


def test_media_that_stops_while_the_recorder_runs_fails_coverage(caller: np.ndarray) -> None:
    rec = _call(caller, tail_s=0.0)
    rec[round(4.5 * RATE) :] = 0.0
    a = analyze(rec, caller, RATE)
    assert a.coverage is not None and a.coverage["diagnosis"] == ["media_stopped"]
    assert a.check("coverage").verdict is Verdict.FAIL  # type: ignore[union-attr]
    assert a.dropouts  # still reported as a dropout too, as before


def test_a_recorder_started_late_is_the_harnesss_fault_when_the_caller_says_so(caller: np.ndarray) -> None:
    rec = _call(caller)[round(1.5 * RATE) :]  # the recorder started 1.5 s after the player
    a = analyze(rec, caller, RATE, start_offset_s=1.5)
    c = a.check("coverage")
    assert c is not None and c.verdict is Verdict.ERROR and c.blame == "harness"  # not the target's: no FAIL
    assert a.coverage is not None and a.coverage["diagnosis"] == ["recording_started_late"]
    assert a.delay_ms == pytest.approx(DELAY_MS, abs=0.2)
    assert _failing(a) == ["coverage"]


def test_coverage_is_not_judged_without_audio(caller: np.ndarray) -> None:
    a = analyze(np.zeros(len(caller)), caller, RATE)
    assert "coverage" in a.skipped and a.check("coverage") is None


# ---- delay: a lower bound, and the start offset taken out ---------------------------------------------
def test_a_negative_delay_is_impossible(caller: np.ndarray) -> None:
    rec = _call(caller)[round(2.0 * RATE) :]  # the reference seems to lead the recording by ~2 s
    a = analyze(rec, caller, RATE)
    d = a.check("delay")
    assert d is not None and d.verdict is Verdict.FAIL and d.op == ">=" and d.threshold == -30.0
    assert a.delay_ms is not None and a.delay_ms < -1900
    assert "impossible" in d.detail and "start_offset_s" in d.detail


def test_the_start_offset_is_taken_out_of_the_delay(caller: np.ndarray) -> None:
    rec = np.concatenate([np.zeros(round(0.3 * RATE)), _call(caller)])  # the recorder started 0.3 s first
    plain = analyze(rec, caller, RATE)
    told = analyze(rec, caller, RATE, start_offset_s=-0.3)
    assert plain.delay_ms == pytest.approx(340.0, abs=0.2)  # the recording's lag: fails G.114's 150 ms
    assert plain.check("delay").verdict is Verdict.FAIL  # type: ignore[union-attr]
    assert told.delay_ms == pytest.approx(DELAY_MS, abs=0.2) and told.recording_lag_ms == pytest.approx(340.0, abs=0.2)
    assert told.verdict is Verdict.PASS, _failing(told)
    assert told.delay_track[0]["delay_ms"] == pytest.approx(DELAY_MS, abs=0.2)


def test_a_recorder_a_frame_late_is_within_the_tolerance(caller: np.ndarray) -> None:
    rec = imp.g711(np.concatenate([caller, np.zeros(2400)]))[round(0.015 * RATE) :]  # 15 ms late, no path delay
    a = analyze(rec, caller, RATE)
    assert a.delay_ms == pytest.approx(-15.0, abs=0.2)
    assert a.verdict is Verdict.PASS, _failing(a)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1"])
def test_bad_offsets_are_value_errors(caller: np.ndarray, bad: object) -> None:
    with pytest.raises(ValueError, match="start_offset_s"):
        analyze(caller, caller, RATE, start_offset_s=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expected_s"):
        analyze(caller, caller, RATE, expected_s=0.0)
