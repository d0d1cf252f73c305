"""Which scenario is run again (only one its starved host left unjudged), and how the earlier attempt
is kept: its directory, its whole result, the ``attempts`` entry, the JUnit text and the report."""

from __future__ import annotations

import json
from pathlib import Path

from harness.contracts.checkname import CheckName
from harness.contracts.results import ScenarioResult
from harness.contracts.verdict import CheckResult, Verdict
from harness.report.junit import junit_xml
from harness.report.scenario import scenario_section
from harness.scenarios.rerun import set_aside, starved_reasons

REASON = "party caller's media clock (its RTP sending) ran 51 ms late (limit 40 ms; SCHED_RR 20)"


def _starved(name: str = "mos") -> CheckResult:
    return CheckResult.of(CheckName("audio", subject="main", metric=name), Verdict.ERROR, 2.9, 3.5, op=">=",
                          detail="harness host overloaded: " + REASON, blame="harness",
                          metrics={"health": {"overloaded": True, "reasons": [REASON], "window_s": 9.0}})


def _result(*checks: CheckResult, error: dict | None = None) -> ScenarioResult:
    res = ScenarioResult(name="hold-resume", file="scenarios/hold.yaml", started=1.0, duration_s=9.0,
                         checks=[CheckResult.of(CheckName("call", subject="main"), Verdict.PASS, 200, 200, op="=="),
                                 *checks], error=error, out_dir="hold-resume")
    res.finish()
    return res


def test_only_an_error_the_starved_host_made_is_run_again() -> None:
    assert starved_reasons(_result(_starved(), _starved("dropouts"))) == [REASON]  # reasons once
    assert starved_reasons(_result()) is None  # PASS
    fail = CheckResult.of(CheckName("audio", subject="main", metric="level"), Verdict.FAIL, -40, -30, op=">=")
    assert starved_reasons(_result(_starved(), fail)) is None  # a FAIL that blames the PBX is an answer
    crashed = CheckResult.error(CheckName("step", subject="step 2 (talk)"), "party crashed", blame="harness")
    assert starved_reasons(_result(crashed)) is None  # a crash is the harness's fault, not its host's
    stopped = {"step": "step 2", "line": 7, "message": "timeout", "kind": "failed"}
    assert starved_reasons(_result(_starved(), error=stopped)) is None
    unmeasured = CheckResult.error(CheckName("audio", subject="main", metric="mos"), "no recording")
    assert starved_reasons(_result(_starved(), unmeasured)) is None  # an ERROR of the PBX side stays


def test_the_earlier_attempt_is_kept_whole_and_shown(tmp_path: Path) -> None:
    res = _result(_starved())
    (tmp_path / "hold-resume").mkdir()
    (tmp_path / "hold-resume" / "caller-c1.wav").write_bytes(b"RIFF")
    entry = set_aside(res, tmp_path, 1, [REASON])
    assert not (tmp_path / "hold-resume").exists()
    kept = tmp_path / "hold-resume.attempt1"
    assert (kept / "caller-c1.wav").exists()
    assert json.loads((kept / "result.json").read_text())["checks"][1]["verdict"] == "ERROR"
    assert entry["out_dir"] == "hold-resume.attempt1" and entry["why_run_again"] == [REASON]
    assert [c["verdict"] for c in entry["checks"]] == ["ERROR"]  # the checks that did not pass

    final = ScenarioResult(name="hold-resume", file="scenarios/hold.yaml", started=20.0, duration_s=9.0,
                           checks=[CheckResult.of(CheckName("call", subject="main"), Verdict.PASS, 200, 200, op="==")],
                           out_dir="hold-resume", attempts=[entry])
    final.finish()
    data = final.to_dict()
    assert data["verdict"] == "PASS" and data["attempts"][0]["attempt"] == 1
    xml = json.dumps(junit_xml({"run_id": "r", "scenarios": [data]}).getroot().find("testsuite/system-out").text)
    assert "attempt 1 not judged (ERROR" in xml and "hold-resume.attempt1/" in xml
    html = str(scenario_section(data, tmp_path, "s1", tmp_path))
    assert "Run again: attempt 1 was not judged" in html and "ran 51 ms late" in html
    assert "hold-resume.attempt1/" in html
