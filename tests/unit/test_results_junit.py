"""Verdicts, results.json and JUnit: what CI and people read."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.contracts.results import RunResult, ScenarioResult
from harness.contracts.verdict import CheckResult, Verdict, worst
from harness.report.junit import write_junit


def test_compare_and_missing_measurement_is_error() -> None:
    assert CheckResult.compare("x", 10, "<=", 20).verdict is Verdict.PASS
    assert CheckResult.compare("x", 30, "<=", 20).verdict is Verdict.FAIL
    assert CheckResult.compare("x", None, "<=", 20).verdict is Verdict.ERROR
    assert CheckResult.compare("x", math.nan, ">=", 3.5).verdict is Verdict.ERROR
    assert worst([]) is Verdict.ERROR
    assert worst([Verdict.PASS, Verdict.FAIL]) is Verdict.FAIL
    assert worst([Verdict.FAIL, Verdict.ERROR, Verdict.PASS]) is Verdict.ERROR


def test_scenario_without_checks_is_not_pass() -> None:
    sc = ScenarioResult(name="empty", file="e.yaml")
    sc.finish()
    assert sc.verdict is Verdict.ERROR


def test_junit_has_one_case_per_check_with_measured_text(tmp_path: Path) -> None:
    sc = ScenarioResult(name="connect <&>", file="c.yaml")
    sc.checks = [CheckResult.compare("setup_time:main", 3500.0, "<=", 2000.0, "ms"),
                 CheckResult.compare("audio:agent->caller:mos", None, ">=", 3.5),
                 CheckResult.compare("register:caller", 200, "==", 200, "SIP")]
    sc.finish()
    run = RunResult(run_id="r1", out_dir=str(tmp_path), target={"name": "lab"})
    run.scenarios.append(sc)
    out = tmp_path / "junit.xml"
    write_junit(run.to_dict(), out)
    root = ET.parse(out).getroot()
    assert root.get("tests") == "3" and root.get("failures") == "1" and root.get("errors") == "1"
    suite = root.find("testsuite")
    assert suite is not None and suite.get("name") == "connect <&>"
    failure = root.find(".//failure")
    assert failure is not None and "measured 3500.0 ms" in failure.get("message", "")
    assert "threshold <= 2000.0" in failure.get("message", "")
    assert run.verdict is Verdict.ERROR
