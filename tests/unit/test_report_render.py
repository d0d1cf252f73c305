"""The HTML/JSON report rendered from stored run directories: front page answers, trends, findings,
load runs, bad stored data, the CLI and the run sink."""

from __future__ import annotations

import json
import re
import time
import wave
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.contracts.errors import InputError
from harness.contracts.results import RunResult
from harness.contracts.settings import Settings
from harness.report.junit import junit_xml
from harness.report.png import encode_palette, palette
from harness.report.render import render_report, write_report
from harness.report.report_sink import ReportSink, report_path
from harness.report.run_store import history, load_run
from harness.report.trends import RunPoint, quality_trend

DAY = 86400.0
T0 = 1_700_000_000.0


def _check(name: str, verdict: str, value: Any, op: str, threshold: Any, unit: str = "", detail: str = "") -> dict:
    return {"name": name, "verdict": verdict, "value": value, "threshold": threshold, "unit": unit, "op": op,
            "detail": detail, "metrics": {}}


def _wav(path: Path, x: np.ndarray, rate: int = 8000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(x, -1, 1) * 32000).astype("<i2").tobytes())


def speech_like(seconds: float, rate: int = 8000, seed: int = 1) -> np.ndarray:
    """Bursts of harmonics: enough to draw a waveform and a spectrogram."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    env = (np.sin(2 * np.pi * 0.7 * t) > 0.2).astype(float)
    tone = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((180, 360, 720, 1440), start=1))
    return 0.2 * env * tone + 0.001 * rng.standard_normal(len(t))


def make_run(parent: Path, name: str, started: float, *, mos: float = 4.1, setup_ms: float = 120.0,
             fail_check: str | None = None, with_audio: bool = False, extra: dict | None = None) -> Path:
    """A run directory as the runner leaves it: results.json and one scenario directory."""
    run = parent / name
    sdir = run / "connect"
    sdir.mkdir(parents=True)
    checks = [_check("register:caller", "PASS", 200, "==", 200, "SIP"),
              _check("setup_time:main", "PASS", setup_ms, "<=", 2000.0, "ms"),
              _check("audio:caller->agent:mos", "PASS", mos, ">=", 3.5, "MOS-LQO"),
              _check("audio:caller->agent:dropouts", "PASS", 0.0, "<=", 0.0, "events")]
    for c in checks:
        if c["name"] == fail_check:
            c["verdict"] = "FAIL"
            c["detail"] = "made to fail"
    audio = {"caller->agent": {"direction": "caller->agent", "verdict": "FAIL" if fail_check else "PASS",
                               "mos": mos, "delay_ms": 40.0, "level_dbov": -26.0, "reference_match": 0.99,
                               "dropouts": [{"start_s": 1.0, "end_s": 1.3, "duration_ms": 300.0}],
                               "delay_jumps": [{"at_s": 2.0, "jump_ms": 20.0}],
                               "emodel": {"mos": 4.4, "r": 93.0}, "checks": [], "skipped": {}}}
    artifacts: dict[str, str] = {}
    if with_audio:
        ref = speech_like(4.0)
        rec = np.concatenate([np.zeros(320), ref])[: len(ref)].copy()
        rec[int(1.04 * 8000): int(1.34 * 8000)] = 0.0  # the dropout, 40 ms later on the received timeline
        _wav(sdir / "agent-c1.wav", rec)
        _wav(sdir / "ref-caller.wav", ref)
        artifacts = {"received:audio:caller->agent": "agent-c1.wav", "reference:caller->agent": "ref-caller.wav"}
    sc = {"name": "connect", "file": "connect.yaml", "verdict": "FAIL" if fail_check else "PASS",
          "started": started, "duration_s": 12.3, "checks": checks,
          "sip": {"calls": {"main": {"sip_call_id": "abc", "caller": "caller", "callee": "agent",
                                     "uri": "sip:2001@lab.local", "final_code": 200, "answered": True,
                                     "setup_ms": setup_ms, "duration_s": 9.0}}, "registrations": {}},
          "audio": audio, "rtp": {"main": {"agent": {"codec": "PCMU", "rx_packets": 450, "rx_lost": 2,
                                                     "rx_jitter_ms": 0.3, "rtt_ms": 0.2}}},
          "artifacts": artifacts, "error": None, "skipped_steps": [], "out_dir": "connect"}
    verdict = "FAIL" if fail_check else "PASS"
    results = {"run_id": name, "harness_version": "0", "started": started, "finished": started + 13,
               "interrupted": False, "verdict": verdict, "counts": {"PASS": int(verdict == "PASS"),
                                                                    "FAIL": int(verdict == "FAIL"), "ERROR": 0},
               "target": {"name": "lab", "host": "127.0.0.1", "port": 5060}, "scenarios": [sc]}
    if extra:
        results.update(extra)
    (run / "results.json").write_text(json.dumps(results))
    return run


FINDINGS = [
    {"id": "F-1", "state": "open", "scenario": "connect", "check": "audio:caller->agent:mos", "target": "lab",
     "first_seen": T0 - 10 * DAY, "last_seen": T0, "occurrences": 4,
     "diagnosis": {"cause": "packet loss on the trunk", "fix": "replace the switch"},
     "history": [{"at": T0 - 10 * DAY, "from_state": None, "to_state": "open", "note": "found by nightly"}]},
    # the findings store's own shape (harness.findings.snapshot): history with action/from/to
    {"id": "F-2", "state": "fixed", "scenario": "connect", "check": "setup_time:main", "target": "lab",
     "title": "setup_time:main FAIL: 2500 ms", "this_run": "seen",
     "first_seen": "2023-11-10T02:00:00Z", "last_seen": T0, "occurrences": 1,
     "history": [{"at": T0 - 3 * DAY, "action": "found", "from": None, "to": "open"},
                 {"at": T0 - 2 * DAY, "action": "noted", "from": "open", "to": "analysed", "note": "slow DNS"},
                 {"at": T0 - DAY, "action": "fixed", "from": "analysed", "to": "fixed", "note": "cache DNS"}],
     "evidence": {"key_message": "caller received:\nSIP/2.0 100 <Trying>"},
     "metrics": {"before": {"setup_ms": 2500.0}, "after": {"setup_ms": 130.0}}},
    {"id": "F-3", "state": "verified", "scenario": "connect", "check": "register:caller", "first_seen": T0 - DAY},
]


def test_front_page_answers_from_stored_runs(tmp_path: Path) -> None:
    for k in range(6):
        make_run(tmp_path, f"run-{k}", T0 - (6 - k) * DAY, mos=4.1 + 0.01 * k)
    cur = make_run(tmp_path, "run-6", T0, mos=3.6, fail_check="audio:caller->agent:mos")
    retest = {"finding": "F-2", "passed": False, "action": "retested",
              "rows": [{"name": "setup_time:main", "before": _check("setup_time:main", "FAIL", 2500.0, "<=", 2000.0,
                                                                  "ms"),
                        "after": _check("setup_time:main", "FAIL", 2100.0, "<=", 2000.0, "ms")}]}
    (cur / "findings.json").write_text(json.dumps({"format": "harness-findings/1", "findings": FINDINGS,
                                                   "retests": [retest]}))
    rep = render_report(cur)
    data = rep.data
    assert data["schema"] == "harness-report/1"
    assert data["verdict"] == "FAIL" and data["answers"]["passed"] is False
    assert data["answers"]["broke_since_previous"] == 1
    assert [c["check"] for c in data["changes"]["broke"]] == ["audio:caller->agent:mos"]
    assert data["changes"]["previous_run"] == "run-5"
    assert data["answers"]["still_open_findings"] == 2  # F-3 is verified
    assert data["answers"]["quality_trending_down"] is True
    mos = next(s for s in data["trend"] if s["metric"] == "mos")
    assert mos["state"] == "worse" and "3.60" in mos["text"]
    assert [p["run_id"] for p in data["history"]] == [f"run-{k}" for k in range(7)]
    html = rep.html
    for needle in ("Did tonight pass?", "What broke since the previous run?", "What is still open?",
                   "Is quality trending down?", "Pass rate per run", "MOS per run", "Call setup time per run",
                   "Open findings by age and state", "packet loss on the trunk", "slow DNS", "2500",
                   "Slowest calls", "Worst audio", "Retest failed", "2100 ms (limit &lt;= 2000 ms)", "seen again",
                   "<b>noted</b> (open → analysed)", "SIP/2.0 100 &lt;Trying&gt;", "found by nightly"):
        assert needle in html, needle
    assert 'id="finding-F-2"' in html
    # nothing that could load from the network: no external URLs, a CSP that forbids it
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "default-src &#x27;none&#x27;" in html  # (the attribute value, escaped)


def test_previous_run_comparison_and_history_order(tmp_path: Path) -> None:
    make_run(tmp_path, "b-older", T0 - DAY, fail_check="setup_time:main")
    make_run(tmp_path, "a-newer-but-named-first", T0 - 0.5 * DAY)
    other_suite = make_run(tmp_path, "d-other-suite", T0 - 0.2 * DAY)
    data = json.loads((other_suite / "results.json").read_text())
    data["scenarios"][0]["name"] = "system-options"
    (other_suite / "results.json").write_text(json.dumps(data))
    cur = make_run(tmp_path, "c", T0, fail_check="register:caller")
    run = load_run(cur)
    assert [r.run_id for r in history(run, 14)] == ["b-older", "a-newer-but-named-first"]
    data = render_report(cur).data
    ch = data["changes"]
    assert ch["previous_run"] == "a-newer-but-named-first"
    assert [c["check"] for c in ch["broke"]] == ["register:caller"]
    assert ch["fixed"] == [] and ch["still_failing"] == []
    assert render_report(cur, last=0).data["changes"]["previous_run"] is None


def test_trend_rules() -> None:
    def pts(mos: list[float | None], setup: list[float | None] | None = None) -> list[RunPoint]:
        setup = setup or [100.0] * len(mos)
        return [RunPoint(str(i), str(i), float(i), "PASS", 1, 1, 1.0, 1, 1, m, m, s, s)
                for i, (m, s) in enumerate(zip(mos, setup, strict=True))]

    def state(points: list[RunPoint], metric: str) -> str:
        return next(s.state for s in quality_trend(points) if s.metric == metric)

    assert state(pts([4.1]), "mos") == "unknown"
    assert state(pts([4.1, 4.1, 4.12, 4.08]), "mos") == "stable"
    assert state(pts([4.1, 4.1, 4.1, 3.8]), "mos") == "worse"
    assert state(pts([3.6, 3.6, 3.6, 4.1]), "mos") == "better"
    assert state(pts([4.2, 4.15, 4.1, 4.05, 4.0, 3.95]), "mos") == "worse"  # a drift, each step small
    assert state(pts([4.1, None, 4.1]), "mos") == "stable"
    assert state(pts([4.1] * 4, [100.0, 110.0, 100.0, 400.0]), "setup") == "worse"
    assert state(pts([4.1] * 4, [100.0, 110.0, 100.0, 130.0]), "setup") == "stable"


def test_scenario_section_draws_audio_ladder_and_tables(tmp_path: Path) -> None:
    cur = make_run(tmp_path, "run", T0, with_audio=True)
    t = time.perf_counter()
    html = render_report(cur).html
    elapsed = time.perf_counter() - t
    assert elapsed < 10.0  # measured ~0.2 s; generous for a loaded CI machine
    assert html.count('class="spec"') == 2  # reference and received spectrograms
    assert html.count("data:image/png;base64,") == 2
    assert '<audio controls preload="none" src="data:audio/wav;base64,' in html
    assert html.count('class="drop"') == 1 and html.count('class="jump"') == 1
    assert "RTP (receiving side)" in html and "0.44 %" in html  # 2 lost of 452
    assert "SIP ladder" not in html  # no sip.log artifacts in this run


def test_large_wav_is_linked_not_embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.report.scenario as scenario

    monkeypatch.setattr(scenario, "EMBED_LIMIT", 1000)
    cur = make_run(tmp_path, "run", T0, with_audio=True)
    html = render_report(cur).html
    assert "data:audio/wav" not in html
    assert 'href="connect/agent-c1.wav"' in html


def test_embedded_audio_has_a_budget_per_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.report.scenario as scenario

    cur = make_run(tmp_path, "run", T0, with_audio=True)
    data = json.loads((cur / "results.json").read_text())
    sc = data["scenarios"][0]
    # a live-audio probe's direction, as steps_flow keys it: prefix "audio:<label>"
    sc["audio"]["audio:probe:caller->agent"] = dict(sc["audio"]["caller->agent"])
    sc["artifacts"]["received:audio:probe:caller->agent"] = "agent-c1.wav"
    (cur / "results.json").write_text(json.dumps(data))
    monkeypatch.setattr(scenario, "EMBED_BUDGET", (cur / "connect" / "agent-c1.wav").stat().st_size)
    html = render_report(cur).html
    assert html.count("data:audio/wav") == 1 and html.count('href="connect/agent-c1.wav"') == 1
    # the probe has no reference recorded: only its received spectrogram, and the report says so (it never
    # looks for one in a scenario file)
    assert html.count('class="spec"') == 3 and "heard by agent · audio:probe" in html
    assert html.count("reference audio not known") == 1


def test_bad_stored_data_is_reported_not_fatal(tmp_path: Path) -> None:
    cur = make_run(tmp_path, "run", T0)
    data = json.loads((cur / "results.json").read_text())
    data["scenarios"].append("not a scenario")
    data["scenarios"].append({"name": "odd", "checks": [{"no": "name"}], "audio": {"x": "y"}, "sip": {"calls": {}},
                              "out_dir": "../../etc"})
    (cur / "results.json").write_text(json.dumps(data))
    (cur / "findings.json").write_text("{broken json")
    (tmp_path / "garbage-run").mkdir()
    (tmp_path / "garbage-run" / "results.json").write_text("[1, 2")
    rep = render_report(cur)
    assert "scenarios[1] is not a scenario record" in rep.html
    assert "findings.json: unreadable" in rep.html
    assert "malformed checks" in rep.html
    assert [s["name"] for s in rep.data["scenarios"]] == ["connect", "odd"]
    with pytest.raises(InputError, match="nothing to report"):
        load_run(tmp_path / "garbage-run")
    with pytest.raises(InputError, match="not a run directory"):
        load_run(tmp_path / "missing")


def test_load_run_renders_percentiles_failures_and_sla(tmp_path: Path) -> None:
    run = tmp_path / "load-1"
    run.mkdir()
    load = {"run_id": "load-1", "started": T0, "profile": "smoke", "verdict": "FAIL",
            "sla": [_check("p95_setup_ms", "FAIL", 480.0, "<=", 300.0, "ms", "p95 of call:setup")],
            "steps": [{"name": "ramp-50", "rate_target": 50, "rate_achieved": 49.8, "calls": 500,
                       "setup_ms": {"p50": 20.0, "p95": 60.0, "p99": 90.0}, "failures": {"503": 2}, "mos": 4.2},
                      {"name": "step-200", "target_cps": 200, "achieved_cps": 150.0, "calls": 2000,
                       "p50_ms": 80.0, "p95_ms": 480.0, "p99_ms": 900.0, "failures_by_code": {"503": 40, "408": 3},
                       "mos": {"mean": 3.9, "min": 3.1},
                       "sla": [_check("success_rate", "PASS", 97.9, ">=", 95.0, "%")]}]}
    (run / "load.json").write_text(json.dumps(load))
    rep = render_report(run)
    assert rep.data["verdict"] == "FAIL"
    assert [c["name"] for c in rep.data["load"]["checks"]] == ["p95_setup_ms", "step-200:success_rate"]
    html = rep.html
    for needle in ("Setup time percentiles per step", "MOS under load", "fail 408", "fail 503", "ramp-50",
                   "150/s", "p95 of call:setup"):
        assert needle in html, needle
    root = junit_xml({"run_id": "load-1", "scenarios": []}, load).getroot()
    assert root.get("tests") == "2" and root.get("failures") == "1"
    failure = root.find(".//failure")
    assert failure is not None and "measured 480.0 ms, threshold <= 300.0 ms" in (failure.text or "")


def test_junit_replaces_bytes_xml_cannot_carry(tmp_path: Path) -> None:
    results = {"run_id": "r", "scenarios": [{"name": "x\x01y", "checks": [
        _check("c", "FAIL", "bad\x00value", "==", "ok", detail="\x1b[31m")]}]}
    text = ET.tostring(junit_xml(results).getroot(), encoding="unicode")
    assert "\x00" not in text and "\x01" not in text and "\x1b" not in text
    ET.fromstring(text)  # parses


def test_png_encoder_writes_a_valid_palette_png() -> None:
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    png = encode_palette(img, palette())
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        kind, body = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + n]
        assert zlib.crc32(kind + body) == int.from_bytes(png[pos + 8 + n:pos + 12 + n], "big")
        chunks[kind] = body
        pos += 12 + n
    assert int.from_bytes(chunks[b"IHDR"][:4], "big") == 4 and int.from_bytes(chunks[b"IHDR"][4:8], "big") == 3
    raw = zlib.decompress(chunks[b"IDAT"])
    assert raw == b"".join(b"\x00" + bytes(row) for row in img.tolist())
    assert len(chunks[b"PLTE"]) == 256 * 3


def test_cli_report_writes_html_and_json(tmp_path: Path) -> None:
    runs = tmp_path / "reports"
    make_run(runs, "run-a", T0 - DAY)
    newest = make_run(runs, "run-b", T0)
    out = tmp_path / "elsewhere" / "r.html"
    res = CliRunner().invoke(cli, ["--home", str(tmp_path / "h"), "report", str(newest), "--out", str(out),
                                   "--junit", str(tmp_path / "j.xml")])
    assert res.exit_code == 0, res.output
    assert f"report: {out}" in res.output
    assert out.is_file() and json.loads(out.with_suffix(".json").read_text())["run_id"] == "run-b"
    assert ET.parse(tmp_path / "j.xml").getroot().get("tests") == "4"
    res = CliRunner().invoke(cli, ["--home", str(tmp_path / "h"), "report", "--runs", str(runs), "--last", "3"])
    assert res.exit_code == 0, res.output
    assert (newest / "report.html").is_file()


def test_cli_report_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    from harness.cli import main

    (tmp_path / "empty").mkdir()
    for args in (["report", str(tmp_path / "empty")], ["report", "--runs", str(tmp_path / "nothing")]):
        with pytest.raises(SystemExit) as exc:
            main(["--home", str(tmp_path / "h"), *args])
        assert exc.value.code == 2


def test_sink_writes_the_report_from_stored_results(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "run-x", T0)
    sink = ReportSink(Settings(home=tmp_path / "h"))
    live = RunResult(run_id="run-x", out_dir=str(run_dir), target={"name": "not what results.json says"})
    sink.run_finished(live)
    html = (run_dir / "report.html").read_text()
    assert report_path(run_dir) == run_dir / "report.html"
    assert "target lab" in html and "not what results.json says" not in html  # stored data, not the live object
    assert json.loads((run_dir / "report.json").read_text())["verdict"] == "PASS"


def test_sink_never_takes_the_run_down(tmp_path: Path) -> None:
    run_dir = tmp_path / "run-y"
    run_dir.mkdir()  # results.json missing: nothing to report
    sink = ReportSink(Settings(home=tmp_path / "h"))
    sink.run_finished(RunResult(run_id="run-y", out_dir=str(run_dir), target={}))
    assert sink.error is not None and "nothing to report" in sink.error
    assert report_path(run_dir) == run_dir / "report-error.txt"
    assert "harness report" in report_path(run_dir).read_text()


def test_a_run_still_going_says_so(tmp_path: Path) -> None:
    done = render_report(make_run(tmp_path, "done", T0)).html
    going = render_report(make_run(tmp_path, "going", T0, extra={"finished": None})).html
    assert "not finished" not in done and "not finished: the run is still going" in going


def test_write_report_is_repeatable(tmp_path: Path) -> None:
    cur = make_run(tmp_path, "run", T0)
    first = write_report(cur).read_text()
    second = write_report(cur).read_text()
    # only the footer's generation time may differ
    strip = re.compile(r"Generated by harness \S+ on [0-9: -]+")
    assert strip.sub("", first) == strip.sub("", second)
