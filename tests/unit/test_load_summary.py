"""Measurements to verdicts: histograms, recorders merged across workers, steps cut from bins, SLA checks."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.contracts.verdict import CheckResult, Verdict
from harness.load import load_profile
from harness.load.histogram import Hist, bucket_us
from harness.load.recorder import Recorder
from harness.load.summary import summarize

T0 = 1_800_000_000.0  # wall clock of the shape's start


def test_histogram_keeps_microseconds_and_three_digits() -> None:
    assert bucket_us(0.4127) == 412 and bucket_us(12.345) == 12300 and bucket_us(1234.5) == 1230000
    h = Hist()
    for ms in [0.3] * 50 + [0.5] * 45 + [9.0] * 5:
        h.add(ms)
    assert h.count == 100 and h.percentile(50) == 0.3 and h.percentile(95) == 0.5 and h.percentile(99) == 9.0
    assert h.max == 9.0 and h.mean == pytest.approx(0.825)
    again = Hist.from_wire(h.to_wire())
    again.merge(h)
    assert again.count == 200 and again.percentile(50) == 0.3
    assert Hist().percentile(50) is None and Hist().mean is None


def test_recorders_merge_across_workers() -> None:
    a, b = Recorder(), Recorder()
    for rec, up in ((a, 300), (b, 200)):
        rec.sample("call:setup", T0 + 0.01, 0.5)
        rec.failure("call:setup", T0 + 0.02, 1.0, "503")
        rec.gauge("calls_up", T0 + 0.3, up - 10)
        rec.gauge("calls_up", T0 + 0.8, up)
        rec.gauge("cpu_pct", T0 + 0.5, up / 10)
        rec.count("retransmits", T0, 2)
    merged = Recorder()
    for rec in (a, b):
        merged.merge(rec.drain())
    assert not a.hists and not a.gauges  # drained
    (key,) = merged.hists
    assert merged.hists[key].count == 2
    assert list(merged.failures.values()) == [2]
    gauges = {name: v for (_, name), v in merged.gauges.items()}
    assert gauges == {"calls_up": 500.0, "cpu_pct": 30.0}  # calls add up, CPU is the busiest worker's
    assert list(merged.counters.values()) == [4]


def _profile(tmp_path: Path, sla: str, media: str = "") -> object:
    p = tmp_path / "p.yaml"
    p.write_text(textwrap.dedent(f"""
        name: s
        shape:
          - hold: {{value: 10, duration_s: 2}}
          - hold: {{value: 0, duration_s: 1}}
          - hold: {{value: 20, duration_s: 2}}
        sla: {sla}
        {media}
    """))
    return load_profile(p)


def test_steps_are_cut_from_bins_and_judged(tmp_path: Path) -> None:
    prof = _profile(tmp_path, "{setup_p95_ms: 2, success_rate_pct: 90, rate_achieved_pct: 80}")
    rec = Recorder()
    for i in range(20):  # step 1: 10 calls/s for 2 s, fast
        rec.sample("call:setup", T0 + i * 0.1, 0.4)
    for i in range(40):  # step 3: 20 calls/s, slow, 4 failures
        t = T0 + 3 + i * 0.05
        if i % 10 == 0:
            rec.failure("call:setup", t, 5.0, "503" if i else "timeout")
        else:
            rec.sample("call:setup", t, 3.0)
    rec.sample("BYE", T0 + 5.4, 0.2)  # after the end (drain): counts in the last step
    s = summarize(rec, T0, prof)  # type: ignore[arg-type]
    one, idle, three = s["steps"]
    assert one["requests"]["call:setup"]["count"] == 20 and one["achieved"] == 10.0
    assert one["rate_achieved_pct"] == 100.0 and one["success_rate_pct"] == 100.0
    assert idle["checks"] == []  # nothing offered, nothing asked
    assert three["requests"]["call:setup"]["failures_by_code"] == {"503": 3, "timeout": 1}
    assert three["requests"]["BYE"]["count"] == 1
    assert three["success_rate_pct"] == pytest.approx(100 * 37 / 41, abs=0.01)
    verdicts = {c["name"]: c["verdict"] for c in s["checks"]}
    assert verdicts == {"setup_p95_ms@step1": "PASS", "success_rate_pct@step1": "PASS",
                        "rate_achieved_pct@step1": "PASS", "setup_p95_ms@step3": "FAIL",
                        "success_rate_pct@step3": "PASS", "rate_achieved_pct@step3": "PASS"}
    assert s["verdict"] == "FAIL"
    fail = next(c for c in s["checks"] if c["verdict"] == "FAIL")
    assert fail["value"] == 3.0 and fail["threshold"] == 2.0 and fail["op"] == "<=" and fail["unit"] == "ms"
    CheckResult(**{**fail, "verdict": Verdict(fail["verdict"])})  # the results.json shape


def test_a_missing_measurement_is_error_never_pass(tmp_path: Path) -> None:
    prof = _profile(tmp_path, "{setup_p95_ms: 2}")
    s = summarize(Recorder(), T0, prof)  # type: ignore[arg-type]
    assert {c["verdict"] for c in s["checks"]} == {"ERROR"} and s["verdict"] == "ERROR"


def test_mos_is_judged_on_the_worst_direction_of_the_steps_media_calls(tmp_path: Path) -> None:
    prof = _profile(tmp_path, "{mos_min: 3.5, loss_max_pct: 1, success_rate_pct: 0}",
                    "media: {calls_per_step: 1, talk_s: 2}")
    media = [{"step": 0, "ok": True, "directions": {"caller->callee": {"mos": 4.1, "loss_pct": 0.0},
                                                     "callee->caller": {"mos": 3.2, "loss_pct": 0.5}}},
             {"step": 2, "ok": False, "error": "the media call was not answered (480)", "directions": {}}]
    rec = Recorder()
    rec.sample("call:setup", T0 + 0.5, 0.4)
    rec.sample("call:setup", T0 + 3.5, 0.4)
    s = summarize(rec, T0, prof, media=media)  # type: ignore[arg-type]
    checks = {c["name"]: c for c in s["checks"]}
    assert checks["mos_min@step1"]["verdict"] == "FAIL" and checks["mos_min@step1"]["value"] == 3.2
    assert checks["loss_max_pct@step1"]["verdict"] == "PASS"
    assert checks["mos_min@step3"]["verdict"] == "ERROR" and "480" in checks["mos_min@step3"]["detail"]
    assert s["steps"][0]["media"]["mos_mean"] == 3.65


def test_generator_shortfall_is_an_error(tmp_path: Path) -> None:
    prof = _profile(tmp_path, "{success_rate_pct: 0}")
    rec = Recorder()
    rec.sample("call:setup", T0 + 0.5, 0.4)
    rec.sample("call:setup", T0 + 3.5, 0.4)
    rec.count("skipped_in_flight", T0 + 1.0, 7)
    s = summarize(rec, T0, prof)  # type: ignore[arg-type]
    gen = next(c for c in s["checks"] if c["name"] == "generator")
    assert gen["verdict"] == "ERROR" and "skipped_in_flight 7" in gen["detail"]
