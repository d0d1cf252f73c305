"""``harness analyze`` as a click command, run in-process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.signal import resample_poly

from harness.audio import impair as imp
from harness.audio import read_wav, write_wav
from harness.audio.analyze_cli import analyze_command

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"
CALLER = str(FIX / "speech" / "caller.wav")


@pytest.fixture()
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    x, rate = read_wav(CALLER)
    return write_wav(tmp_path_factory.mktemp("cli") / "coded.wav", imp.g711(imp.delay(x, rate, 40.0)), rate)


def test_clean_recording_passes_with_exit_0(runner: CliRunner, coded: Path) -> None:
    res = runner.invoke(analyze_command, [str(coded), "--ref", CALLER])
    assert res.exit_code == 0, res.output
    for word in ("MOS", "delay", "dropouts", "noise floor", "clipping", "verdict: PASS"):
        assert word in res.output
    assert "PASS   mos" in res.output


def test_json_output(runner: CliRunner, coded: Path) -> None:
    res = runner.invoke(analyze_command, [str(coded), "--ref", CALLER, "--json"])
    assert res.exit_code == 0
    d = json.loads(res.output)
    assert d["delay_ms"] == pytest.approx(40.0, abs=0.2)
    assert {c["name"] for c in d["checks"]} >= {"audio_present", "mos", "dropouts"}


def test_failed_check_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    x, rate = read_wav(CALLER)
    broken = write_wav(tmp_path / "drop.wav", imp.dropout(x, rate, 2.95, 200.0), rate)
    res = runner.invoke(analyze_command, [str(broken), "--ref", CALLER])
    assert res.exit_code == 1
    assert "FAIL   dropouts" in res.output


def test_silence_exits_1_with_the_gate_reason(runner: CliRunner) -> None:
    res = runner.invoke(analyze_command, [str(FIX / "synthetic" / "silence.wav"), "--ref", CALLER])
    assert res.exit_code == 1
    assert "no audio received" in res.output


def test_threshold_override(runner: CliRunner, coded: Path) -> None:
    res = runner.invoke(analyze_command, [str(coded), "--ref", CALLER, "--threshold", "max_delay_ms=10"])
    assert res.exit_code == 1 and "FAIL   delay" in res.output
    bad = runner.invoke(analyze_command, [str(coded), "--ref", CALLER, "--threshold", "max_delay=10"])
    assert bad.exit_code == 2 and "max_delay" in bad.output


def test_emodel_options(runner: CliRunner, coded: Path) -> None:
    res = runner.invoke(analyze_command, [str(coded), "--ref", CALLER, "--codec", "PCMU", "--loss", "1", "--json"])
    d = json.loads(res.output)
    assert d["emodel"]["r"] > 80


def test_16khz_files(runner: CliRunner, tmp_path: Path) -> None:
    x, _ = read_wav(CALLER)
    x16 = resample_poly(x, 2, 1)
    ref = write_wav(tmp_path / "ref16.wav", x16, 16000)
    rec = write_wav(tmp_path / "rec16.wav", np.concatenate([np.zeros(800), x16]), 16000)
    res = runner.invoke(analyze_command, [str(rec), "--ref", str(ref)])
    assert res.exit_code == 0, res.output


def test_short_recording_shows_the_stretch_judged(runner: CliRunner, coded: Path, tmp_path: Path) -> None:
    x, rate = read_wav(coded)
    short = write_wav(tmp_path / "short.wav", x[: 4 * rate], rate)
    res = runner.invoke(analyze_command, [str(short), "--ref", CALLER])
    assert res.exit_code == 1, res.output  # half the reference's speech was never heard
    assert "0.00-3.96 s (all the recording holds)" in res.output
    assert "FAIL   coverage" in res.output and "recording_ended_early" in res.output
    planned = runner.invoke(analyze_command, [str(short), "--ref", CALLER, "--expected", "4", "--json"])
    cov = json.loads(planned.output)["coverage"]
    assert cov["diagnosis"] == ["recording_too_short"] and cov["judged_s"] == [0.0, 3.96]


def test_start_offset_and_codec_options(runner: CliRunner, coded: Path, tmp_path: Path) -> None:
    x, rate = read_wav(coded)
    early = write_wav(tmp_path / "early.wav", np.concatenate([np.zeros(rate // 2), x]), rate)  # recorder 0.5 s first
    res = runner.invoke(
        analyze_command, [str(early), "--ref", CALLER, "--start-offset", "-0.5", "--codec", "PCMA", "--json"]
    )
    d = json.loads(res.output)
    assert res.exit_code == 0, res.output
    assert d["delay_ms"] == pytest.approx(40.0, abs=0.2) and d["recording_lag_ms"] == pytest.approx(540.0, abs=0.2)
    assert d["codec"] == "pcma" and d["mos_ceiling"] is not None


def test_silent_sent_signal_shows_echo_not_measurable(runner: CliRunner, coded: Path, tmp_path: Path) -> None:
    x, rate = read_wav(coded)
    sent = write_wav(tmp_path / "sent.wav", np.zeros(len(x)), rate)
    res = runner.invoke(analyze_command, [str(coded), "--ref", CALLER, "--sent", str(sent)])
    assert "not measurable (the sent signal is silent)" in res.output
    assert "ERROR  echo" in res.output


@pytest.mark.parametrize("case", ["missing", "not_wav", "empty", "rate"])
def test_bad_input_is_one_line_and_exit_2(runner: CliRunner, tmp_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.wav"
    if case == "not_wav":
        path.write_text("this is text")
    elif case == "empty":
        path.write_bytes(b"")
    elif case == "rate":
        x, _ = read_wav(CALLER)
        write_wav(path, resample_poly(x, 2, 1), 16000)
    res = runner.invoke(analyze_command, [str(path), "--ref", CALLER])
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and path.name in lines[0]
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
