"""Run and scenario results: plain dataclasses that serialise to ``results.json``.

``results.json`` is rewritten (atomically) after every scenario, so an interrupted or crashed run
keeps everything judged so far.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.verdict import CheckResult, Verdict, worst

__all__ = ["DEFAULT_RERUNS", "MAX_RERUNS", "RunResult", "ScenarioResult", "write_json_atomic"]

DEFAULT_RERUNS = 1  #: a scenario its starved host left unjudged is run again once (harness.scenarios.rerun)
MAX_RERUNS = 3  #: every run stays bounded: at most this many extra attempts per scenario


@dataclass
class ScenarioResult:
    name: str
    file: str
    verdict: Verdict = Verdict.ERROR
    started: float = 0.0
    duration_s: float = 0.0
    checks: list[CheckResult] = field(default_factory=list)
    sip: dict[str, Any] = field(default_factory=dict)
    audio: dict[str, Any] = field(default_factory=dict)
    rtp: dict[str, Any] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    error: dict[str, Any] | None = None
    skipped_steps: list[str] = field(default_factory=list)
    out_dir: str = ""
    health: dict[str, Any] = field(default_factory=dict)  #: the harness's own health (harness.health)
    #: earlier attempts the harness could not judge (its host starved), run again (harness.scenarios.rerun)
    attempts: list[dict[str, Any]] = field(default_factory=list)

    def finish(self) -> None:
        self.verdict = worst([c.verdict for c in self.checks])
        if self.error is not None and self.verdict is Verdict.PASS:
            self.verdict = Verdict.ERROR

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.file, "verdict": self.verdict.value, "started": self.started,
                "duration_s": round(self.duration_s, 3), "checks": [c.to_dict() for c in self.checks],
                "sip": self.sip, "audio": self.audio, "rtp": self.rtp, "artifacts": self.artifacts,
                "error": self.error, "skipped_steps": self.skipped_steps, "out_dir": self.out_dir,
                "health": self.health, "attempts": self.attempts}

    def blamed_on_target(self) -> bool:
        """A FAIL or ERROR that says something about the target (not the harness's own trouble)."""
        if any(c.verdict is not Verdict.PASS and c.blame != "harness" for c in self.checks):
            return True
        return self.error is not None and self.error.get("blame") != "harness" and not any(
            c.verdict is not Verdict.PASS for c in self.checks)


@dataclass
class RunResult:
    run_id: str
    out_dir: str
    target: dict[str, Any]
    started: float = field(default_factory=time.time)
    finished: float | None = None
    scenarios: list[ScenarioResult] = field(default_factory=list)
    interrupted: bool = False
    harness_version: str = ""

    @property
    def verdict(self) -> Verdict:
        v = worst([s.verdict for s in self.scenarios])
        return Verdict.ERROR if self.interrupted and v is Verdict.PASS else v

    def harness_failed(self) -> bool:
        """Not PASS, and only because of the harness: every FAIL/ERROR is blamed on the harness (its host
        was overloaded, a party crashed, the lab failed, an internal error). Exit code 3, not 1."""
        if self.verdict is Verdict.PASS or self.interrupted:
            return False
        bad = [s for s in self.scenarios if s.verdict is not Verdict.PASS]
        return bool(bad) and not any(s.blamed_on_target() for s in bad)

    def counts(self) -> dict[str, int]:
        out = {v.value: 0 for v in Verdict}
        for s in self.scenarios:
            out[s.verdict.value] += 1
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "harness_version": self.harness_version, "started": self.started,
                "finished": self.finished, "interrupted": self.interrupted, "verdict": self.verdict.value,
                "counts": self.counts(), "target": self.target,
                "scenarios": [s.to_dict() for s in self.scenarios]}


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
