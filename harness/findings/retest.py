"""Retest: run again exactly the scenario file and target profile that produced a finding, compare
the new measurements with the old ones, and move the finding on.

::

    outcomes = retest_findings(settings, store, [store.finding(3)], out_base=Path("reports"))
    outcomes[0].passed, outcomes[0].finding.state      # True, State.VERIFIED

A retest that passes verifies the finding; one that fails reopens a fixed (or verified) finding and
keeps its history. Findings that share a scenario file and target are judged from one run. The
scenario file is re-read from where it was: when its content changed since the finding was recorded
the retest says so, since it is then not quite the same test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.errors import InputError
from harness.contracts.settings import Settings
from harness.findings.compare import CompareRow, compare_checks, measured
from harness.findings.finding_model import Action, Finding
from harness.findings.finding_store import FindingsStore
from harness.findings.findings_sink import FindingsSink
from harness.findings.lifecycle import on_retest
from harness.findings.observe import HARNESS_CHECK, sha256_file
from harness.findings.snapshot import write_snapshot
from harness.report.report_sink import make_sink as report_sink

__all__ = ["RetestOutcome", "retest_findings"]


@dataclass
class RetestOutcome:
    finding: Finding  #: after the retest's transition
    passed: bool
    action: Action
    run_dir: Path
    rows: list[CompareRow]
    warnings: list[str] = field(default_factory=list)
    inconclusive: bool = False  #: the harness could not judge the check (its ERROR is blamed on the harness)


def retest_findings(settings: Settings, store: FindingsStore, findings: list[Finding], *, out_base: Path,
                    log: Callable[[str], None] = print) -> list[RetestOutcome]:
    """Retest ``findings``; one run per (scenario file, target profile). Input problems (a scenario or
    profile file that is gone) are raised before anything runs."""
    groups: dict[tuple[str, str | None], list[Finding]] = {}
    for f in findings:
        groups.setdefault((f.scenario_file, f.target_file), []).append(f)
    for (scenario_file, target), group in groups.items():
        ids = ", ".join(f"#{f.id}" for f in group)
        if not Path(scenario_file).is_file():
            raise InputError(f"finding {ids}: its scenario file {scenario_file} no longer exists; restore it to "
                             "retest, or run the scenario anew")
        if target is not None and not Path(target).is_file():
            raise InputError(f"finding {ids}: its target profile {target} no longer exists")
    outcomes: list[RetestOutcome] = []
    for (scenario_file, target), group in groups.items():
        outcomes += _retest_group(settings, store, Path(scenario_file), Path(target) if target else None, group,
                                  out_base, log)
    return outcomes


def _changed(group: list[Finding], scenario: Path, target: Path | None) -> list[str]:
    warnings = []
    now = sha256_file(scenario)
    for f in group:
        if f.scenario_sha256 and now != f.scenario_sha256:
            warnings.append(f"warning: {scenario} changed since finding #{f.id} was recorded (sha256 "
                            f"{f.scenario_sha256[:12]} -> {(now or '?')[:12]}): the retest runs the file as it is now")
            break
    if target is not None:
        tnow = sha256_file(target)
        if any(f.target_sha256 and tnow != f.target_sha256 for f in group):
            warnings.append(f"note: target profile {target} changed since the finding was recorded "
                            "(expected when the fix was made there)")
    return warnings


def _retest_group(settings: Settings, store: FindingsStore, scenario: Path, target: Path | None,
                  group: list[Finding], out_base: Path, log: Callable[[str], None]) -> list[RetestOutcome]:
    from harness.scenarios.session import run_session  # the SIP stack only when something is retested

    warnings = _changed(group, scenario, target)
    for w in warnings:
        log(w)
    before: dict[int, tuple[dict[str, Any], list[dict[str, Any]]]] = {}
    for f in group:  # read before the run: the retest's own sighting replaces the finding's last check
        sc = store.scenario_of_check(f.last_check_id) if f.last_check_id is not None else None
        run = store.run(sc.run_id) if sc is not None and sc.run_id is not None else None
        before[f.id] = ({"id": run.id, "name": run.name, "out_dir": run.out_dir} if run else {},
                        sc.checks if sc else [])
    sink = FindingsSink(store, kind="retest", retest_of=tuple(f.id for f in group), warn=log)
    out = _run_dir(out_base, group)
    log(f"retest of finding {', '.join(f'#{f.id}' for f in group)}: {scenario} against "
        f"{target if target else 'the lab'}")
    sinks: list[Any] = [sink, report_sink(settings)]  # the report after the findings: it reads findings.json
    result = run_session(settings, [scenario], target_file=target, out=out, log=log, sinks=sinks)
    after_sc = result.scenarios[0] if result.scenarios else None
    after = after_sc.to_dict()["checks"] if after_sc is not None else []
    run_ref = {"id": sink.run.id, "name": sink.run.name, "out_dir": sink.run.out_dir} if sink.run else {}
    outcomes, retests = [], []
    for f in group:
        new = next((c for c in after if c.get("name") == f.key.check), None)
        inconclusive = False
        if f.key.check == "scenario":
            passed = after_sc is not None and after_sc.verdict.value == "PASS"
        elif f.key.check == HARNESS_CHECK:  # the harness's own trouble: gone when nothing is blamed on it
            passed = after_sc is not None and not any(c.get("blame") == "harness" and c.get("verdict") != "PASS"
                                                      for c in after)
        else:
            passed = new is not None and new.get("verdict") == "PASS"
            # the harness could not judge the check this time: that verifies nothing and reopens nothing
            inconclusive = new is not None and not passed and new.get("blame") == "harness"
        old = next((c for c in before[f.id][1] if c.get("name") == f.key.check), None)
        action = Action.RETESTED if inconclusive else on_retest(f.state, passed)
        outcome = "was inconclusive (the harness failed, not the PBX)" if inconclusive else \
            "passed" if passed else "failed"
        note = f"retest {outcome} in run {out.name}: {f.key.check} {measured(old)} -> {measured(new)}"
        updated = store.transition(f.id, action, note, run_id=sink.run.id if sink.run else None)
        rows = compare_checks(before[f.id][1], after, f.key.check)
        outcomes.append(RetestOutcome(updated, passed, action, out, rows, warnings, inconclusive))
        retests.append({"finding": f.id, "passed": passed, "inconclusive": inconclusive, "action": action.value,
                        "before": {"run": before[f.id][0], "checks": before[f.id][1]},
                        "after": {"run": run_ref, "checks": after}, "rows": [r.to_dict() for r in rows]})
        sink.touched[f.id] = action.value
    if sink.run is not None and out.is_dir():
        write_snapshot(store, store.run(sink.run.id or 0), sink.touched, retests)
    return outcomes


def _run_dir(base: Path, group: list[Finding]) -> Path:
    stem = f"retest-{'-'.join(str(f.id) for f in group[:4])}-{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = base / stem, 2
    while out.exists():
        out, n = base / f"{stem}-{n}", n + 1
    return out
