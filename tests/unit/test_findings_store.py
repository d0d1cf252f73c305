"""The SQLite findings store: schema versions, deduplication, the audit trail, and what it does with
files it must not trust (garbage, another program's database, a newer schema, damage, bad rows)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from harness.contracts.checkname import CheckName
from harness.contracts.errors import StoreError, TransitionError, UnknownFinding
from harness.contracts.settings import Settings
from harness.findings.finding_model import (
    Action,
    Diagnosis,
    FindingKey,
    Observation,
    RunRecord,
    ScenarioRecord,
    State,
)
from harness.findings.finding_store import FindingsStore, db_location, open_store
from harness.findings.lifecycle import next_state, on_retest, on_sighting
from harness.findings.migrations import APPLICATION_ID, LATEST, Migration, migrate
from harness.findings.sqlite import SqliteStore

from .test_findings_support import check


def new_run(store: FindingsStore, name: str = "run-1", target_key: str = "lab", started: float = 1000.0) -> int:
    run = store.begin_run(RunRecord(name=name, out_dir=f"/runs/{name}", started=started, target_key=target_key,
                                    target_name="lab", target={"name": "lab", "is_lab": True}))
    assert run.id is not None
    return run.id


def scenario_record(checks: list[dict[str, object]], name: str = "connect", file: str = "/s/connect.yaml",
                    started: float = 1000.0) -> ScenarioRecord:
    verdict = "PASS" if all(c["verdict"] == "PASS" for c in checks) else "FAIL"
    return ScenarioRecord(name=name, file=file, file_sha256="ab" * 32, verdict=verdict, started=started,
                          duration_s=2.0, out_dir=f"/runs/{name}", result={"name": name, "checks": checks})


def obs(chk: dict[str, object], scenario: str = "connect", target: str = "lab") -> Observation:
    return Observation(FindingKey(scenario, str(chk["name"]), target), str(chk["verdict"]), dict(chk),
                       f"{chk['name']} {chk['verdict']}", Diagnosis("auth_failure", "wrong password", "fix it"),
                       {"files": {"sip_log:agent": "agent.sip.log"}})


def fail_scenario(store: FindingsStore, run_id: int, value: int = 401, target: str = "lab",
                  started: float = 1000.0, hold: tuple[int, ...] = ()) -> list[str]:
    bad = check(CheckName("register", subject="agent"), "FAIL", value, 200, "SIP", "==")
    sc = scenario_record([check(CheckName("register", subject="caller"), "PASS", 200, 200), bad], started=started)
    return [c.action for c in store.record_scenario(run_id, sc, [obs(bad, target=target)], hold=hold)]


@pytest.fixture
def store(tmp_path: Path) -> SqliteStore:
    s = SqliteStore(tmp_path / "findings.db")
    yield s
    s.close()


# ---- opening and schema -----------------------------------------------------------------------------
def test_new_database_is_wal_versioned_and_marked_ours(store: SqliteStore) -> None:
    c = store.conn
    assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert c.execute("PRAGMA user_version").fetchone()[0] == LATEST
    assert c.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "scenario_results", "checks", "findings", "sightings", "transitions"} <= tables


def test_migrations_apply_in_order_once_and_roll_back_a_failure(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "m.db", isolation_level=None)
    steps = [Migration(2, "b", "ALTER TABLE t ADD COLUMN b TEXT"), Migration(1, "a", "CREATE TABLE t (a TEXT)")]
    assert migrate(conn, steps) == [1, 2]
    assert migrate(conn, steps) == []
    broken = [*steps, Migration(3, "c", "CREATE TABLE u (x TEXT); THIS IS NOT SQL")]
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'u'").fetchone()[0] == 0


def test_garbage_file_is_refused_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "findings.db"
    db.write_bytes(b"this is not a database\n" * 100)
    with pytest.raises(StoreError, match="is not an SQLite database") as err:
        SqliteStore(db)
    assert "\n" not in str(err.value) and str(db) in str(err.value)
    assert db.read_bytes().startswith(b"this is not"), "a file we do not trust is never overwritten"


def test_another_programs_database_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE customers (name TEXT)")
    with pytest.raises(StoreError, match="another program"):
        SqliteStore(db)


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "findings.db"
    SqliteStore(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {LATEST + 5}")
    with pytest.raises(StoreError, match=f"newer harness \\(schema version {LATEST + 5}"):
        SqliteStore(db)


def test_unsupported_backend_and_location_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(StoreError, match="not supported yet"):
        open_store("postgresql://user@host/db")
    monkeypatch.delenv("HARNESS_DB", raising=False)
    assert db_location(Settings.load(tmp_path / "home")) == tmp_path / "home" / "findings.db"
    monkeypatch.setenv("HARNESS_DB", str(tmp_path / "env.db"))  # read by the one settings object
    settings = Settings.load(tmp_path / "home")
    assert db_location(settings) == tmp_path / "env.db"
    assert db_location(settings, tmp_path / "opt.db") == tmp_path / "opt.db"


# ---- findings ---------------------------------------------------------------------------------------
def test_same_failure_twice_is_one_finding_with_two_sightings(store: SqliteStore) -> None:
    r1 = new_run(store, "run-1", started=1000.0)
    assert fail_scenario(store, r1, 401, started=1000.0) == ["found"]
    r2 = new_run(store, "run-2", started=2000.0)
    assert fail_scenario(store, r2, 403, started=2000.0) == ["seen"]
    (f,) = store.findings()
    assert f.key == FindingKey("connect", "register:agent", "lab")
    assert f.occurrences == 2 and f.first_seen == 1002.0 and f.last_seen == 2002.0
    assert (f.first_run.name, f.last_run.name) == ("run-1", "run-2")
    assert [s.value for s in f.sightings] == [401, 403] and f.verdict == "FAIL"
    assert f.diagnosis is not None and f.diagnosis.cause == "wrong password"
    assert [t.action for t in f.history] == [Action.FOUND]
    # another target is another finding
    assert fail_scenario(store, r2, target="pbx (10.0.0.1:5060/udp)") == ["found"]
    assert len(store.findings()) == 2


def test_life_cycle_with_audit_trail(store: SqliteStore) -> None:
    run_id = new_run(store)
    fail_scenario(store, run_id)
    (f,) = store.findings()
    assert store.transition(f.id, Action.NOTED, "agent1 password was rotated").state is State.ANALYSED
    assert store.transition(f.id, Action.FIXED, "new password in profile").state is State.FIXED
    with pytest.raises(TransitionError, match="already fixed"):
        store.transition(f.id, Action.FIXED, "again")
    assert fail_scenario(store, run_id, hold=(f.id,)) == ["seen"]
    assert store.finding(f.id).state is State.FIXED, "a finding under retest keeps its state"
    assert fail_scenario(store, run_id) == ["reopened"]
    f = store.finding(f.id)
    assert f.state is State.OPEN and f.occurrences == 3
    assert [(t.action.value, t.to_state.value) for t in f.history] == [
        ("found", "open"), ("noted", "analysed"), ("fixed", "fixed"), ("reopened", "open")]
    assert f.history[1].note == "agent1 password was rotated"
    assert all(t.at > 0 for t in f.history)
    assert store.transition(f.id, Action.VERIFIED, "retest passed").state is State.VERIFIED
    with pytest.raises(UnknownFinding, match="no finding #99"):
        store.finding(99)


def test_passed_check_of_a_known_finding_is_reported(store: SqliteStore) -> None:
    run_id = new_run(store)
    fail_scenario(store, run_id)
    sc = scenario_record([check(CheckName("register", subject="agent"), "PASS", 200, 200, "SIP", "==")])
    assert [c.action for c in store.record_scenario(run_id, sc, [])] == ["passed"]


def test_bad_records_are_reported_and_skipped(store: SqliteStore) -> None:
    run_id = new_run(store)
    fail_scenario(store, run_id)
    store.record_scenario(run_id, scenario_record([check(CheckName("call", call="main"), "FAIL", 486)]),
                          [obs(check(CheckName("call", call="main"), "FAIL", 486))])
    bad_id, good_id = (f.id for f in store.findings())
    store.conn.execute("UPDATE findings SET state = 'bogus' WHERE id = ?", (bad_id,))
    store.conn.execute("INSERT INTO transitions (finding_id, at, action, to_state) VALUES (?, 1, 'teleported', "
                       "'open')", (good_id,))
    listed = store.findings()
    assert [f.id for f in listed] == [good_id]
    assert any(f"finding #{bad_id}: bad record (unknown state 'bogus'); skipped" in m for m in store.bad_records)
    assert any("transition" in m and "skipped" in m for m in store.bad_records)
    with pytest.raises(StoreError, match=f"has a damaged finding #{bad_id}"):
        store.finding(bad_id)
    store.conn.execute("UPDATE findings SET state = 'open', evidence_json = '{not json' WHERE id = ?", (bad_id,))
    assert [f.id for f in store.findings()] == [good_id]
    assert any("evidence is not valid JSON" in m for m in store.bad_records)
    # a new sighting of the damaged finding does not crash the run either
    store.conn.execute("UPDATE findings SET state = 'bogus' WHERE id = ?", (bad_id,))
    assert fail_scenario(store, run_id) == []
    assert any("not updated" in m for m in store.bad_records)


def test_runs_and_their_scenarios(store: SqliteStore) -> None:
    assert store.last_run() is None
    r1 = new_run(store, "run-1", started=1.0)
    r2 = new_run(store, "run-2", started=2.0)
    store.begin_run(RunRecord(name="retest-1", out_dir="/r", started=3.0, target_key="lab", target_name="lab",
                              target={}, kind="retest", retest_of=(1,)))
    fail_scenario(store, r2)
    store.finish_run(r2, finished=5.0, verdict="FAIL", interrupted=False)
    last = store.last_run()
    assert last is not None and (last.id, last.finished, last.verdict) == (r2, 5.0, "FAIL")
    assert store.run(r1).finished is None
    (sc,) = store.scenarios(r2)
    assert sc.verdict == "FAIL" and sc.file == "/s/connect.yaml" and len(sc.checks) == 2
    f = store.findings()[0]
    assert f.last_check_id is not None
    again = store.scenario_of_check(f.last_check_id)
    assert again is not None and again.id == sc.id


def test_life_cycle_rules() -> None:
    assert next_state(None, Action.FOUND) is State.OPEN
    assert next_state(State.OPEN, Action.NOTED) is State.ANALYSED
    assert next_state(State.FIXED, Action.NOTED) is State.FIXED  # a note never moves a fix back
    assert next_state(State.ANALYSED, Action.FIXED) is State.FIXED
    with pytest.raises(TransitionError, match="only an open or analysed finding"):
        next_state(State.VERIFIED, Action.FIXED, 4)
    with pytest.raises(TransitionError, match="only a fixed or verified finding can be reopened"):
        next_state(State.OPEN, Action.REOPENED)
    assert on_sighting(None) is Action.FOUND and on_sighting(State.ANALYSED) is None
    assert on_sighting(State.VERIFIED) is Action.REOPENED
    assert on_retest(State.FIXED, True) is Action.VERIFIED and on_retest(State.FIXED, False) is Action.REOPENED
    assert on_retest(State.OPEN, False) is Action.RETESTED and on_retest(State.VERIFIED, True) is Action.RETESTED
