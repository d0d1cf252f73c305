"""The SQLite backend of the findings store: one file, WAL mode, versioned schema.

This module writes and queries; opening and identifying the file is :mod:`.sqlite_open`'s (WAL,
``synchronous=FULL``, garbage and foreign databases refused), reading rows back into records
:mod:`.sqlite_rows`'. ``BEGIN IMMEDIATE`` takes the write lock before reading, so two runs writing at
once wait for each other instead of failing half-way.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.contracts.errors import StoreError, UnknownFinding
from harness.findings.finding_model import (
    Action,
    Change,
    Finding,
    FindingKey,
    Observation,
    RunRecord,
    ScenarioRecord,
    State,
)
from harness.findings.lifecycle import next_state, on_sighting
from harness.findings.sqlite_open import connect, store_errors
from harness.findings.sqlite_rows import BadRecord, dump, finding_of, run_of, scenario_of

__all__ = ["SqliteStore"]


class SqliteStore:
    """:class:`~harness.findings.finding_store.FindingsStore` on an SQLite file (created when missing)."""

    def __init__(self, path: Path, *, on_bad_record: Callable[[str], None] | None = None):
        self.path = path
        self.location = str(path)
        self.bad_records: list[str] = []
        self._report = on_bad_record or self.bad_records.append
        self.conn = connect(path)

    def _errors(self) -> contextlib.AbstractContextManager[None]:
        return store_errors(self.location)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._errors():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    # ---- runs -------------------------------------------------------------------------------------
    def begin_run(self, run: RunRecord) -> RunRecord:
        with self._transaction() as c:
            cur = c.execute(
                "INSERT INTO runs (name, out_dir, kind, retest_of, started, target_key, target_name, target_file,"
                " target_sha256, target_json, harness_version) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run.name, run.out_dir, run.kind, dump(list(run.retest_of)), run.started, run.target_key,
                 run.target_name, run.target_file, run.target_sha256, dump(run.target), run.harness_version))
            run_id = int(cur.lastrowid or 0)
        return self.run(run_id)

    def finish_run(self, run_id: int, *, finished: float, verdict: str, interrupted: bool) -> None:
        with self._transaction() as c:
            c.execute("UPDATE runs SET finished = ?, verdict = ?, interrupted = ? WHERE id = ?",
                      (finished, verdict, int(interrupted), run_id))

    def run(self, run_id: int) -> RunRecord:
        with self._errors():
            row = self.conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(self.location, f"has no run #{run_id}")
        try:
            return run_of(row)
        except BadRecord as exc:
            raise StoreError(self.location, f"has a damaged run #{run_id} ({exc})") from None

    def last_run(self, kind: str = "run") -> RunRecord | None:
        with self._errors():
            rows = self.conn.execute("SELECT * FROM runs WHERE kind = ? ORDER BY started DESC, id DESC LIMIT 20",
                                     (kind,)).fetchall()
        for row in rows:
            try:
                return run_of(row)
            except BadRecord as exc:
                self._report(f"{self.location}: run #{row['id']}: bad record ({exc}); skipped")
        return None

    # ---- scenarios --------------------------------------------------------------------------------
    def scenarios(self, run_id: int) -> list[ScenarioRecord]:
        with self._errors():
            rows = self.conn.execute("SELECT * FROM scenario_results WHERE run_id = ? ORDER BY id",
                                     (run_id,)).fetchall()
        out = []
        for row in rows:
            try:
                out.append(scenario_of(row))
            except BadRecord as exc:
                self._report(f"{self.location}: scenario result #{row['id']}: bad record ({exc}); skipped")
        return out

    def scenario_of_check(self, check_id: int) -> ScenarioRecord | None:
        with self._errors():
            row = self.conn.execute("SELECT s.* FROM scenario_results s JOIN checks c ON c.scenario_result_id = s.id"
                                    " WHERE c.id = ?", (check_id,)).fetchone()
        if row is None:
            return None
        try:
            return scenario_of(row)
        except BadRecord as exc:
            self._report(f"{self.location}: scenario result #{row['id']}: bad record ({exc}); skipped")
            return None

    def record_scenario(self, run_id: int, scenario: ScenarioRecord, observations: Sequence[Observation], *,
                        hold: Collection[int] = ()) -> list[Change]:
        changes: list[Change] = []
        with self._transaction() as c:
            run = self.run(run_id)
            cur = c.execute(
                "INSERT INTO scenario_results (run_id, name, file, file_sha256, verdict, started, duration_s, out_dir,"
                " result_json) VALUES (?,?,?,?,?,?,?,?,?)",
                (run_id, scenario.name, scenario.file, scenario.file_sha256, scenario.verdict, scenario.started,
                 scenario.duration_s, scenario.out_dir, dump(scenario.result)))
            sid = int(cur.lastrowid or 0)
            check_ids: dict[str, int] = {}
            for chk in scenario.checks:
                cur = c.execute(
                    "INSERT INTO checks (scenario_result_id, name, verdict, value_json, threshold_json, unit, op,"
                    " detail, metrics_json) VALUES (?,?,?,?,?,?,?,?,?)",
                    (sid, str(chk.get("name", "")), str(chk.get("verdict", "ERROR")), dump(chk.get("value")),
                     dump(chk.get("threshold")), str(chk.get("unit") or ""), str(chk.get("op") or ""),
                     str(chk.get("detail") or ""), dump(chk.get("metrics") or {})))
                check_ids.setdefault(str(chk.get("name", "")), int(cur.lastrowid or 0))
            now = scenario.started + scenario.duration_s
            for obs in observations:
                change = self._observe(c, run, scenario, obs, check_ids.get(obs.key.check), now, hold)
                if change is not None:
                    changes.append(change)
            changes += self._passed(c, scenario, run.target_key, check_ids)
        return changes

    def _observe(self, c: sqlite3.Connection, run: RunRecord, sc: ScenarioRecord, obs: Observation,
                 check_id: int | None, now: float, hold: Collection[int]) -> Change | None:
        k = obs.key
        row = c.execute("SELECT id, state FROM findings WHERE scenario = ? AND check_name = ? AND target_key = ?",
                        (k.scenario, k.check, k.target)).fetchone()
        values = (obs.verdict, obs.title, now, run.id, check_id, sc.file, sc.file_sha256, run.target_file,
                  run.target_sha256, dump(obs.diagnosis.to_dict()), dump(obs.evidence))
        if row is None:
            cur = c.execute(
                "INSERT INTO findings (verdict, title, last_seen, last_run_id, last_check_id, scenario_file,"
                " scenario_sha256, target_file, target_sha256, diagnosis_json, evidence_json, scenario, check_name,"
                " target_key, state, first_seen, first_run_id, occurrences)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
                (*values, k.scenario, k.check, k.target, State.OPEN.value, now, run.id))
            fid = int(cur.lastrowid or 0)
            self._log(c, fid, now, Action.FOUND, None, State.OPEN, f"{obs.verdict} in run {run.name}", run.id)
            action = "found"
        else:
            fid = int(row["id"])
            try:
                state = State(row["state"])
            except ValueError:
                self._report(f"{self.location}: finding #{fid}: unknown state {row['state']!r}; not updated")
                return None
            act = None if fid in hold else on_sighting(state)
            new_state = next_state(state, act, fid) if act is not None else state
            c.execute("UPDATE findings SET verdict = ?, title = ?, last_seen = ?, last_run_id = ?, last_check_id = ?,"
                      " scenario_file = ?, scenario_sha256 = ?, target_file = ?, target_sha256 = ?,"
                      " diagnosis_json = ?, evidence_json = ?, occurrences = occurrences + 1, state = ?"
                      " WHERE id = ?", (*values, new_state.value, fid))
            if act is not None:
                self._log(c, fid, now, act, state, new_state,
                          f"{obs.verdict} again in run {run.name}: {obs.title}", run.id)
            action = act.value if act is not None else "seen"
        if check_id is not None:
            c.execute("INSERT INTO sightings (finding_id, run_id, check_id, at) VALUES (?,?,?,?)",
                      (fid, run.id, check_id, now))
        return Change(fid, k, action)

    def _passed(self, c: sqlite3.Connection, sc: ScenarioRecord, target: str,
                check_ids: dict[str, int]) -> list[Change]:
        passing = {str(ch.get("name")) for ch in sc.checks if ch.get("verdict") == "PASS"}
        rows = c.execute("SELECT id, check_name FROM findings WHERE scenario = ? AND target_key = ?",
                         (sc.name, target)).fetchall()
        return [Change(int(r["id"]), FindingKey(sc.name, r["check_name"], target), "passed")
                for r in rows if r["check_name"] in passing]

    @staticmethod
    def _log(c: sqlite3.Connection, fid: int, at: float, action: Action, frm: State | None, to: State, note: str,
             run_id: int | None) -> None:
        c.execute("INSERT INTO transitions (finding_id, at, action, from_state, to_state, note, run_id)"
                  " VALUES (?,?,?,?,?,?,?)",
                  (fid, at, action.value, frm.value if frm else None, to.value, note, run_id))

    # ---- findings ---------------------------------------------------------------------------------
    def findings(self, states: Collection[State] | None = None, *, scenario: str | None = None,
                 target: str | None = None, ids: Collection[int] | None = None) -> list[Finding]:
        sql, args = "SELECT * FROM findings WHERE 1 = 1", list[Any]()
        for column, wanted in (("state", [s.value for s in states] if states is not None else None),
                               ("id", list(ids) if ids is not None else None)):
            if wanted is not None:
                sql += f" AND {column} IN ({','.join('?' * len(wanted)) or 'NULL'})"
                args += wanted
        for column, value in (("scenario", scenario), ("target_key", target)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        with self._errors():
            rows = self.conn.execute(sql + " ORDER BY id", args).fetchall()
            out = []
            for row in rows:
                try:
                    out.append(finding_of(self.conn, row, self._report, self.location))
                except BadRecord as exc:
                    self._report(f"{self.location}: finding #{row['id']}: bad record ({exc}); skipped")
        return out

    def finding(self, finding_id: int) -> Finding:
        with self._errors():
            row = self.conn.execute("SELECT * FROM findings WHERE id = ?", (finding_id,)).fetchone()
            if row is None:
                raise UnknownFinding(finding_id, self.location)
            try:
                return finding_of(self.conn, row, self._report, self.location)
            except BadRecord as exc:
                raise StoreError(self.location, f"has a damaged finding #{finding_id} ({exc})") from None

    def transition(self, finding_id: int, action: Action, note: str = "", *, run_id: int | None = None) -> Finding:
        with self._transaction() as c:
            row = c.execute("SELECT state FROM findings WHERE id = ?", (finding_id,)).fetchone()
            if row is None:
                raise UnknownFinding(finding_id, self.location)
            try:
                state = State(row["state"])
            except ValueError:
                raise StoreError(self.location, f"has a damaged finding #{finding_id} (unknown state "
                                                f"{row['state']!r})") from None
            new = next_state(state, action, finding_id)
            c.execute("UPDATE findings SET state = ? WHERE id = ?", (new.value, finding_id))
            self._log(c, finding_id, time.time(), action, state, new, note, run_id)
        return self.finding(finding_id)
