"""README.md's other command lines, run as written in a prepared working directory: validate, analyze,
load (against the session's lab, which it must leave running), fixtures build, and the setup script."""

from __future__ import annotations

import csv
import hashlib
import json
import time
import wave
from pathlib import Path

import numpy as np

from harness.lab import LabStack

from .cli_lines import SESSION_PORTS, sh, workdir
from .conftest import REPO


def test_validate_every_scenario_file(tmp_path: Path) -> None:
    work = workdir(tmp_path / "work")
    proc = sh("harness validate scenarios/*.yaml   # check scenario files without running them", cwd=work,
              home=tmp_path / "home", ports=SESSION_PORTS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert all(ln.startswith("ok  ") for ln in lines), proc.stdout
    shown = {ln.split("(", 1)[1].split(",", 1)[0] for ln in lines}
    files = {f"scenarios/{p.name}" for p in (REPO / "scenarios").glob("*.yaml") if "scenarios:" not in p.read_text()}
    assert files <= shown, files - shown  # every scenario and load profile (a suite shows as its scenarios)
    assert "ok  load-smoke  (scenarios/load-smoke.yaml, load profile: " in proc.stdout
    assert not (tmp_path / "home" / "lab").exists(), "validating starts nothing"


def test_analyze_a_recording_against_its_reference(tmp_path: Path) -> None:
    work = workdir(tmp_path / "work")
    # what a phone received: the caller's reference speech 60 ms late, 4 dB quieter, over a little noise
    with wave.open(str(REPO / "audio_fixtures" / "speech" / "caller.wav"), "rb") as w:
        rate, ref = w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
    delayed = np.concatenate([np.zeros(int(0.060 * rate)), ref])[: len(ref)] * 10 ** (-4 / 20)
    noise = np.random.default_rng(7).normal(0.0, 3.0, len(delayed))
    with wave.open(str(work / "received.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.clip(delayed + noise, -32768, 32767).astype("<i2").tobytes())

    proc = sh("harness analyze received.wav --ref audio_fixtures/speech/caller.wav   # judge any recording",
              cwd=work, home=tmp_path / "home", ports=SESSION_PORTS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "verdict: PASS" in out and "PASS   reference_match" in out
    delay_ms = float(next(ln for ln in out.splitlines() if ln.startswith("delay ")).split()[1])
    gain_db = float(next(ln for ln in out.splitlines() if ln.startswith("gain vs reference")).split()[3])
    assert abs(delay_ms - 60) < 5 and abs(gain_db + 4) < 0.5, out


def test_load_smoke_profile_against_the_running_lab(lab: LabStack, lab_home: Path, tmp_path: Path) -> None:
    """The README's load line; it asserts all that test_load.py's smoke test does (one of them is enough)."""
    work = workdir(tmp_path / "work")
    t0 = time.monotonic()
    proc = sh("harness load scenarios/load-smoke.yaml   # response times under load (Locust), SLA verdicts",
              cwd=work, home=lab_home, ports=SESSION_PORTS, timeout=150)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert took < 60, f"the smoke run took {took:.0f} s"
    assert lab.is_running(), "a lab the run did not start must stay up"
    (out,) = (work / "reports").iterdir()  # reports/load-YYYYmmdd-HHMMSS

    load = json.loads((out / "load.json").read_text())
    assert load["verdict"] == "PASS" and load["run"]["stop_reason"] == "the shape ended"
    totals = load["totals"]["requests"]
    for name in ("call:setup", "call:ringing", "call:reinvite", "BYE", "REGISTER", "OPTIONS", "CANCEL"):
        assert totals[name]["count"] > 0 and totals[name]["failed"] == 0, (name, totals[name])
    for step in load["steps"]:
        setup = step["requests"]["call:setup"]
        assert setup["count"] > 0 and 0 < setup["p50_ms"] <= setup["p95_ms"] <= setup["p99_ms"]
        assert step["rate_achieved_pct"] > 70, step
    media = [m for m in load["media"] if m["ok"]]
    assert media, load["media"]
    assert all(d["mos"] is not None and d["loss_pct"] is not None for m in media for d in m["directions"].values())
    assert {c["name"].split("@")[0] for c in load["checks"]} >= {"setup_p95_ms", "success_rate_pct", "mos_min"}
    assert any(c["name"].startswith("mos_min@") and c["verdict"] == "PASS" for c in load["checks"])

    results = json.loads((out / "results.json").read_text())
    (sc,) = results["scenarios"]
    assert results["verdict"] == "PASS" and sc["name"] == "load:load-smoke"
    assert [c["name"] for c in sc["checks"]] == [c["name"] for c in load["checks"]]
    assert (out / "junit.xml").is_file()
    with (out / "locust_stats.csv").open() as fh:
        rows = {r["Name"]: r for r in csv.DictReader(fh)}
    assert int(rows["call:setup"]["Request Count"]) == totals["call:setup"]["count"]
    assert (out / "locust.html").exists()
    assert "lab-caller-pw" not in "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file()
                                          and p.suffix in (".json", ".csv", ".log", ".html", ".xml"))


def test_fixtures_build_recreates_the_reference_audio(tmp_path: Path) -> None:
    # an empty directory: the build writes ./audio_fixtures, never the project's
    proc = sh("harness fixtures build", cwd=tmp_path, home=tmp_path / "home", ports=SESSION_PORTS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = [Path(p) for p in proc.stdout.split()]
    assert Path("audio_fixtures/speech/caller.wav") in built and Path("audio_fixtures/manifest.json") in built
    for rel in built:  # the same bytes as the committed fixtures
        assert hashlib.sha256((tmp_path / rel).read_bytes()).digest() == \
            hashlib.sha256((REPO / rel).read_bytes()).digest(), rel


def test_setup_script_is_idempotent_and_fast_when_installed(tmp_path: Path) -> None:
    proc = sh("scripts/setup.sh", cwd=REPO, home=tmp_path / "home", ports=SESSION_PORTS, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "setup: ready (harness, version " in proc.stdout
