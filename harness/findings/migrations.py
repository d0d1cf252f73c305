"""Versioned schema of the SQLite findings store.

The database's ``PRAGMA user_version`` is its schema version; ``PRAGMA application_id`` marks it as
ours, so another program's SQLite file is refused instead of being "upgraded". Each migration runs
in its own transaction and bumps the version, so an interrupted upgrade leaves a consistent older
schema that the next start continues from. Never edit a released migration: append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["APPLICATION_ID", "LATEST", "MIGRATIONS", "Migration", "migrate"]

#: "HRNF" (harness findings) as a 32-bit integer, in the SQLite header at offset 68
APPLICATION_ID = 0x48524E46


@dataclass(frozen=True)
class Migration:
    version: int
    summary: str
    sql: str


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "runs, scenario results, checks, findings, sightings and the transition audit trail", """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            out_dir TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'run',
            retest_of TEXT NOT NULL DEFAULT '[]',
            started REAL NOT NULL,
            finished REAL,
            interrupted INTEGER NOT NULL DEFAULT 0,
            verdict TEXT,
            target_key TEXT NOT NULL,
            target_name TEXT NOT NULL,
            target_file TEXT,
            target_sha256 TEXT,
            target_json TEXT NOT NULL,
            harness_version TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX runs_by_start ON runs(started);
        CREATE TABLE scenario_results (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id),
            name TEXT NOT NULL,
            file TEXT NOT NULL,
            file_sha256 TEXT,
            verdict TEXT NOT NULL,
            started REAL NOT NULL,
            duration_s REAL NOT NULL,
            out_dir TEXT NOT NULL,
            result_json TEXT NOT NULL
        );
        CREATE INDEX scenario_results_by_run ON scenario_results(run_id);
        CREATE TABLE checks (
            id INTEGER PRIMARY KEY,
            scenario_result_id INTEGER NOT NULL REFERENCES scenario_results(id),
            name TEXT NOT NULL,
            verdict TEXT NOT NULL,
            value_json TEXT,
            threshold_json TEXT,
            unit TEXT NOT NULL DEFAULT '',
            op TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '',
            metrics_json TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX checks_by_scenario ON checks(scenario_result_id);
        CREATE TABLE findings (
            id INTEGER PRIMARY KEY,
            scenario TEXT NOT NULL,
            check_name TEXT NOT NULL,
            target_key TEXT NOT NULL,
            state TEXT NOT NULL,
            verdict TEXT NOT NULL,
            title TEXT NOT NULL,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            occurrences INTEGER NOT NULL,
            first_run_id INTEGER NOT NULL REFERENCES runs(id),
            last_run_id INTEGER NOT NULL REFERENCES runs(id),
            last_check_id INTEGER REFERENCES checks(id),
            scenario_file TEXT NOT NULL,
            scenario_sha256 TEXT,
            target_file TEXT,
            target_sha256 TEXT,
            diagnosis_json TEXT,
            evidence_json TEXT NOT NULL DEFAULT '{}',
            UNIQUE (scenario, check_name, target_key)
        );
        CREATE INDEX findings_by_state ON findings(state);
        CREATE TABLE sightings (
            id INTEGER PRIMARY KEY,
            finding_id INTEGER NOT NULL REFERENCES findings(id),
            run_id INTEGER NOT NULL REFERENCES runs(id),
            check_id INTEGER NOT NULL REFERENCES checks(id),
            at REAL NOT NULL
        );
        CREATE INDEX sightings_by_finding ON sightings(finding_id);
        CREATE TABLE transitions (
            id INTEGER PRIMARY KEY,
            finding_id INTEGER NOT NULL REFERENCES findings(id),
            at REAL NOT NULL,
            action TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT NOT NULL,
            note TEXT NOT NULL DEFAULT '',
            run_id INTEGER REFERENCES runs(id)
        );
        CREATE INDEX transitions_by_finding ON transitions(finding_id);
    """),
)

LATEST = MIGRATIONS[-1].version


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply every migration newer than the database's version, each in its own transaction.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Returns the versions applied.
    """
    applied = []
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for m in sorted(migrations, key=lambda m: m.version):
        if m.version <= current:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(m.sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {int(m.version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(m.version)
        current = m.version
    return applied


def _statements(sql: str) -> list[str]:
    # executescript() would COMMIT on its own; split so the migration stays one transaction
    return [s.strip() for s in sql.split(";") if s.strip()]
