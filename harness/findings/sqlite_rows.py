"""Reading the findings database's rows back into records: runs, scenario results, findings with their
history and sightings. A row that cannot be read raises :class:`BadRecord` (or is reported and left
out, for the parts of a finding), so one damaged row never hides the rest.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from harness.findings.finding_model import (
    Action,
    Diagnosis,
    Finding,
    FindingKey,
    RunRecord,
    RunRef,
    ScenarioRecord,
    Sighting,
    State,
    Transition,
)

__all__ = ["BadRecord", "dump", "finding_of", "load", "run_of", "scenario_of"]


class BadRecord(ValueError):
    """A stored row that cannot be read back."""


def dump(value: Any) -> str:
    return json.dumps(value, default=str)


def load(text: str | None, what: str) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        raise BadRecord(f"{what} is not valid JSON") from None


def run_of(row: sqlite3.Row) -> RunRecord:
    target = load(row["target_json"], "target")
    retest_of = load(row["retest_of"], "retest_of")
    if not isinstance(target, dict) or not isinstance(retest_of, list):
        raise BadRecord("target or retest_of has the wrong type")
    return RunRecord(name=row["name"], out_dir=row["out_dir"], started=float(row["started"]),
                     target_key=row["target_key"], target_name=row["target_name"], target=target,
                     target_file=row["target_file"], target_sha256=row["target_sha256"], kind=row["kind"],
                     retest_of=tuple(int(i) for i in retest_of), harness_version=row["harness_version"],
                     id=int(row["id"]), finished=row["finished"], verdict=row["verdict"],
                     interrupted=bool(row["interrupted"]))


def scenario_of(row: sqlite3.Row) -> ScenarioRecord:
    result = load(row["result_json"], "result")
    if not isinstance(result, dict):
        raise BadRecord("result is not a mapping")
    return ScenarioRecord(name=row["name"], file=row["file"], file_sha256=row["file_sha256"], verdict=row["verdict"],
                          started=float(row["started"]), duration_s=float(row["duration_s"]), out_dir=row["out_dir"],
                          result=result, id=int(row["id"]), run_id=int(row["run_id"]))


def finding_of(conn: sqlite3.Connection, row: sqlite3.Row, report: Callable[[str], None], location: str) -> Finding:
    """A finding with its history and sightings; a bad transition or sighting is reported and left out."""
    fid = int(row["id"])
    try:
        state = State(row["state"])
    except ValueError:
        raise BadRecord(f"unknown state {row['state']!r}") from None
    diag = load(row["diagnosis_json"], "diagnosis")
    evidence = load(row["evidence_json"], "evidence")
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
        first_run=_ref(conn, row["first_run_id"]), last_run=_ref(conn, row["last_run_id"]),
        scenario_file=row["scenario_file"], scenario_sha256=row["scenario_sha256"],
        target_file=row["target_file"], target_sha256=row["target_sha256"], diagnosis=diagnosis,
        evidence=evidence, last_check_id=row["last_check_id"], history=_history(conn, fid, report, location),
        sightings=_sightings(conn, fid, report, location))


def _ref(conn: sqlite3.Connection, run_id: int | None) -> RunRef:
    row = conn.execute("SELECT id, name, out_dir FROM runs WHERE id = ?", (run_id,)).fetchone()
    return RunRef(int(row["id"]), row["name"], row["out_dir"]) if row else RunRef(int(run_id or 0), "?", "")


def _history(conn: sqlite3.Connection, fid: int, report: Callable[[str], None], location: str) -> list[Transition]:
    out = []
    for r in conn.execute("SELECT t.*, r.name AS run_name, r.out_dir AS run_dir FROM transitions t"
                          " LEFT JOIN runs r ON r.id = t.run_id WHERE finding_id = ? ORDER BY t.id", (fid,)):
        try:
            out.append(Transition(
                at=float(r["at"]), action=Action(r["action"]),
                from_state=State(r["from_state"]) if r["from_state"] else None, to_state=State(r["to_state"]),
                note=r["note"], run=RunRef(r["run_id"], r["run_name"], r["run_dir"]) if r["run_id"] else None))
        except (ValueError, TypeError) as exc:
            report(f"{location}: finding #{fid}: transition #{r['id']}: bad record ({exc}); skipped")
    return out


def _sightings(conn: sqlite3.Connection, fid: int, report: Callable[[str], None], location: str) -> list[Sighting]:
    out = []
    for r in conn.execute(
            "SELECT s.id, s.at, s.run_id, r.name AS run_name, r.out_dir AS run_dir, c.verdict, c.value_json,"
            " c.threshold_json, c.unit, c.op, c.detail FROM sightings s JOIN checks c ON c.id = s.check_id"
            " JOIN runs r ON r.id = s.run_id WHERE s.finding_id = ? ORDER BY s.id", (fid,)):
        try:
            out.append(Sighting(RunRef(r["run_id"], r["run_name"], r["run_dir"]), float(r["at"]), r["verdict"],
                                load(r["value_json"], "value"), load(r["threshold_json"], "threshold"),
                                r["unit"], r["op"], r["detail"]))
        except (BadRecord, TypeError, ValueError) as exc:
            report(f"{location}: finding #{fid}: sighting #{r['id']}: bad record ({exc}); skipped")
    return out
