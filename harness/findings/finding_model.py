"""The findings data model: plain dataclasses that every store backend reads and writes.

A *finding* is one failing check of one scenario against one target, tracked across runs::

    key = FindingKey(scenario="connect", check="register:agent", target="lab")

Each sighting of the same key updates the one finding (first seen, last seen, occurrences), so a
check that fails every night is one finding with a history, not a pile of duplicates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "Action",
    "Change",
    "Diagnosis",
    "Finding",
    "FindingKey",
    "Observation",
    "RunRecord",
    "RunRef",
    "ScenarioRecord",
    "Sighting",
    "State",
    "Transition",
    "target_key",
]


class State(StrEnum):
    OPEN = "open"  #: found (or found again after a fix); nobody has confirmed a cause yet
    ANALYSED = "analysed"  #: an engineer recorded cause and solution
    FIXED = "fixed"  #: the solution was carried out; waiting for a retest
    VERIFIED = "verified"  #: a retest passed after the fix


class Action(StrEnum):
    """What happened to a finding; every action is one row of its audit trail."""

    FOUND = "found"
    NOTED = "noted"
    FIXED = "fixed"
    VERIFIED = "verified"
    REOPENED = "reopened"
    RETESTED = "retested"  #: a retest that did not change the state (failed while open, passed while verified)


@dataclass(frozen=True)
class FindingKey:
    scenario: str
    check: str
    target: str

    def __str__(self) -> str:
        return f"{self.scenario} / {self.check} @ {self.target}"


def target_key(target: dict[str, Any]) -> str:
    """The target part of a finding's key: ``lab`` for the embedded lab (whatever its ports), else
    the profile's name and address, so that two PBXs never share findings."""
    if target.get("is_lab"):
        return "lab"
    return f"{target.get('name', '?')} ({target.get('host', '?')}:{target.get('port', '?')}/" \
           f"{target.get('transport', 'udp')})"


@dataclass(frozen=True)
class Diagnosis:
    """The probable cause and the suggested fix, in plain words, with the facts they rest on."""

    rule: str
    cause: str
    fix: str
    facts: tuple[str, ...] = ()
    confidence: str = "likely"  #: likely (the evidence shows it) | possible (a guess from the check alone)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["facts"] = list(self.facts)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Diagnosis:
        return cls(rule=str(d["rule"]), cause=str(d["cause"]), fix=str(d["fix"]),
                   facts=tuple(str(f) for f in d.get("facts", ())), confidence=str(d.get("confidence", "likely")))


@dataclass(frozen=True)
class RunRef:
    id: int
    name: str
    out_dir: str


@dataclass(frozen=True)
class Transition:
    at: float
    action: Action
    from_state: State | None
    to_state: State
    note: str = ""
    run: RunRef | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "action": self.action.value,
                "from": self.from_state.value if self.from_state else None, "to": self.to_state.value,
                "note": self.note, "run": asdict(self.run) if self.run else None}


@dataclass(frozen=True)
class Sighting:
    """One failing measurement of a finding's check, in one run."""

    run: RunRef
    at: float
    verdict: str
    value: Any
    threshold: Any
    unit: str = ""
    op: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["run"] = asdict(self.run)
        return d


@dataclass
class Finding:
    id: int
    key: FindingKey
    state: State
    verdict: str
    title: str
    first_seen: float
    last_seen: float
    occurrences: int
    first_run: RunRef
    last_run: RunRef
    scenario_file: str
    scenario_sha256: str | None
    target_file: str | None  #: None: the embedded lab
    target_sha256: str | None
    diagnosis: Diagnosis | None
    evidence: dict[str, Any]
    last_check_id: int | None = None
    history: list[Transition] = field(default_factory=list)
    sightings: list[Sighting] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "scenario": self.key.scenario, "check": self.key.check, "target": self.key.target,
                "state": self.state.value, "verdict": self.verdict, "title": self.title,
                "first_seen": self.first_seen, "last_seen": self.last_seen, "occurrences": self.occurrences,
                "first_run": asdict(self.first_run), "last_run": asdict(self.last_run),
                "scenario_file": self.scenario_file, "scenario_sha256": self.scenario_sha256,
                "target_file": self.target_file, "target_sha256": self.target_sha256,
                "diagnosis": self.diagnosis.to_dict() if self.diagnosis else None, "evidence": self.evidence,
                "history": [t.to_dict() for t in self.history], "sightings": [s.to_dict() for s in self.sightings]}


@dataclass(frozen=True)
class RunRecord:
    """A run as the store keeps it. ``id``, ``finished`` and ``verdict`` are filled by the store."""

    name: str
    out_dir: str
    started: float
    target_key: str
    target_name: str
    target: dict[str, Any]
    target_file: str | None = None
    target_sha256: str | None = None
    kind: str = "run"  #: run | retest
    retest_of: tuple[int, ...] = ()
    harness_version: str = ""
    id: int | None = None
    finished: float | None = None  #: None: still running, or the process died (kill -9, power loss)
    verdict: str | None = None
    interrupted: bool = False

    @property
    def ref(self) -> RunRef:
        return RunRef(self.id or 0, self.name, self.out_dir)


@dataclass(frozen=True)
class ScenarioRecord:
    """One scenario's result as stored: the whole ``results.json`` entry plus where it came from."""

    name: str
    file: str  #: absolute path of the scenario file
    file_sha256: str | None
    verdict: str
    started: float
    duration_s: float
    out_dir: str  #: absolute path of the scenario's directory (logs, WAVs)
    result: dict[str, Any]
    id: int | None = None
    run_id: int | None = None

    @property
    def checks(self) -> list[dict[str, Any]]:
        return list(self.result.get("checks", []))


@dataclass(frozen=True)
class Observation:
    """A FAIL or ERROR check ready to open or update a finding."""

    key: FindingKey
    verdict: str
    check: dict[str, Any]
    title: str
    diagnosis: Diagnosis
    evidence: dict[str, Any]


@dataclass(frozen=True)
class Change:
    """What a run did to a finding: found, seen (again), reopened, or passed (its check passed)."""

    finding_id: int
    key: FindingKey
    action: str
