"""``harness findings`` and ``harness retest`` in-process: listing, showing, the analyse/fix steps, the
retest table, one-line errors, and the scenario list for ``harness run --only-failed``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli, main
from harness.contracts.checkname import CheckName
from harness.contracts.errors import InputError
from harness.contracts.settings import Settings
from harness.contracts.verdict import CheckResult, Verdict
from harness.findings.findings_cli import only_failed_paths
from harness.findings.findings_sink import FindingsSink
from harness.findings.sqlite import SqliteStore
from harness.scenarios import session

from .test_findings_sink import agent_fails, fake_session, feed
from .test_findings_support import reg_ok, scenario_result


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A database holding one run in which the agent's registration failed (finding #1)."""
    sc = tmp_path / "connect.yaml"
    sc.write_text("name: connect\nsteps: [talk: 1]\n")
    path = tmp_path / "f.db"
    store = SqliteStore(path)
    feed(FindingsSink(store), tmp_path / "run-1", [agent_fails(tmp_path, tmp_path / "run-1", sc)])
    store.close()
    return path


def invoke(tmp_path: Path, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(cli, ["--home", str(tmp_path / "home"), *args], catch_exceptions=False)
    return res.exit_code, res.output


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_list_show_and_json(tmp_path: Path, db: Path) -> None:
    code, out = invoke(tmp_path, "findings", "--db", str(db), "list")
    assert code == 0
    assert "   1  open      FAIL      1x" in out and "connect / register:agent @ lab" in out
    assert "cause: the PBX refused the credentials of account 'agent1'" in out
    code, out = invoke(tmp_path, "findings", "--db", str(db), "list", "--status", "verified")
    assert "no findings (verified)" in out
    code, out = invoke(tmp_path, "findings", "--db", str(db), "list", "--json", "--status", "all")
    (f,) = json.loads(out)
    assert f["id"] == 1 and f["state"] == "open" and f["diagnosis"]["rule"] == "auth_failure"
    code, out = invoke(tmp_path, "findings", "--db", str(db), "show", "1")
    assert code == 0
    for needle in ("finding #1: register:agent FAIL: 401 SIP (threshold == 200)", "probable cause (likely, rule "
                   "auth_failure)", "suggested fix:", "sip_log:agent", "SIP seen by agent", "history:",
                   "found     - -> open"):
        assert needle in out, needle


def test_note_fixed_and_a_refused_transition(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = invoke(tmp_path, "findings", "--db", str(db), "note", "1", "agent1's", "password", "was", "rotated")
    assert code == 0 and "finding #1 is analysed" in out
    code, out = invoke(tmp_path, "findings", "--db", str(db), "fixed", "1", "--note", "profile updated")
    assert code == 0 and "harness retest 1" in out
    code, _, err = run_main(capsys, "--home", str(tmp_path), "findings", "--db", str(db), "fixed", "1", "--note", "x")
    assert code == 2 and err == "error: finding #1 is already fixed; 'harness retest 1' checks the fix\n"
    code, _, err = run_main(capsys, "--home", str(tmp_path), "findings", "--db", str(db), "show", "7")
    assert code == 2 and err.startswith("error: no finding #7 in ") and err.count("\n") == 1
    code, _, err = run_main(capsys, "--home", str(tmp_path), "findings", "--db", str(db), "fixed", "1")
    assert code == 2 and "--note" in err
    store = SqliteStore(db)
    notes = [(t.action.value, t.note) for t in store.finding(1).history]
    assert notes == [("found", "FAIL in run run-1"), ("noted", "agent1's password was rotated"),
                     ("fixed", "profile updated")]


def test_retest_prints_old_and_new_side_by_side(tmp_path: Path, db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    invoke(tmp_path, "findings", "--db", str(db), "fixed", "1", "--note", "profile updated")
    monkeypatch.setattr(session, "run_session", fake_session(tmp_path, True, []))
    code, out = invoke(tmp_path, "retest", "--all-fixed", "--db", str(db), "--out-base", str(tmp_path / "rep"), "-q")
    assert code == 0, out
    assert "finding #1 (connect / register:agent @ lab): PASSED -> verified" in out
    table = out[out.index("check"):].splitlines()
    assert table[0].split() == ["check", "before", "after"]
    assert table[1].split() == ["register:agent", "401", "SIP", "FAIL", "200", "SIP", "PASS"]
    code, out = invoke(tmp_path, "retest", "--all-fixed", "--db", str(db))
    assert code == 0 and "no fixed findings to retest" in out


def test_retest_needs_an_id(tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_main(capsys, "--home", str(tmp_path), "retest", "--db", str(db))
    assert code == 2 and "name the finding(s) to retest, or use --all-fixed" in err


def test_only_failed_paths_lists_what_did_not_pass_last_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_DB", str(tmp_path / "f.db"))
    settings = Settings.load(tmp_path)
    with pytest.raises(InputError, match="no run is recorded"):
        only_failed_paths(settings)
    files = [tmp_path / f"{n}.yaml" for n in ("a", "b", "c")]
    for p in files:
        p.write_text("name: x\nsteps: [talk: 1]\n")
    store = SqliteStore(tmp_path / "f.db")
    ok = CheckResult.of(CheckName("call", call="main"), Verdict.PASS, 200, "answer")
    bad = CheckResult.of(CheckName("call", call="main"), Verdict.FAIL, 486, "answer")
    feed(FindingsSink(store), tmp_path / "old", [scenario_result("a", files[0], [ok])])
    feed(FindingsSink(store), tmp_path / "new", [scenario_result("a", files[0], [bad]),
                                                 scenario_result("b", files[1], [ok, reg_ok()]),
                                                 scenario_result("c", files[2], [bad])])
    assert only_failed_paths(settings) == [files[0], files[2]]
    files[2].unlink()
    with pytest.raises(InputError, match=r"c\.yaml: scenario file of the last run no longer exists"):
        only_failed_paths(settings)
