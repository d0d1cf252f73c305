"""The findings store interface, and where the database lives.

Everything above this module (sink, commands, retest, snapshot) talks to a :class:`FindingsStore`,
never to SQLite, so a PostgreSQL backend can be added by implementing the same few methods::

    store = open_store(db_location(settings))          # HARNESS_DB or <HARNESS_HOME>/findings.db
    for f in store.findings({State.OPEN}):
        print(f.id, f.key, f.diagnosis.cause if f.diagnosis else "")

Contract every backend keeps:

- ``record_scenario`` is one transaction: the scenario, its checks and every finding it opens or
  updates are stored together or not at all, so a process killed mid-run loses nothing that was
  already recorded and never leaves half a scenario.
- A stored record that cannot be read back (bad JSON, an unknown state) is reported through
  ``on_bad_record`` and skipped; it never crashes a listing.
- Database-level problems (not a database, another program's database, a newer schema, damage,
  a lock held too long) raise :class:`~harness.contracts.errors.StoreError`: one line, exit 2.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Protocol

from harness.contracts.errors import StoreError
from harness.contracts.settings import Settings
from harness.findings.finding_model import Action, Change, Finding, Observation, RunRecord, ScenarioRecord, State

__all__ = ["FindingsStore", "db_location", "open_store"]



class FindingsStore(Protocol):
    """Runs, scenario results, checks and findings, with the findings' audit trail."""

    location: str  #: where the data lives, for messages (a path, or a URL without password)

    def begin_run(self, run: RunRecord) -> RunRecord:
        """Store a run as it starts; returns it with its ``id``."""
        ...

    def finish_run(self, run_id: int, *, finished: float, verdict: str, interrupted: bool) -> None: ...

    def record_scenario(self, run_id: int, scenario: ScenarioRecord, observations: Sequence[Observation], *,
                        hold: Collection[int] = ()) -> list[Change]:
        """Store one finished scenario and open/update the findings of its FAIL and ERROR checks, in one
        transaction. Findings whose id is in ``hold`` are counted but keep their state (a retest
        decides theirs itself). Also reports, as ``passed``, findings of this scenario and target whose
        check passed this time."""
        ...

    def run(self, run_id: int) -> RunRecord: ...

    def last_run(self, kind: str = "run") -> RunRecord | None: ...

    def scenarios(self, run_id: int) -> list[ScenarioRecord]: ...

    def scenario_of_check(self, check_id: int) -> ScenarioRecord | None: ...

    def findings(self, states: Collection[State] | None = None, *, scenario: str | None = None,
                 target: str | None = None, ids: Collection[int] | None = None) -> list[Finding]: ...

    def finding(self, finding_id: int) -> Finding:
        """One finding with its history and sightings; UnknownFinding when there is none."""
        ...

    def transition(self, finding_id: int, action: Action, note: str = "", *, run_id: int | None = None) -> Finding:
        """Apply ``action`` (checked by :mod:`harness.findings.lifecycle`) and keep it in the audit trail."""
        ...

    def close(self) -> None: ...


def db_location(settings: Settings, override: Path | None = None) -> Path:
    """``--db`` over ``HARNESS_DB`` over ``<HARNESS_HOME>/findings.db``."""
    if override is not None:
        return override.expanduser().resolve()
    return settings.findings_db  # HARNESS_DB, read by harness.contracts.settings


def open_store(location: Path | str, *, on_bad_record: Callable[[str], None] | None = None) -> FindingsStore:
    """The store at ``location``: an SQLite file today; a ``postgresql://`` URL is refused clearly."""
    text = str(location)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreError(f"{scheme}://...", f"is of a kind not supported yet ('{scheme}'); use an SQLite file path")
    from harness.findings.sqlite import SqliteStore

    return SqliteStore(Path(location), on_bad_record=on_bad_record)
