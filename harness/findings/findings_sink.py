"""The run sink that feeds the findings store while a run happens.

``harness run`` builds it through :func:`make_sink` and the runner calls it as results come::

    sink = make_sink(settings)                 # opens (and checks) the database before the run starts
    Runner(target, out, sinks=[sink]).run_all(scenarios)

Each finished scenario is written with its checks and findings in one transaction, so a run killed
at any moment keeps every scenario that had finished. At the end it writes ``findings.json`` into
the run directory (see :mod:`harness.findings.snapshot`). A database problem in the middle of a run
is reported once on stderr and never stops the run: ``results.json`` still has everything.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.contracts.errors import StoreError
from harness.contracts.results import RunResult, ScenarioResult
from harness.contracts.settings import Settings
from harness.findings.finding_model import RunRecord, target_key
from harness.findings.finding_store import FindingsStore, db_location, open_store
from harness.findings.observe import observe, sha256_file, target_file
from harness.findings.snapshot import write_snapshot

__all__ = ["FindingsSink", "default_sinks", "make_sink"]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class FindingsSink:
    """A :class:`~harness.scenarios.runner.RunSink` storing runs, results and findings.

    ``kind="retest"`` with ``retest_of`` marks a retest run: the findings under retest are counted when
    they fail again, but their state is left to the retest, which decides it from the comparison.
    """

    def __init__(self, store: FindingsStore, *, kind: str = "run", retest_of: tuple[int, ...] = (),
                 warn: Callable[[str], None] = _stderr):
        self.store, self.kind, self.retest_of, self.warn = store, kind, retest_of, warn
        self.run: RunRecord | None = None
        self.touched: dict[int, str] = {}  #: finding id -> what this run did to it (latest wins, 'passed' never
        #: hides a failure seen earlier in the same run)
        self._failed = False
        self._stored: list[ScenarioResult] = []  # already handed to the store (held, so identity stays unique)

    def run_started(self, run: RunResult) -> None:
        tfile = target_file(run.target)
        record = RunRecord(name=run.run_id, out_dir=str(Path(run.out_dir).resolve()), started=run.started,
                           target_key=target_key(run.target), target_name=str(run.target.get("name", "")),
                           target=run.target, target_file=str(tfile) if tfile else None,
                           target_sha256=sha256_file(tfile), kind=self.kind, retest_of=self.retest_of,
                           harness_version=run.harness_version)
        try:
            self.run = self.store.begin_run(record)
        except StoreError as exc:
            self._lost(exc)

    def scenario_finished(self, run: RunResult, result: ScenarioResult) -> None:
        if self.run is None or self.run.id is None or any(r is result for r in self._stored):
            return
        self._stored.append(result)
        record, observations = observe(Path(self.run.out_dir), result, run.target, self.run.target_key)
        try:
            changes = self.store.record_scenario(self.run.id, record, observations, hold=self.retest_of)
        except StoreError as exc:
            self._lost(exc)
            return
        for ch in changes:
            if ch.action != "passed" or ch.finding_id not in self.touched:
                self.touched[ch.finding_id] = ch.action

    def run_finished(self, run: RunResult) -> None:
        if self.run is None or self.run.id is None:
            return
        for res in run.scenarios:  # the scenario a Ctrl-C cut short reaches the run, not scenario_finished
            self.scenario_finished(run, res)
        try:
            self.store.finish_run(self.run.id, finished=run.finished or 0.0, verdict=run.verdict.value,
                                  interrupted=run.interrupted)
            self.run = self.store.run(self.run.id)
            if Path(self.run.out_dir).is_dir():
                write_snapshot(self.store, self.run, self.touched)
        except (StoreError, OSError) as exc:
            self._lost(exc)

    def _lost(self, exc: Exception) -> None:
        if not self._failed:
            self._failed = True
            self.warn(f"warning: findings not stored: {exc}; results.json has every result")


def make_sink(settings: Settings) -> FindingsSink:
    """The sink of ``harness run``: the store at ``HARNESS_DB`` or ``<HARNESS_HOME>/findings.db``.

    Raises StoreError (one line, exit 2) before anything runs when that database cannot be used."""
    return FindingsSink(open_store(db_location(settings), on_bad_record=_stderr))


def default_sinks(settings: Settings) -> list[Any]:
    """Subscribers to every run: the findings store, then the HTML report (which reads the store's
    ``findings.json``). Both are part of the harness: a missing one is a broken install, never skipped."""
    from harness.report.report_sink import make_sink as report_sink

    return [make_sink(settings), report_sink(settings)]
