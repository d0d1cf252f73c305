"""``findings.json``: the findings a run touched, and every other finding of its target that is still
not verified (so the report can answer "what is still open?"), written into the run directory when the
run ends.

The HTML report renders from this file (never from live objects). Format ``harness-findings/1``::

    {
      "format": "harness-findings/1",
      "generated": 1767225600.0,                 # epoch seconds
      "run": {"id": 12, "name": "run-20260101-020000", "out_dir": "/abs/reports/run-20260101-020000",
              "kind": "run" | "retest", "retest_of": [3], "started": ..., "finished": ... | null,
              "verdict": "FAIL", "target": "lab"},
      "findings": [
        {
          "id": 3, "scenario": "connect", "check": "register:agent", "target": "lab",
          "this_run": "found" | "seen" | "reopened" | "passed" | "verified" | "retested" | "open",
                                                   # "open": not touched by this run, still not verified
          "state": "open" | "analysed" | "fixed" | "verified",
          "verdict": "FAIL" | "ERROR",             # of its last failing sighting
          "title": "register:agent FAIL: 401 SIP (threshold == 200)",
          "first_seen": ..., "last_seen": ..., "occurrences": 2,
          "first_run": {"id": 9, "name": "...", "out_dir": "..."}, "last_run": {...},
          "scenario_file": "/abs/scenarios/connect.yaml", "scenario_sha256": "...",
          "target_file": "/abs/pbx.yaml" | null,   # null: the embedded lab
          "diagnosis": {"rule": "auth_failure", "cause": "...", "fix": "...", "facts": ["..."],
                        "confidence": "likely" | "possible"},
          "evidence": {
            "run_dir": "/abs/reports/run-.../connect",   # the scenario directory of the last sighting
            "files": {"sip_log:agent": "agent.sip.log", "received:caller->agent": "agent-c1.wav", ...},
                                                         # relative to run_dir
            "metrics": {"check": {...}, "registration": {...}, "calls": {...}, "rtp": {...}, "audio": {...}},
            "sip": {"agent": ["08:35:51.983 <- SIP/2.0 401 Unauthorized (REGISTER, from 127.0.0.1:5060)", ...]},
            "key_message": "agent received:\\nSIP/2.0 401 ...",  # Authorization headers masked
            "error": {"step": ..., "message": ..., "kind": ...}   # when the scenario stopped early
          },
          "history": [{"at": ..., "action": "found", "from": null, "to": "open", "note": "...",
                       "run": {"id": 9, "name": "...", "out_dir": "..."} | null}, ...],
          "sightings": [{"run": {...}, "at": ..., "verdict": "FAIL", "value": 401, "threshold": 200,
                         "unit": "SIP", "op": "==", "detail": "..."}, ...]
        }
      ],
      "retests": [                               # retest runs only
        {"finding": 3, "passed": true, "action": "verified",
         "before": {"run": {...}, "checks": [check, ...]}, "after": {"run": {...}, "checks": [...]},
         "rows": [{"name": "register:agent", "before": check | null, "after": check | null}, ...]}
      ]
    }

Checks inside ``before``/``after``/``rows`` have the ``results.json`` shape (name, verdict, value,
threshold, unit, op, detail, metrics). Strings come from SIP messages: escape them when rendering.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.contracts.results import write_json_atomic
from harness.findings.finding_model import RunRecord, State
from harness.findings.finding_store import FindingsStore

__all__ = ["FORMAT", "SNAPSHOT_NAME", "build_snapshot", "write_snapshot"]

FORMAT = "harness-findings/1"
SNAPSHOT_NAME = "findings.json"


def build_snapshot(store: FindingsStore, run: RunRecord, touched: Mapping[int, str],
                   retests: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The snapshot of ``run``: every finding in ``touched`` (id -> what this run did to it), then the
    target's other findings that are not verified yet (``this_run: "open"``)."""
    findings = []
    for f in store.findings(ids=list(touched)):
        findings.append({**f.to_dict(), "this_run": touched[f.id]})
    still_open = [State.OPEN, State.ANALYSED, State.FIXED]
    for f in store.findings(still_open, target=run.target_key):
        if f.id not in touched:
            findings.append({**f.to_dict(), "this_run": "open"})
    data: dict[str, Any] = {
        "format": FORMAT, "generated": time.time(),
        "run": {"id": run.id, "name": run.name, "out_dir": run.out_dir, "kind": run.kind,
                "retest_of": list(run.retest_of), "started": run.started, "finished": run.finished,
                "verdict": run.verdict, "target": run.target_key},
        "findings": findings,
    }
    if retests is not None:
        data["retests"] = retests
    return data


def write_snapshot(store: FindingsStore, run: RunRecord, touched: Mapping[int, str],
                   retests: list[dict[str, Any]] | None = None) -> Path:
    path = Path(run.out_dir) / SNAPSHOT_NAME
    write_json_atomic(path, build_snapshot(store, run, touched, retests))
    return path
