"""The run sink and the retest loop without a lab: runs become findings with diagnosis and evidence,
findings.json is written, and a retest (its run faked) verifies or reopens with before/after metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.contracts.checkname import CheckName
from harness.contracts.results import RunResult
from harness.contracts.settings import Settings
from harness.contracts.verdict import CheckResult, Verdict
from harness.findings.finding_model import Action, State
from harness.findings.findings_sink import FindingsSink, make_sink
from harness.findings.retest import retest_findings
from harness.findings.snapshot import FORMAT
from harness.findings.sqlite import SqliteStore
from harness.scenarios import session

from .test_findings_support import (
    reg_fail,
    reg_ok,
    register_log_text,
    run_result,
    scenario_result,
    write_logs,
)


def feed(sink: FindingsSink, out: Path, results: list[Any], target: dict[str, Any] | None = None) -> RunResult:
    """Drive the sink the way the runner does."""
    out.mkdir(parents=True, exist_ok=True)
    run = run_result(out, target)
    sink.run_started(run)
    for res in results:
        run.scenarios.append(res)
        sink.scenario_finished(run, res)
    run.finished = time.time()
    sink.run_finished(run)
    return run


def agent_fails(tmp_path: Path, out: Path, scenario_file: Path) -> Any:
    write_logs(out / "connect", {"agent": register_log_text(), "caller": ""})
    res = scenario_result("connect", scenario_file, [reg_ok(), reg_fail()],
                          error={"step": "setup", "message": "registration failed", "kind": "failed"},
                          sip={"calls": {}, "registrations": {"agent": {"account": "agent1", "code": 401,
                                                                        "reason": "Unauthorized"}}},
                          artifacts={"sip_log:agent": "agent.sip.log", "log:agent": "agent.log"})
    return res


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    p = tmp_path / "connect.yaml"
    p.write_text("name: connect\nsteps: [talk: 1]\n")
    return p


def test_sink_opens_findings_with_diagnosis_evidence_and_snapshot(tmp_path: Path, scenario_file: Path) -> None:
    store = SqliteStore(tmp_path / "f.db")
    out = tmp_path / "run-1"
    feed(FindingsSink(store), out, [agent_fails(tmp_path, out, scenario_file)])
    (f,) = store.findings()
    assert f.key.check == "register:agent" and f.key.target == "lab" and f.state is State.OPEN
    assert f.diagnosis is not None and f.diagnosis.rule == "auth_failure"
    assert f.scenario_file == str(scenario_file) and f.target_file is None
    assert f.evidence["run_dir"] == str(out / "connect")
    assert (Path(f.evidence["run_dir"]) / f.evidence["files"]["sip_log:agent"]).is_file()
    snap = json.loads((out / "findings.json").read_text())
    assert snap["format"] == FORMAT and snap["run"]["name"] == "run-1" and snap["run"]["finished"]
    (entry,) = snap["findings"]
    assert entry["this_run"] == "found" and entry["diagnosis"]["rule"] == "auth_failure"
    assert [h["action"] for h in entry["history"]] == ["found"] and entry["sightings"][0]["value"] == 401
    # the next night: the same failure is the same finding
    out2 = tmp_path / "run-2"
    feed(FindingsSink(store), out2, [agent_fails(tmp_path, out2, scenario_file)])
    (f,) = store.findings()
    assert f.occurrences == 2 and f.first_run.name == "run-1" and f.last_run.name == "run-2"
    assert json.loads((out2 / "findings.json").read_text())["findings"][0]["this_run"] == "seen"


def test_scenario_that_stopped_without_a_failing_check_is_still_a_finding(tmp_path: Path,
                                                                           scenario_file: Path) -> None:
    store = SqliteStore(tmp_path / "f.db")
    res = scenario_result("connect", scenario_file, [], error={"step": "setup", "message": "boom", "kind": "x"})
    feed(FindingsSink(store), tmp_path / "run", [res])
    (f,) = store.findings()
    assert f.key.check == "scenario" and f.verdict == "ERROR" and "boom" in f.title


def test_database_trouble_mid_run_warns_once_and_never_stops_the_run(tmp_path: Path, scenario_file: Path) -> None:
    store = SqliteStore(tmp_path / "f.db")
    warnings: list[str] = []
    sink = FindingsSink(store, warn=warnings.append)
    store.conn.close()  # the database goes away under the run
    feed(sink, tmp_path / "run", [agent_fails(tmp_path, tmp_path / "run", scenario_file)] * 2)
    assert len(warnings) == 1 and warnings[0].startswith("warning: findings not stored:")
    assert "results.json has every result" in warnings[0]


def test_make_sink_fails_before_the_run_on_a_bad_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.contracts.errors import StoreError

    monkeypatch.delenv("HARNESS_DB", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    (home / "findings.db").write_text("garbage")
    with pytest.raises(StoreError, match="not an SQLite database"):
        make_sink(Settings(home=home))


# ---- retest -----------------------------------------------------------------------------------------
FakeSession = Callable[..., RunResult]


def fake_session(tmp_path: Path, passes: bool, calls: list[dict[str, Any]]) -> FakeSession:
    def run_session(settings: Settings, paths: list[Path], *, target_file: Path | None, out: Path,
                    log: Callable[[str], None] = print, sinks: list[Any] | None = None, **_: Any) -> RunResult:
        calls.append({"paths": paths, "target_file": target_file, "out": out})
        agent_ok = CheckResult.of(CheckName("register", subject="agent"), Verdict.PASS, 200, 200, "SIP", "==")
        checks = [reg_ok(), agent_ok] if passes else [reg_ok(), reg_fail(code=403)]
        write_logs(out / "connect", {"agent": register_log_text(), "caller": ""})
        res = scenario_result("connect", paths[0], checks, artifacts={"sip_log:agent": "agent.sip.log"})
        return feed(sinks[0] if sinks else FindingsSink(SqliteStore(tmp_path / "x.db")), out, [res])

    return run_session


def test_retest_passes_verifies_with_before_and_after(tmp_path: Path, scenario_file: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqliteStore(tmp_path / "f.db")
    out = tmp_path / "run-1"
    feed(FindingsSink(store), out, [agent_fails(tmp_path, out, scenario_file)])
    (f,) = store.findings()
    store.transition(f.id, Action.FIXED, "password corrected")
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(session, "run_session", fake_session(tmp_path, True, calls))
    lines: list[str] = []
    (o,) = retest_findings(Settings(home=tmp_path), store, [store.finding(f.id)], out_base=tmp_path / "reports",
                           log=lines.append)
    assert calls[0]["paths"] == [scenario_file] and calls[0]["target_file"] is None
    assert o.passed and o.action is Action.VERIFIED and o.finding.state is State.VERIFIED
    row = o.rows[0]
    assert row.name == "register:agent" and row.before and row.after
    assert (row.before["value"], row.before["verdict"]) == (401, "FAIL")
    assert (row.after["value"], row.after["verdict"]) == (200, "PASS")
    history = [(t.action.value, t.to_state.value) for t in o.finding.history]
    assert history == [("found", "open"), ("fixed", "fixed"), ("verified", "verified")]
    assert "401 SIP FAIL -> 200 SIP PASS" in o.finding.history[-1].note
    snap = json.loads((o.run_dir / "findings.json").read_text())
    assert snap["run"]["kind"] == "retest" and snap["run"]["retest_of"] == [f.id]
    (rt,) = snap["retests"]
    assert rt["passed"] and rt["rows"][0]["before"]["value"] == 401 and rt["rows"][0]["after"]["value"] == 200
    assert snap["findings"][0]["this_run"] == "verified"


def test_retest_fails_reopens_keeping_history_and_warns_on_changed_scenario(
        tmp_path: Path, scenario_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqliteStore(tmp_path / "f.db")
    out = tmp_path / "run-1"
    feed(FindingsSink(store), out, [agent_fails(tmp_path, out, scenario_file)])
    (f,) = store.findings()
    store.transition(f.id, Action.FIXED, "password corrected")
    scenario_file.write_text("name: connect\nsteps: [talk: 2]\n")
    monkeypatch.setattr(session, "run_session", fake_session(tmp_path, False, []))
    lines: list[str] = []
    (o,) = retest_findings(Settings(home=tmp_path), store, [store.finding(f.id)], out_base=tmp_path / "reports",
                           log=lines.append)
    assert not o.passed and o.finding.state is State.OPEN and o.action is Action.REOPENED
    assert [t.action.value for t in o.finding.history] == ["found", "fixed", "reopened"]
    assert o.finding.occurrences == 2 and o.rows[0].after and o.rows[0].after["value"] == 403
    assert any(w.startswith(f"warning: {scenario_file} changed since finding #{f.id}") for w in lines)


def test_retest_of_a_vanished_scenario_file_is_an_input_error(tmp_path: Path, scenario_file: Path) -> None:
    from harness.contracts.errors import InputError

    store = SqliteStore(tmp_path / "f.db")
    feed(FindingsSink(store), tmp_path / "run-1", [agent_fails(tmp_path, tmp_path / "run-1", scenario_file)])
    scenario_file.unlink()
    with pytest.raises(InputError, match="no longer exists"):
        retest_findings(Settings(home=tmp_path), store, store.findings(), out_base=tmp_path / "r")


def test_interrupted_scenario_is_stored_without_an_interruption_finding(tmp_path: Path, scenario_file: Path) -> None:
    """Ctrl-C: the runner appends the cut-short scenario to the run but never reports it as finished."""
    store = SqliteStore(tmp_path / "f.db")
    sink = FindingsSink(store)
    out = tmp_path / "run"
    out.mkdir()
    run = run_result(out)
    sink.run_started(run)
    stopped = CheckResult.error(CheckName("step", subject="step 2 (talk)"), "the run was interrupted")
    cut = scenario_result("connect", scenario_file, [reg_fail(), stopped],
                          error={"step": "step 2 (talk)", "message": "interrupted", "kind": "interrupted"})
    run.scenarios.append(cut)
    run.interrupted = True
    run.finished = time.time()
    sink.run_finished(run)
    (sc,) = store.scenarios(sink.run.id if sink.run and sink.run.id else 0)
    assert len(sc.checks) == 2 and store.run(sc.run_id or 0).interrupted
    assert [f.key.check for f in store.findings()] == ["register:agent"]


def test_every_scenario_is_stored_once_even_when_results_are_not_kept(tmp_path: Path, scenario_file: Path) -> None:
    store = SqliteStore(tmp_path / "f.db")
    sink = FindingsSink(store)
    out = tmp_path / "run"
    out.mkdir()
    run = run_result(out)
    sink.run_started(run)
    for _ in range(20):  # a caller that drops each result: a recycled object id must not look "already stored"
        sink.scenario_finished(run, scenario_result("connect", scenario_file, [reg_fail()]))
    last = scenario_result("connect", scenario_file, [reg_fail()])
    run.scenarios.append(last)
    sink.scenario_finished(run, last)
    sink.run_finished(run)  # 'last' was reported already: not stored twice
    assert len(store.scenarios(sink.run.id if sink.run and sink.run.id else 0)) == 21
    assert store.findings()[0].occurrences == 21


# ---- failures of the harness itself ----------------------------------------------------------------------
def overloaded(cid: CheckName | None = None) -> CheckResult:
    late = "party agent woke 900 ms late (limit 100 ms)"
    return CheckResult.of(cid or CheckName("register", subject="agent"), Verdict.ERROR, 401, 200, "SIP", "==",
                          f"harness host overloaded: {late}",
                          {"health": {"overloaded": True, "window_s": 2.0, "reasons": [late]}}, blame="harness")


def test_harness_failures_are_one_finding_of_their_own_and_leave_the_pbxs_alone(tmp_path: Path,
                                                                                 scenario_file: Path) -> None:
    store = SqliteStore(tmp_path / "f.db")
    out = tmp_path / "run-1"
    feed(FindingsSink(store), out, [agent_fails(tmp_path, out, scenario_file)])
    (f,) = store.findings()
    store.transition(f.id, Action.FIXED, "password corrected")
    # the next night the same check could not be judged: the harness's host was starved
    out2 = tmp_path / "run-2"
    mos = CheckName("audio", direction=("caller", "agent"), metric="mos")
    res = scenario_result("connect", scenario_file, [reg_ok(), overloaded(), overloaded(mos)])
    feed(FindingsSink(store), out2, [res])
    pbx, own = store.findings()
    assert pbx.id == f.id and pbx.state is State.FIXED and pbx.occurrences == 1  # not reopened, not seen
    assert pbx.diagnosis is not None and pbx.diagnosis.rule == "auth_failure"
    assert own.key.check == "harness" and own.verdict == "ERROR" and own.state is State.OPEN
    assert own.diagnosis is not None and own.diagnosis.rule == "harness_overloaded"
    assert "2 check(s) not judged because of the harness (register:agent, audio:caller->agent:mos)" in own.title


def test_a_retest_the_harness_could_not_judge_is_inconclusive(tmp_path: Path, scenario_file: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    store = SqliteStore(tmp_path / "f.db")
    out = tmp_path / "run-1"
    feed(FindingsSink(store), out, [agent_fails(tmp_path, out, scenario_file)])
    (f,) = store.findings()
    store.transition(f.id, Action.FIXED, "password corrected")

    def starved(settings: Settings, paths: list[Path], *, target_file: Path | None, out: Path,
                log: Callable[[str], None] = print, sinks: list[Any] | None = None, **_: Any) -> RunResult:
        res = scenario_result("connect", paths[0], [reg_ok(), overloaded()])
        return feed(sinks[0] if sinks else FindingsSink(SqliteStore(tmp_path / "x.db")), out, [res])

    monkeypatch.setattr(session, "run_session", starved)
    (o,) = retest_findings(Settings(home=tmp_path), store, [store.finding(f.id)], out_base=tmp_path / "reports",
                           log=lambda _m: None)
    assert o.inconclusive and not o.passed and o.action is Action.RETESTED
    assert o.finding.state is State.FIXED  # neither verified nor reopened
    assert "retest was inconclusive (the harness failed, not the PBX)" in o.finding.history[-1].note
