"""The SQLite backend of the findings store: one file, WAL mode, versioned schema.

Why these settings: WAL lets ``harness findings list`` read while a run writes; ``synchronous=FULL``
makes every committed scenario survive a kill -9 or a power cut; ``BEGIN IMMEDIATE`` takes the write
lock before reading, so two runs writing at once wait for each other instead of failing half-way.
The file is identified before anything is written to it: garbage, another program's database and a
newer schema are refused with one line, never "repaired".
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from harness.contracts.errors import StoreError, UnknownFinding
from harness.findings.lifecycle import next_state, on_sighting
from harness.findings.migrations import APPLICATION_ID, LATEST, migrate
from harness.findings.model import (
    Action,
    Change,
    Diagnosis,
    Finding,
    FindingKey,
    Observation,
    RunRecord,
    RunRef,
    ScenarioRecord,
    Sighting,
    State,
    Transition,
)

__all__ = ["SqliteStore"]

SQLITE_MAGIC = b"SQLite format 3\x00"
MOVE_HINT = "move it away, or point --db / HARNESS_DB at another file"


class BadRecord(ValueError):
    """A stored row that cannot be read back."""


class SqliteStore:
    """:class:`~harness.findings.store.FindingsStore` on an SQLite file (created when missing)."""

    def __init__(self, path: Path, *, on_bad_record: Callable[[str], None] | None = None):
        self.path = path
        self.location = str(path)
        self.bad_records: list[str] = []
        self._report = on_bad_record or self.bad_records.append
        self._check_file()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(self.location, f"cannot create its directory: {exc.strerror}") from None
        with self._errors():
            self.conn = sqlite3.connect(str(path), isolation_level=None, timeout=10.0)
            self.conn.row_factory = sqlite3.Row
            self._check_identity()
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = FULL")
            self.conn.execute("PRAGMA foreign_keys = ON")
            migrate(self.conn)

    # ---- opening ----------------------------------------------------------------------------------
    def _check_file(self) -> None:
        if self.path.is_dir():
            raise StoreError(self.location, "is a directory, not a database file")
        try:
            with self.path.open("rb") as fh:
                head = fh.read(len(SQLITE_MAGIC))
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StoreError(self.location, f"cannot be read: {exc.strerror}") from None
        if head and head != SQLITE_MAGIC:
            raise StoreError(self.location, f"is not an SQLite database (damaged, or another kind of file); "
                                            f"{MOVE_HINT}")

    def _check_identity(self) -> None:
        app_id = int(self.conn.execute("PRAGMA application_id").fetchone()[0])
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        tables = int(self.conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0])
        if app_id != APPLICATION_ID and (app_id != 0 or tables or version):
            raise StoreError(self.location, f"is an SQLite database of another program (application id {app_id}, "
                                            f"{tables} tables), not a harness findings database; {MOVE_HINT}")
        if version > LATEST:
            raise StoreError(self.location, f"was written by a newer harness (schema version {version}; this "
                                            f"harness knows up to {LATEST}): upgrade the harness or use another "
                                            "database")

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """sqlite3's exceptions as one-line StoreErrors."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreError(self.location, "is locked by another process for more than 10 s") from None
            raise StoreError(self.location, f"cannot be used ({exc}); {MOVE_HINT}") from None
        except sqlite3.DatabaseError as exc:
            raise StoreError(self.location, f"is damaged ({exc}); {MOVE_HINT}") from None

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
                (run.name, run.out_dir, run.kind, _dump(list(run.retest_of)), run.started, run.target_key,
                 run.target_name, run.target_file, run.target_sha256, _dump(run.target), run.harness_version))
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
            return _run(row)
        except BadRecord as exc:
            raise StoreError(self.location, f"has a damaged run #{run_id} ({exc})") from None

    def last_run(self, kind: str = "run") -> RunRecord | None:
        with self._errors():
            rows = self.conn.execute("SELECT * FROM runs WHERE kind = ? ORDER BY started DESC, id DESC LIMIT 20",
                                     (kind,)).fetchall()
        for row in rows:
            try:
                return _run(row)
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
                out.append(_scenario(row))
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
            return _scenario(row)
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
                 scenario.duration_s, scenario.out_dir, _dump(scenario.result)))
            sid = int(cur.lastrowid or 0)
            check_ids: dict[str, int] = {}
            for chk in scenario.checks:
                cur = c.execute(
                    "INSERT INTO checks (scenario_result_id, name, verdict, value_json, threshold_json, unit, op,"
                    " detail, metrics_json) VALUES (?,?,?,?,?,?,?,?,?)",
                    (sid, str(chk.get("name", "")), str(chk.get("verdict", "ERROR")), _dump(chk.get("value")),
                     _dump(chk.get("threshold")), str(chk.get("unit") or ""), str(chk.get("op") or ""),
                     str(chk.get("detail") or ""), _dump(chk.get("metrics") or {})))
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
                  run.target_sha256, _dump(obs.diagnosis.to_dict()), _dump(obs.evidence))
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
                    out.append(self._finding(row))
                except BadRecord as exc:
                    self._report(f"{self.location}: finding #{row['id']}: bad record ({exc}); skipped")
        return out

    def finding(self, finding_id: int) -> Finding:
        with self._errors():
            row = self.conn.execute("SELECT * FROM findings WHERE id = ?", (finding_id,)).fetchone()
            if row is None:
                raise UnknownFinding(finding_id, self.location)
            try:
                return self._finding(row)
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

    def _finding(self, row: sqlite3.Row) -> Finding:
        fid = int(row["id"])
        try:
            state = State(row["state"])
        except ValueError:
            raise BadRecord(f"unknown state {row['state']!r}") from None
        diag = _load(row["diagnosis_json"], "diagnosis")
        evidence = _load(row["evidence_json"], "evidence")
        if not isinstance(evidence, dict):
            raise BadRecord("evidence is not a mapping")
        try:
            diagnosis = Diagnosis.from_dict(diag) if diag is not None else None
        except (KeyError, TypeError) as exc:
            raise BadRecord(f"diagnosis lacks {exc}") from None
        return Finding(
            id=fid, key=FindingKey(row["scenario"], row["check_name"], row["target_key"]), state=state,
            verdict=row["verdict"], title=row["title"], first_seen=float(row["first_seen"]),
            last_seen=float(row["last_seen"]), occurrences=int(row["occurrences"]),
            first_run=self._ref(row["first_run_id"]), last_run=self._ref(row["last_run_id"]),
            scenario_file=row["scenario_file"], scenario_sha256=row["scenario_sha256"],
            target_file=row["target_file"], target_sha256=row["target_sha256"], diagnosis=diagnosis,
            evidence=evidence, last_check_id=row["last_check_id"], history=self._history(fid),
            sightings=self._sightings(fid))

    def _ref(self, run_id: int | None) -> RunRef:
        row = self.conn.execute("SELECT id, name, out_dir FROM runs WHERE id = ?", (run_id,)).fetchone()
        return RunRef(int(row["id"]), row["name"], row["out_dir"]) if row else RunRef(int(run_id or 0), "?", "")

    def _history(self, fid: int) -> list[Transition]:
        out = []
        for r in self.conn.execute("SELECT t.*, r.name AS run_name, r.out_dir AS run_dir FROM transitions t"
                                   " LEFT JOIN runs r ON r.id = t.run_id WHERE finding_id = ? ORDER BY t.id", (fid,)):
            try:
                out.append(Transition(
                    at=float(r["at"]), action=Action(r["action"]),
                    from_state=State(r["from_state"]) if r["from_state"] else None, to_state=State(r["to_state"]),
                    note=r["note"], run=RunRef(r["run_id"], r["run_name"], r["run_dir"]) if r["run_id"] else None))
            except (ValueError, TypeError) as exc:
                self._report(f"{self.location}: finding #{fid}: transition #{r['id']}: bad record ({exc}); skipped")
        return out

    def _sightings(self, fid: int) -> list[Sighting]:
        out = []
        for r in self.conn.execute(
                "SELECT s.id, s.at, s.run_id, r.name AS run_name, r.out_dir AS run_dir, c.verdict, c.value_json,"
                " c.threshold_json, c.unit, c.op, c.detail FROM sightings s JOIN checks c ON c.id = s.check_id"
                " JOIN runs r ON r.id = s.run_id WHERE s.finding_id = ? ORDER BY s.id", (fid,)):
            try:
                out.append(Sighting(RunRef(r["run_id"], r["run_name"], r["run_dir"]), float(r["at"]), r["verdict"],
                                    _load(r["value_json"], "value"), _load(r["threshold_json"], "threshold"),
                                    r["unit"], r["op"], r["detail"]))
            except (BadRecord, TypeError, ValueError) as exc:
                self._report(f"{self.location}: finding #{fid}: sighting #{r['id']}: bad record ({exc}); skipped")
        return out


