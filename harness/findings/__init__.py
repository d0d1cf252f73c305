"""Findings: the find -> analyse -> fix -> retest loop, kept in a database that survives crashes.

Every ``harness run`` stores its runs, scenario results and checks as they happen (the sink in
:mod:`~harness.findings.findings_sink`), and each FAIL or ERROR check opens a finding, or updates the one
already tracked for the same scenario, check and target. Rules (:mod:`~harness.findings.rules`)
turn the evidence (SIP logs, RTP figures, audio metrics) into a probable cause and a suggested fix.
Engineers record cause and solution, mark the fix, and ``harness retest`` proves it::

    from harness.findings import State, db_location, open_store

    store = open_store(db_location(settings))
    for f in store.findings({State.OPEN}):
        print(f.id, f.key, f.diagnosis.cause if f.diagnosis else "")

Modules: model (dataclasses), lifecycle (states and transitions), store (the interface and where
the database lives), sqlite (the backend) with sqlite_open (opening the file) and sqlite_rows
(reading rows back), migrations (schema versions), evidence (a check's clues: its typed identity, the
SIP logs as harness.contracts.siplog reads them; collecting evidence), rules (diagnosis), observe
(scenario -> observations), sink (the RunSink), snapshot (``findings.json``, its format documented
there), compare and retest (old against new), views and cli (the commands).
"""

from __future__ import annotations

from harness.contracts.errors import StoreError, TransitionError, UnknownFinding
from harness.findings.finding_model import Action, Diagnosis, Finding, FindingKey, State
from harness.findings.finding_store import FindingsStore, db_location, open_store

__all__ = [
    "Action",
    "Diagnosis",
    "Finding",
    "FindingKey",
    "FindingsStore",
    "State",
    "StoreError",
    "TransitionError",
    "UnknownFinding",
    "db_location",
    "open_store",
]
