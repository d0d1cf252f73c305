"""The find -> analyse -> fix -> retest loop against the real lab: the lab is broken on purpose, the run
finds it with the right diagnosis, the lab is repaired, and the retest verifies it with before/after
figures. And a harness killed with SIGKILL mid-run keeps everything it had measured."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from harness.cli import cli
from harness.contracts.settings import Settings
from harness.findings.finding_model import State
from harness.findings.findings_sink import FindingsSink
from harness.findings.retest import retest_findings
from harness.findings.sqlite import SqliteStore
from harness.lab import LabStack
from harness.lab.config import lab_profile_mapping
from harness.scenarios.session import run_session
from harness.sip import AutoPolicy, Party

from .conftest import FIXTURES, REPO, write_scenario

CALL = """
    name: {name}
    parties:
      caller: {{account: caller, play: FIX/speech/caller.wav}}
      agent: {{account: {agent}, play: FIX/speech/agent.wav}}
    steps:
      - call: {{from: caller, to: agent}}
      - talk: {talk}
      - hangup: {{party: caller, call: main}}
      - expect_setup: {{call: main}}
    """


def profile(lab: LabStack, path: Path, **passwords: str) -> Path:
    """The lab as a target profile file, with some passwords replaced (the 'misconfigured PBX')."""
    data: dict[str, Any] = lab_profile_mapping(lab.config, lab.rec_dir)
    data["name"] = "pbx-under-test"
    for account, pw in passwords.items():
        data["accounts"][account]["password"] = pw
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_wrong_agent_password_is_found_diagnosed_fixed_and_verified(lab: LabStack, lab_home: Path,
                                                                    tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, CALL.format(name="agent-login", agent="agent1", talk=3))
    pbx = profile(lab, tmp_path / "pbx.yaml", agent1="not-the-password")
    db = tmp_path / "findings.db"
    store = SqliteStore(db)
    lines: list[str] = []
    result = run_session(Settings(home=lab_home), [scenario], target_file=pbx, out=tmp_path / "night",
                         log=lines.append, sinks=[FindingsSink(store)])
    assert result.verdict.value == "FAIL"

    (f,) = store.findings()
    assert (f.key.scenario, f.key.check, f.state) == ("agent-login", "register:agent", State.OPEN)
    assert f.diagnosis is not None and f.diagnosis.rule == "auth_failure"
    assert "account 'agent1' (user 2001)" in f.diagnosis.cause and str(pbx) in f.diagnosis.fix
    assert f.target_file == str(pbx) and f.scenario_file == str(scenario)
    assert "401 Unauthorized" in " ".join(f.evidence["sip"]["agent"])
    assert "response=" not in json.dumps(f.evidence), "digest answers never reach the evidence"
    snap = json.loads((tmp_path / "night" / "findings.json").read_text())
    assert [(x["id"], x["this_run"], x["diagnosis"]["rule"]) for x in snap["findings"]] == [
        (f.id, "found", "auth_failure")]

    # analyse, repair the profile, record the fix, and retest through the command line
    home = ["--home", str(lab_home)]
    runner = CliRunner()
    res = runner.invoke(cli, [*home, "findings", "--db", str(db), "note", str(f.id), "agent1 password wrong in "
                              "profile"], catch_exceptions=False)
    assert "is analysed" in res.output
    profile(lab, pbx)
    res = runner.invoke(cli, [*home, "findings", "--db", str(db), "fixed", str(f.id), "--note", "password set"],
                        catch_exceptions=False)
    assert res.exit_code == 0
    res = runner.invoke(cli, [*home, "retest", str(f.id), "--db", str(db), "--out-base", str(tmp_path / "rt"), "-q"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert f"finding #{f.id} (agent-login / register:agent @ pbx-under-test (127.0.0.1:{lab.config.sip_port}/udp))" \
           ": PASSED -> verified" in res.output
    table = {ln.split()[0]: ln.split()[1:] for ln in res.output[res.output.index("check"):].splitlines()[1:]
             if ln.startswith("  ") and not ln.startswith("  run:")}
    assert table["register:agent"] == ["401", "SIP", "FAIL", "200", "SIP", "PASS"]
    assert table["setup_time:main"][:2] == ["-", "(not"] and table["setup_time:main"][-1] == "PASS"

    f = store.finding(f.id)
    assert f.state is State.VERIFIED
    assert [t.action.value for t in f.history] == ["found", "noted", "fixed", "verified"]
    (rt_dir,) = (tmp_path / "rt").iterdir()
    rt = json.loads((rt_dir / "findings.json").read_text())
    assert rt["run"]["kind"] == "retest" and rt["retests"][0]["passed"]
    first_row = rt["retests"][0]["rows"][0]
    assert first_row["before"]["value"] == 401 and first_row["after"]["value"] == 200


def test_agent_not_logged_in_is_found_then_verified_once_it_logs_in(lab: LabStack, lab_home: Path,
                                                                    tmp_path: Path) -> None:
    scenario = write_scenario(tmp_path, """
        name: reach-agent2
        parties:
          caller: {account: caller, play: FIX/speech/caller.wav}
        steps:
          - call: {from: caller, to: agent2}
          - talk: 3
          - hangup: {party: caller, call: main}
          - expect_setup: {call: main}
        """)
    store = SqliteStore(tmp_path / "findings.db")
    settings = Settings(home=lab_home)
    run_session(settings, [scenario], target_file=None, out=tmp_path / "night", log=lambda m: None,
                sinks=[FindingsSink(store)])
    (f,) = store.findings()
    assert (f.key.check, f.key.target, f.target_file) == ("call:main", "lab", None)
    assert f.diagnosis is not None and f.diagnosis.rule == "call_refused"
    assert f.diagnosis.cause.startswith("404") and "not logged in" in f.diagnosis.cause
    assert "sip:2002@lab.local" in f.diagnosis.cause

    # the repair: agent2 logs in (a phone that registers and answers)
    with Party("agent2", tmp_path / "agent2") as agent2:
        agent2.add_account(lab.target.account("agent2"), lab.target,
                           auto=AutoPolicy(mode="answer", play=str(FIXTURES / "speech" / "agent.wav")))
        assert agent2.wait_registered("agent2", 5.0).ok
        (o,) = retest_findings(settings, store, [store.finding(f.id)], out_base=tmp_path / "rt", log=lambda m: None)
    assert o.passed and o.finding.state is State.VERIFIED
    rows = {r.name: r for r in o.rows}
    assert rows["call:main"].before is not None and rows["call:main"].before["value"] == 404
    assert rows["call:main"].after is not None and rows["call:main"].after["value"] == 200
    after_setup = rows["setup_time:main"].after
    assert rows["setup_time:main"].before is None and after_setup is not None and after_setup["verdict"] == "PASS"
    assert 0 < after_setup["value"] < 2000


def test_kill_9_of_harness_run_keeps_every_finished_scenario(lab: LabStack, lab_home: Path, tmp_path: Path) -> None:
    quick = write_scenario(tmp_path, CALL.format(name="quick-fail", agent="agent1", talk=1), "quick.yaml")
    slow = write_scenario(tmp_path, CALL.format(name="long-call", agent="agent2", talk=60), "slow.yaml")
    pbx = profile(lab, tmp_path / "pbx.yaml", agent1="not-the-password")
    db, out = tmp_path / "findings.db", tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "harness", "--home", str(lab_home), "run", str(quick), str(slow),
                             "--target", str(pbx), "--out", str(out), "-q"], cwd=REPO,
                            env={**os.environ, "HARNESS_DB": str(db)}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _stored_scenarios(db) < 1:
            time.sleep(0.1)
        time.sleep(1.0)  # the second scenario is under way: its parties are up, its call is being set up
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        _kill_group(proc.pid)
    results = json.loads((out / "results.json").read_text())
    store = SqliteStore(db)
    run = store.last_run()
    assert run is not None and run.finished is None and run.out_dir == str(out.resolve())
    (stored,) = store.scenarios(run.id or 0)
    (written,) = results["scenarios"]
    assert stored.name == written["name"] == "quick-fail"
    assert stored.checks == written["checks"], "the database holds exactly what results.json measured"
    (f,) = store.findings()
    assert f.key.check == "register:agent" and f.diagnosis is not None and f.diagnosis.rule == "auth_failure"
    assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def _stored_scenarios(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM scenario_results").fetchone()[0])
    except sqlite3.Error:
        return 0


def _kill_group(pgid: int) -> None:
    """The killed harness's pjsua2 children are in its session: end them too, and wait until they are gone."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"processes of group {pgid} survived SIGKILL")