def _run(row: sqlite3.Row) -> RunRecord:
    target = _load(row["target_json"], "target")
    retest_of = _load(row["retest_of"], "retest_of")
    if not isinstance(target, dict) or not isinstance(retest_of, list):
        raise BadRecord("target or retest_of has the wrong type")
    return RunRecord(name=row["name"], out_dir=row["out_dir"], started=float(row["started"]),
                     target_key=row["target_key"], target_name=row["target_name"], target=target,
                     target_file=row["target_file"], target_sha256=row["target_sha256"], kind=row["kind"],
                     retest_of=tuple(int(i) for i in retest_of), harness_version=row["harness_version"],
                     id=int(row["id"]), finished=row["finished"], verdict=row["verdict"],
                     interrupted=bool(row["interrupted"]))


def _scenario(row: sqlite3.Row) -> ScenarioRecord:
    result = _load(row["result_json"], "result")
    if not isinstance(result, dict):
        raise BadRecord("result is not a mapping")
    return ScenarioRecord(name=row["name"], file=row["file"], file_sha256=row["file_sha256"], verdict=row["verdict"],
                          started=float(row["started"]), duration_s=float(row["duration_s"]), out_dir=row["out_dir"],
                          result=result, id=int(row["id"]), run_id=int(row["run_id"]))


def _dump(value: Any) -> str:
    return json.dumps(value, default=str)


def _load(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise BadRecord(f"{what} is not valid JSON") from None
