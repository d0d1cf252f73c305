"""What changed since the previous run, and the slowest and worst calls of this one.

Checks are matched across runs by ``(scenario name, check name)``. A check that is not PASS now:

* **broke** when it passed in the previous run;
* is **new** when the previous run did not have it (or there is no previous run);
* is **still failing** when it was not PASS before either.

A check that passes now and did not before is **fixed**.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.report.run_store import RunData, as_dict
from harness.report.trends import setup_values

__all__ = ["AudioRow", "CallRow", "Changes", "CheckChange", "changes", "slowest_calls", "worst_audio"]


@dataclass(frozen=True)
class CheckChange:
    scenario: str
    check: str
    before: str | None  #: verdict in the previous run; None when it did not have the check
    after: str | None  #: verdict now; None when this run does not have it
    value: Any = None
    op: str = ""
    threshold: Any = None
    unit: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Changes:
    previous_run: str | None
    broke: list[CheckChange] = field(default_factory=list)
    new: list[CheckChange] = field(default_factory=list)
    still_failing: list[CheckChange] = field(default_factory=list)
    fixed: list[CheckChange] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"previous_run": self.previous_run,
                **{k: [c.to_dict() for c in getattr(self, k)] for k in ("broke", "new", "still_failing", "fixed")}}


def _checks(run: RunData) -> dict[tuple[str, str], dict[str, Any]]:
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for sc in run.scenarios:
        for c in sc.get("checks", []):
            out.setdefault((sc["name"], str(c["name"])), c)
    return out


def changes(current: RunData, previous: RunData | None) -> Changes:
    now = _checks(current)
    before = _checks(previous) if previous is not None else {}
    out = Changes(previous_run=previous.run_id if previous is not None else None)
    for (sc, name), c in now.items():
        was = before.get((sc, name))
        was_v = str(was["verdict"]) if was else None
        ch = CheckChange(sc, name, was_v, str(c["verdict"]), c.get("value"), str(c.get("op") or ""),
                         c.get("threshold"), str(c.get("unit") or ""), str(c.get("detail") or ""))
        if c["verdict"] == "PASS":
            if was_v is not None and was_v != "PASS":
                out.fixed.append(ch)
        elif was_v == "PASS":
            out.broke.append(ch)
        elif was_v is None:
            out.new.append(ch)
        else:
            out.still_failing.append(ch)
    return out


@dataclass(frozen=True)
class CallRow:
    scenario: str
    call: str
    setup_ms: float | None
    final_code: Any
    answered: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AudioRow:
    scenario: str
    direction: str
    mos: float | None
    verdict: str
    dropouts: int
    emodel_mos: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def slowest_calls(run: RunData, n: int = 5) -> list[CallRow]:
    rows = []
    for sc in run.scenarios:
        for alias, c in ((sc.get("sip") or {}).get("calls") or {}).items():
            if not isinstance(c, dict):
                continue
            vals = setup_values({"sip": {"calls": {alias: c}}})
            rows.append(CallRow(sc["name"], str(alias), vals[0] if vals else None, c.get("final_code"),
                                bool(c.get("answered"))))
    # an unanswered call (no setup time) is the slowest of all
    rows.sort(key=lambda r: (r.setup_ms is not None, -(r.setup_ms or 0.0)))
    return rows[:n]


def worst_audio(run: RunData, n: int = 5) -> list[AudioRow]:
    rows = []
    for sc in run.scenarios:
        for direction, a in (sc.get("audio") or {}).items():
            if not isinstance(a, dict):
                continue
            mos = a.get("mos") if isinstance(a.get("mos"), int | float) else None
            em = as_dict(a.get("emodel"))
            rows.append(AudioRow(sc["name"], str(direction), mos, str(a.get("verdict") or "ERROR"),
                                 len(a.get("dropouts") or []),
                                 em.get("mos") if isinstance(em.get("mos"), int | float) else None))
    rows.sort(key=lambda r: (r.mos is not None, r.mos or 0.0))
    return rows[:n]
