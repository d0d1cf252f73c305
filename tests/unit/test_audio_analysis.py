"""The top-level analysis: gate first, codec-coded reference passes, failures never PASS."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import resample_poly

from harness.audio import CHECK_NAMES, RtpStats, Thresholds, analyze, analyze_files, write_wav
from harness.audio import impair as imp
from harness.contracts.verdict import Verdict

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"
RATE = 8000



def _received(ref: np.ndarray, law: str = "ulaw", delay_ms: float = 60.0) -> np.ndarray:
    return imp.g711(np.concatenate([imp.delay(ref, RATE, delay_ms), np.zeros(800)]), law)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_codec_coded_reference_passes_every_check(caller: np.ndarray, law: str) -> None:
    a = analyze(_received(caller, law), caller, RATE, direction="caller->agent")
    assert a.verdict is Verdict.PASS, [c for c in a.checks if c.verdict is not Verdict.PASS]
    assert a.delay_ms == pytest.approx(60.0, abs=0.2)
    assert a.mos is not None and a.mos >= 4.0
    assert not a.no_audio and not a.wrong_audio
    assert a.dropouts == []
    assert a.clipping is not None and not a.clipping.clipped
    names = [c.name for c in a.checks]
    assert names == [n for n in CHECK_NAMES if n in names]  # documented order
    assert "echo" in a.skipped  # no sent signal given


def test_no_audio_fails_the_gate_and_measures_nothing_else(caller: np.ndarray) -> None:
    a = analyze(np.zeros(len(caller)), caller, RATE)
    assert a.no_audio
    assert [c.name for c in a.checks] == ["audio_present"]
    assert a.checks[0].verdict is Verdict.FAIL
    assert "no audio" in a.checks[0].detail
    assert "mos" in a.skipped and "dropouts" in a.skipped
    assert a.mos is None and a.delay_ms is None
    assert a.verdict is Verdict.FAIL


def test_faint_hiss_is_no_audio(caller: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    a = analyze(1e-4 * rng.standard_normal(len(caller)), caller, RATE)
    assert a.no_audio and a.verdict is Verdict.FAIL


def test_one_way_audio_needs_the_sent_signal(caller: np.ndarray, agent: np.ndarray) -> None:
    a = analyze(np.zeros(len(caller)), caller, RATE, sent=agent)
    assert a.one_way is True
    assert "one-way" in a.checks[0].detail
    b = analyze(np.zeros(len(caller)), caller, RATE, sent=np.zeros(len(agent)))
    assert b.one_way is False and b.no_audio


def test_wrong_audio_fails_reference_match(caller: np.ndarray, agent: np.ndarray) -> None:
    a = analyze(_received(agent), caller, RATE)
    assert not a.no_audio and a.wrong_audio
    match = a.check("reference_match")
    assert match is not None and match.verdict is Verdict.FAIL
    assert "wrong audio" in match.detail
    assert "mos" in a.skipped and a.mos is None


def test_silent_reference_is_an_error(caller: np.ndarray) -> None:
    a = analyze(caller, np.zeros(len(caller)), RATE)
    assert a.verdict is Verdict.ERROR


def test_16khz_input_is_analysed(caller: np.ndarray) -> None:
    ref16 = resample_poly(caller, 2, 1)
    rec16 = np.concatenate([np.zeros(1600), ref16, np.zeros(1600)])
    a = analyze(rec16, ref16, 16000)
    assert a.verdict is Verdict.PASS
    assert a.delay_ms == pytest.approx(100.0, abs=0.2)


def test_to_dict_is_json_safe_with_the_agreed_keys(caller: np.ndarray, agent: np.ndarray) -> None:
    rec = imp.dropout(_received(caller), RATE, 3.0, 150)
    a = analyze(rec, caller, RATE, sent=agent, rtp=RtpStats("PCMU", 1.0, 4.0, 30.0))
    d = json.loads(json.dumps(a.to_dict(), allow_nan=False))
    for key in (
        "mos",
        "delay_ms",
        "level_dbov",
        "noise_snr_db",
        "dropouts",
        "clipping",
        "echo",
        "no_audio",
        "one_way",
        "checks",
        "coverage",
        "bandwidth",
        "mos_ceiling",
        "mos_drop",
        "codec",
        "recording_lag_ms",
        "start_offset_s",
        "modulation_db",
    ):
        assert key in d
    assert d["dropouts"] and set(d["dropouts"][0]) >= {"start_s", "end_s"}
    assert {c["name"] for c in d["checks"]} >= {
        "dropouts",
        "echo",
        "emodel_r",
        "mos",
        "mos_drop",
        "coverage",
        "bandwidth",
    }
    assert d["coverage"]["judged_s"] == [0.0, 7.96] and d["coverage"]["share_pct"] > 95.0
    assert d["verdict"] == "FAIL"  # the dropout


def test_emodel_is_judged_even_when_the_gate_fails(caller: np.ndarray) -> None:
    a = analyze(np.zeros(len(caller)), caller, RATE, rtp=RtpStats("PCMA", 0.0, 2.0, 20.0))
    assert a.check("emodel_r") is not None


def test_thresholds_change_verdicts(caller: np.ndarray) -> None:
    strict = Thresholds.from_mapping({"max_delay_ms": 10})
    a = analyze(_received(caller), caller, RATE, strict)
    check = a.check("delay")
    assert check is not None and check.verdict is Verdict.FAIL and check.threshold == 10.0


def test_analyze_files_rejects_mismatched_rates(tmp_path: Path, caller: np.ndarray) -> None:
    from harness.audio import AudioInputError

    rec = write_wav(tmp_path / "rec.wav", resample_poly(caller, 2, 1), 16000)
    with pytest.raises(AudioInputError, match="differs from the reference"):
        analyze_files(rec, FIX / "speech" / "caller.wav")


def test_bad_arrays_are_value_errors(caller: np.ndarray) -> None:
    with pytest.raises(ValueError, match="empty"):
        analyze(np.array([]), caller, RATE)
    with pytest.raises(ValueError, match="1-D"):
        analyze(np.zeros((2, 10)), caller, RATE)
    with pytest.raises(ValueError, match="below 8000"):
        analyze(caller, caller, 4000)


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"min_moss": 3}, "min_moss"),
        ({"min_mos": "high"}, "min_mos"),
        ({"min_mos": True}, "min_mos"),
        ({"max_delay_ms": -1}, "max_delay_ms"),
        ({"min_mos": float("nan")}, "min_mos"),
    ],
)
def test_thresholds_from_mapping_names_the_bad_key(mapping: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Thresholds.from_mapping(mapping)


def test_thresholds_defaults_and_overrides() -> None:
    t = Thresholds.from_mapping({"min_mos": 4, "max_dropouts": 2})
    assert t.min_mos == 4.0 and t.max_dropouts == 2.0 and t.max_delay_ms == Thresholds().max_delay_ms
    assert Thresholds.from_mapping(None) == Thresholds()


def test_a_jitter_buffer_jump_does_not_wreck_the_other_metrics(caller: np.ndarray) -> None:
    steady = analyze(_received(caller), caller, RATE)
    jumped_rx = imp.g711(
        np.concatenate([imp.delay_jump(imp.delay(caller, RATE, 60.0), RATE, 4.2, 40.0), np.zeros(800)])
    )
    jumped = analyze(jumped_rx, caller, RATE)
    assert jumped.delay_variation_ms == pytest.approx(40.0, abs=0.2)
    assert len(jumped.delay_jumps) == 1
    assert steady.mos is not None and jumped.mos is not None
    assert jumped.mos >= steady.mos - 0.5
    assert jumped.level_stability_db is not None and jumped.level_stability_db < 1.0
    assert jumped.gain_db is not None and abs(jumped.gain_db) < 0.5
    assert len(jumped.dropouts) <= 1  # the 40 ms of inserted silence itself, if it fell on speech
