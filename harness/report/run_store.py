"""Read what a run left on disk: ``results.json``, ``findings.json``, ``load.json`` and the sibling runs.

The report is rendered from these stored files only. They are read defensively: a file that is
missing is simply absent from the report; a file that is unreadable, or a record in it of the wrong
shape, is noted in :attr:`RunData.problems` (shown on the page) and skipped, never a crash. Only a
run directory with nothing to report at all is an :class:`~harness.contracts.errors.InputError`.

Files and the keys read from them (anything else is ignored):

``results.json``
    :meth:`harness.contracts.results.RunResult.to_dict`: ``run_id``, ``started``, ``finished``, ``verdict``,
    ``counts``, ``interrupted``, ``target.name``, ``scenarios[]`` (``name``, ``file``, ``verdict``,
    ``duration_s``, ``checks[]``, ``sip.calls``, ``audio``, ``rtp``, ``artifacts``, ``error``,
    ``skipped_steps``, ``out_dir``).
``findings.json``
    The findings store's snapshot ``{"findings": [...], "retests": [...]}`` (or a bare list of
    findings); the keys read are listed in :mod:`harness.report.findings`.
``load.json``
    A load run's summary; the keys read are listed in :mod:`harness.report.loadrun`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.errors import InputError

__all__ = ["RunData", "as_dict", "find_runs", "history", "latest_run", "load_run"]

RESULTS, FINDINGS, LOAD = "results.json", "findings.json", "load.json"


@dataclass
class RunData:
    """One run directory as stored. ``results``/``load`` are None when the run has no such file."""

    dir: Path
    results: dict[str, Any] | None = None
    findings: list[dict[str, Any]] | None = None
    retests: list[dict[str, Any]] = field(default_factory=list)
    load: dict[str, Any] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        for src in (self.results, self.load):
            if src and src.get("run_id"):
                return str(src["run_id"])
        return self.dir.name

    @property
    def started(self) -> float:
        for src in (self.results, self.load):
            if src and isinstance(src.get("started"), int | float):
                return float(src["started"])
        try:
            return (self.dir / RESULTS).stat().st_mtime
        except OSError:
            return 0.0

    @property
    def scenarios(self) -> list[dict[str, Any]]:
        return list((self.results or {}).get("scenarios") or [])


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: stored records are read, never trusted."""
    return value if isinstance(value, dict) else {}


def _read_json(path: Path, problems: list[str]) -> Any:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        problems.append(f"{path.name}: unreadable ({exc}); left out of the report")
        return None


def _valid_scenarios(results: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    raw = results.get("scenarios")
    if not isinstance(raw, list):
        problems.append(f"{RESULTS}: 'scenarios' is not a list; no scenario shown")
        return {**results, "scenarios": []}
    good = []
    for i, sc in enumerate(raw):
        if not isinstance(sc, dict) or not isinstance(sc.get("name"), str) \
                or not isinstance(sc.get("checks", []), list):
            problems.append(f"{RESULTS}: scenarios[{i}] is not a scenario record; skipped")
            continue
        checks = [c for c in sc.get("checks", []) if isinstance(c, dict) and "name" in c and "verdict" in c]
        if len(checks) != len(sc.get("checks", [])):
            problems.append(f"{RESULTS}: scenario {sc['name']!r} has malformed checks; they are skipped")
        good.append({**sc, "checks": checks})
    return {**results, "scenarios": good}


def _valid_findings(raw: Any, problems: list[str]) -> list[dict[str, Any]] | None:
    if raw is None:
        return None
    items = raw.get("findings") if isinstance(raw, dict) else raw
    if not isinstance(items, list):
        problems.append(f"{FINDINGS}: expected a list of findings; left out of the report")
        return None
    good = [f for f in items if isinstance(f, dict) and f.get("id") is not None]
    if len(good) != len(items):
        problems.append(f"{FINDINGS}: {len(items) - len(good)} record(s) without an id skipped")
    return good


def load_run(run_dir: Path, *, with_findings: bool = True) -> RunData:
    """Read one run directory. Raises InputError when it holds neither results.json nor load.json."""
    if not run_dir.is_dir():
        raise InputError(f"{run_dir}: not a run directory")
    run = RunData(dir=run_dir)
    results = _read_json(run_dir / RESULTS, run.problems)
    if isinstance(results, dict):
        run.results = _valid_scenarios(results, run.problems)
    elif results is not None:
        run.problems.append(f"{RESULTS}: not a JSON object; left out of the report")
    load = _read_json(run_dir / LOAD, run.problems)
    if isinstance(load, dict):
        run.load = load
    elif load is not None:
        run.problems.append(f"{LOAD}: not a JSON object; left out of the report")
    if run.results is None and run.load is None:
        why = "; ".join(run.problems) or f"no {RESULTS} or {LOAD}"
        raise InputError(f"{run_dir}: nothing to report ({why})")
    if with_findings:
        raw = _read_json(run_dir / FINDINGS, run.problems)
        run.findings = _valid_findings(raw, run.problems)
        if isinstance(raw, dict) and isinstance(raw.get("retests"), list):
            run.retests = [r for r in raw["retests"] if isinstance(r, dict)]
    return run


def find_runs(parent: Path) -> list[Path]:
    """Run directories under ``parent`` (those holding results.json or load.json), oldest first."""
    if not parent.is_dir():
        return []
    dirs = [d for d in parent.iterdir() if d.is_dir() and ((d / RESULTS).is_file() or (d / LOAD).is_file())]
    return sorted(dirs, key=lambda d: (_started_of(d), d.name))


def _started_of(d: Path) -> float:
    # cheap: the mtime of results.json tracks the run's end; the JSON is read later only for the last N
    for name in (RESULTS, LOAD):
        try:
            return (d / name).stat().st_mtime
        except OSError:
            continue
    return 0.0


def latest_run(parent: Path) -> Path:
    runs = find_runs(parent)
    if not runs:
        raise InputError(f"{parent}: no run directories (with results.json or load.json) found")
    return runs[-1]


def history(run: RunData, last: int) -> list[RunData]:
    """Up to ``last`` runs that started before ``run``, in the same parent directory, oldest first.

    Only runs of the same kind count: they must share a scenario with ``run`` (a ``reports/`` directory
    holds nightly, system and retest runs side by side, and a trend across different suites means
    nothing). Unreadable siblings are skipped (they are someone else's problem, not this report's).
    """
    if last <= 0:
        return []
    names = {sc["name"] for sc in run.scenarios}
    older: list[RunData] = []
    # newest first, reading only as many sibling results as needed (a reports/ dir grows every night)
    for d in reversed(find_runs(run.dir.parent)):
        if len(older) >= last:
            break
        if d.resolve() == run.dir.resolve():
            continue
        try:
            other = load_run(d, with_findings=False)
        except InputError:
            continue
        if other.results is not None and other.started < run.started and \
                (not names or names & {sc["name"] for sc in other.scenarios}):
            older.append(other)
    older.sort(key=lambda r: r.started)
    return older
