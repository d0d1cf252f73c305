"""From a finished scenario to what the store keeps: the scenario record and one observation (with
diagnosis and evidence) per FAIL or ERROR check.

A scenario that ended badly without any failing check (it stopped before judging anything) still
gets an observation, under the check name ``scenario``, so no failure goes unrecorded.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from harness.contracts.checkname import CheckName
from harness.contracts.results import ScenarioResult
from harness.findings.evidence import CheckView, Clues, collect_evidence
from harness.findings.finding_model import FindingKey, Observation, ScenarioRecord
from harness.findings.rules import diagnose

__all__ = ["HARNESS_CHECK", "observe", "sha256_file", "target_file", "title_of"]

#: the finding a scenario's harness-side failures share (like "scenario" for a scenario without a check)
HARNESS_CHECK = "harness"


def sha256_file(path: Path | None) -> str | None:
    """The file's sha256, or None when there is no such file (or it cannot be read)."""
    if path is None:
        return None
    h = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 16), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def target_file(target: dict[str, Any]) -> Path | None:
    """The target profile a run used, or None for the embedded lab (its profile is built in)."""
    source = str(target.get("source") or "")
    if target.get("is_lab") or not source or source.startswith("<"):
        return None
    return Path(source).resolve()


def title_of(check: dict[str, Any]) -> str:
    """``register:agent FAIL: 401 SIP (threshold == 200)``: what a list shows for a finding."""
    value = check.get("value")
    if value is None:
        what = check.get("detail") or "no measurement"
    else:
        unit = f" {check['unit']}" if check.get("unit") else ""
        op = f"{check['op']} " if check.get("op") else ""
        what = f"{value}{unit} (threshold {op}{check.get('threshold')})"
    return f"{check.get('name')} {check.get('verdict')}: {what}"


def observe(run_dir: Path, result: ScenarioResult, target: dict[str, Any],
            target_key: str) -> tuple[ScenarioRecord, list[Observation]]:
    data = result.to_dict()
    scenario_file = Path(result.file).resolve() if result.file else Path(result.name)
    sdir = (run_dir / result.out_dir) if result.out_dir else None
    record = ScenarioRecord(name=result.name, file=str(scenario_file), file_sha256=sha256_file(scenario_file),
                            verdict=result.verdict.value, started=result.started, duration_s=result.duration_s,
                            out_dir=str(sdir or run_dir), result=data)
    failing = [c for c in data["checks"] if c.get("verdict") != "PASS"]
    if (result.error or {}).get("kind") == "interrupted":  # the user stopped it: not a problem of the target
        failing = [c for c in failing if CheckView.of(c).kind != "step"]
    if not failing and result.verdict.value != "PASS" and (result.error or {}).get("kind") != "interrupted":
        err = result.error or {}
        failing = [{"name": "scenario", "id": CheckName("scenario").to_dict(), "verdict": result.verdict.value,
                    "value": None, "threshold": None, "unit": "", "op": "",
                    "detail": err.get("message") or "the scenario ended without a verdict", "metrics": {}}]
    # what the harness itself could not judge (its host overloaded, a party crashed, an internal error) is
    # one finding of the scenario, "harness": it must not open, reopen or re-diagnose a finding about the PBX
    own = [c for c in failing if c.get("blame") == "harness"]
    failing = [c for c in failing if c.get("blame") != "harness"]
    observations: dict[str, Observation] = {}
    logs: dict[str, Any] = {}  # each party's SIP log is parsed once for all the scenario's checks
    if own:
        first = own[0]
        names = ", ".join(str(c.get("name")) for c in own[:6]) + (f" and {len(own) - 6} more" if len(own) > 6 else "")
        clues = Clues(check=first, scenario=data, scenario_dir=sdir, target=target, log_cache=logs)
        chk = {**first, "name": HARNESS_CHECK, "id": CheckName(HARNESS_CHECK).to_dict(), "verdict": "ERROR",
               "value": None, "threshold": None, "unit": "", "op": "",
               "detail": f"{len(own)} check(s) not judged because of the harness ({names}): {first.get('detail')}"}
        observations[HARNESS_CHECK] = Observation(
            key=FindingKey(result.name, HARNESS_CHECK, target_key), verdict="ERROR", check=chk, title=title_of(chk),
            diagnosis=diagnose(clues), evidence=collect_evidence(clues))
    for chk in failing:
        name = str(chk.get("name"))
        if name in observations:  # the same check twice in one scenario counts once
            continue
        clues = Clues(check=chk, scenario=data, scenario_dir=sdir, target=target, log_cache=logs)
        observations[name] = Observation(key=FindingKey(result.name, name, target_key), verdict=str(chk["verdict"]),
                                         check=chk, title=title_of(chk), diagnosis=diagnose(clues),
                                         evidence=collect_evidence(clues))
    return record, list(observations.values())
