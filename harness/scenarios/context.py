"""What a running scenario knows: its parties, its calls by name, and the checks judged so far."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.target import Target
from harness.contracts.thresholds import DEFAULT_THRESHOLDS
from harness.contracts.verdict import CheckResult, Verdict
from harness.lab.stack import LabStack
from harness.scenarios.scenario_model import Scenario
from harness.sip import Party

__all__ = ["CallLeg", "RunContext"]



@dataclass
class Window:
    """A stretch of time in which checks were measured (by default one step's run), and those checks
    (indexes into ``RunContext.checks``). The runner judges the harness's health over it."""

    label: str
    t0: float
    t1: float | None = None
    checks: list[int] = field(default_factory=list)
    explicit: bool = False  #: the step named the span itself (e.g. a whole call judged after it ended)


@dataclass
class CallLeg:
    """A named call of the scenario, seen from both ends when both ends are parties."""

    alias: str
    caller: str
    caller_call: str
    uri: str
    callee: str | None = None
    callee_call: str | None = None
    sip_call_id: str = ""
    t_invite: float | None = None
    times: dict[str, float] = field(default_factory=dict)
    final_code: int | None = None
    answered: bool = False
    ended: bool = False

    def ms(self, key: str) -> float | None:
        if self.t_invite is None or key not in self.times:
            return None
        return round((self.times[key] - self.t_invite) * 1000.0, 2)

    def timings(self) -> dict[str, Any]:
        return {"sip_call_id": self.sip_call_id, "caller": self.caller, "callee": self.callee, "uri": self.uri,
                "final_code": self.final_code, "answered": self.answered,
                "invite_to_provisional_ms": self.ms("t_provisional"), "invite_to_180_ms": self.ms("t_180"),
                "invite_to_183_ms": self.ms("t_183"), "setup_ms": self.ms("t_200"),
                "invite_to_ack_ms": self.ms("t_confirmed"), "duration_s": (
                    round(self.times["t_disconnected"] - self.times["t_200"], 3)
                    if "t_disconnected" in self.times and "t_200" in self.times else None)}


class RunContext:
    def __init__(self, scenario: Scenario, target: Target, out_dir: Path,
                 log: Callable[[str], None] | None = None, lab: LabStack | None = None):
        self.scenario, self.target, self.out_dir = scenario, target, out_dir
        self.lab = lab  #: the embedded lab when the target is the lab (fault and impairment steps need it)
        self.parties: dict[str, Party] = {}
        self.calls: dict[str, CallLeg] = {}
        self.checks: list[CheckResult] = []
        self.registrations: dict[str, dict[str, Any]] = {}
        self.artifacts: dict[str, str] = {}
        self.audio: dict[str, Any] = {}
        self.rtp: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        self.deadline = time.monotonic() + scenario.timeout_s
        self._log = log or (lambda _m: None)
        self.windows: list[Window] = []
        self._window: Window | None = None

    def log(self, message: str) -> None:
        self._log(message)

    # ---- lookups ----------------------------------------------------------------------------------
    def party(self, name: str) -> Party:
        return self.parties[name]

    def account_of(self, party: str) -> str:
        return self.scenario.parties[party].account

    def dial_uri(self, to: str) -> str:
        """A party name, a number name from the target profile, a SIP URI, or a literal user."""
        if to.startswith(("sip:", "sips:", "tel:")):
            return to
        if to in self.scenario.parties:
            return self.target.aor(self.target.account(self.account_of(to)).username)
        if to in self.target.numbers:
            return self.target.aor(self.target.numbers[to])
        return self.target.aor(to)

    def threshold(self, key: str, override: Any = None) -> Any:
        if override is not None:
            return override
        for source in (self.scenario.thresholds, self.target.thresholds, DEFAULT_THRESHOLDS):
            if key in source:
                return source[key]
        raise KeyError(key)

    def record_path(self, party: str) -> str:
        return str(self.out_dir / f"{party}-{{call}}.wav")

    def remaining(self, cap: float) -> float:
        """A wait of at most ``cap`` seconds that never passes the scenario's deadline."""
        return max(0.1, min(cap, self.deadline - time.monotonic()))

    # ---- measured windows -------------------------------------------------------------------------
    def begin_window(self, label: str) -> None:
        """Checks from now on belong to a window that starts now (the runner opens one per step)."""
        self.end_window()
        self._window = Window(label, time.monotonic())
        self.windows.append(self._window)

    def end_window(self) -> None:
        w, self._window = self._window, None
        if w is not None and w.t1 is None:
            w.t1 = time.monotonic()

    def measured(self, t0: float, t1: float) -> None:
        """The current window's checks were measured over ``[t0, t1]`` (monotonic seconds), not while the
        step ran: e.g. a whole call's audio judged after the call ended."""
        if self._window is not None:
            self._window.t0, self._window.t1, self._window.explicit = t0, t1, True

    # ---- results ----------------------------------------------------------------------------------
    def check(self, result: CheckResult) -> CheckResult:
        if self._window is not None:
            self._window.checks.append(len(self.checks))
        self.checks.append(result)
        mark = {Verdict.PASS: "ok", Verdict.FAIL: "FAIL", Verdict.ERROR: "ERROR"}[result.verdict]
        value = result.value if result.value is not None else "-"
        self.log(f"    {mark:5} {result.name}: {value}{(' ' + result.unit) if result.unit else ''}"
                 f" {result.op} {result.threshold if result.threshold is not None else ''}"
                 f"{('  (' + result.detail + ')') if result.detail else ''}")
        return result
