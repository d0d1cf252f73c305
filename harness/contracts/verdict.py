"""Verdicts and check results: the one shape every judgement in the harness takes.

A check is PASS, FAIL or ERROR, always with the measured value and the threshold it was held to.
A missing measurement is ERROR, never PASS::

    >>> c = CheckResult.compare("setup_time", 182.0, "<=", 2000.0, "ms")
    >>> c.verdict
    <Verdict.PASS: 'PASS'>
    >>> CheckResult.compare("setup_time", None, "<=", 2000.0, "ms").verdict
    <Verdict.ERROR: 'ERROR'>
"""

from __future__ import annotations

import math
import operator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from harness.contracts.checkname import CheckName

__all__ = ["CheckResult", "Verdict", "worst"]


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"


_RANK = {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.ERROR: 2}
_OPS = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq}


def worst(verdicts: list[Verdict]) -> Verdict:
    """The overall verdict of several: ERROR beats FAIL beats PASS; nothing measured is ERROR."""
    if not verdicts:
        return Verdict.ERROR
    return max(verdicts, key=_RANK.__getitem__)


@dataclass
class CheckResult:
    """One judged measurement. ``threshold`` reads together with ``op``: PASS when ``value op threshold``.

    ``blame`` says whose problem a FAIL or ERROR is: ``""`` the target (the PBX under test), ``"harness"``
    the harness itself (its host was overloaded, a party crashed, the lab did not start, an internal
    error). The exit code tells them apart (:class:`harness.contracts.errors.ExitCode`).
    """

    name: str  #: the check's identity as text (written from ``id``; see harness.contracts.checkname)
    verdict: Verdict
    value: Any
    threshold: Any
    unit: str = ""
    op: str = ""
    detail: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    blame: str = ""
    id: CheckName | None = None  #: the typed identity the name was written from

    @classmethod
    def of(cls, cid: CheckName, verdict: Verdict, value: Any, threshold: Any, unit: str = "", op: str = "",
           detail: str = "", metrics: dict[str, Any] | None = None, blame: str = "") -> CheckResult:
        """A check named by its typed identity (the text name is written from it)."""
        return cls(str(cid), verdict, value, threshold, unit, op, detail, dict(metrics or {}), blame, cid)

    @classmethod
    def compare(
        cls,
        name: str | CheckName,
        value: float | None,
        op: str,
        threshold: float,
        unit: str = "",
        detail: str = "",
        metrics: dict[str, Any] | None = None,
    ) -> CheckResult:
        """Judge ``value op threshold``; ``None`` or NaN (nothing measured) is ERROR."""
        if op not in _OPS:
            raise ValueError(f"unknown comparison {op!r}")
        if value is None or (isinstance(value, float) and math.isnan(value)):
            verdict = Verdict.ERROR
            detail = detail or "no measurement"
        else:
            verdict = Verdict.PASS if _OPS[op](value, threshold) else Verdict.FAIL
        cid = name if isinstance(name, CheckName) else None
        return cls(str(name), verdict, value, threshold, unit, op, detail, dict(metrics or {}), id=cid)

    @classmethod
    def error(cls, name: str | CheckName, detail: str, threshold: Any = None, unit: str = "",
              blame: str = "") -> CheckResult:
        cid = name if isinstance(name, CheckName) else None
        return cls(str(name), Verdict.ERROR, None, threshold, unit, "", detail, blame=blame, id=cid)

    def named(self, cid: CheckName) -> CheckResult:
        """This result under the identity ``cid`` (the audio engine names its checks by metric only; the step
        that asked gives them their place: call, direction)."""
        self.id, self.name = cid, str(cid)
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["verdict"] = self.verdict.value
        d["id"] = self.id.to_dict() if self.id is not None else None
        return d
