"""Diagnosis rules: small typed functions, each turning one kind of evidence into cause and fix.

A rule declares which checks it looks at (by the check name's kind: ``register``, ``call``,
``audio``...) and returns a :class:`~harness.findings.model.Diagnosis` or None when the evidence is
not its kind of problem. :func:`diagnose` asks the rules in order and takes the first answer; a
generic one restates the check when none knows better::

    @rule("auth_failure", kinds=("register", "call"), order=10)
    def auth_failure(c: Clues) -> Diagnosis | None:
        if c.code not in (401, 403, 407):
            return None
        return found("the PBX refused the credentials ...", "check the password ...", "REGISTER -> 401")

Rules live in modules by subject (signalling, media, audio, transfer, recording); importing this
package registers them all.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from harness.findings.evidence import Clues
from harness.findings.model import Diagnosis

__all__ = ["RULES", "Rule", "diagnose", "found", "rule"]

RuleFn = Callable[[Clues], Diagnosis | None]


@dataclass(frozen=True)
class Rule:
    name: str
    kinds: tuple[str, ...]  #: check-name kinds (prefix before the first ':'); a trailing '*' matches a prefix
    order: int
    fn: RuleFn

    def applies(self, kind: str) -> bool:
        return any(kind.startswith(k[:-1]) if k.endswith("*") else kind == k for k in self.kinds)


#: Every rule, filled once at import by the @rule decorators (a registry, not run state)
RULES: list[Rule] = []


def rule(name: str, *, kinds: tuple[str, ...], order: int = 50) -> Callable[[RuleFn], RuleFn]:
    """Register a rule; lower ``order`` is asked first (specific rules before broad ones)."""

    def register(fn: RuleFn) -> RuleFn:
        if any(r.name == name for r in RULES):
            raise ValueError(f"diagnosis rule {name!r} is registered twice")
        RULES.append(Rule(name, kinds, order, fn))
        RULES.sort(key=lambda r: (r.order, r.name))
        return fn

    return register


def found(cause: str, fix: str, *facts: str, confidence: str = "likely") -> Diagnosis:
    """A rule's answer; :func:`diagnose` fills in the rule's name."""
    return Diagnosis(rule="", cause=cause, fix=fix, facts=tuple(f for f in facts if f), confidence=confidence)


def diagnose(clues: Clues) -> Diagnosis:
    """The first rule's diagnosis for this check, or a generic one restating what was measured."""
    _load_rules()
    kind = clues.name.kind
    for r in RULES:
        if r.applies(kind):
            d = r.fn(clues)
            if d is not None:
                return replace(d, rule=r.name)
    return _generic(clues)


def _generic(c: Clues) -> Diagnosis:
    chk = c.check
    measured = "nothing was measured" if chk.get("value") is None else \
        f"measured {chk.get('value')}{(' ' + chk['unit']) if chk.get('unit') else ''}"
    cause = f"{chk.get('name')} {chk.get('verdict')}: {measured}, threshold {chk.get('op') or ''} " \
            f"{chk.get('threshold')}".replace("  ", " ")
    if chk.get("detail"):
        cause += f" ({chk['detail']})"
    if c.error.get("message"):
        cause += f"; the scenario stopped at {c.error.get('step')}: {c.error['message']}"
    return Diagnosis(rule="generic", cause=cause, confidence="possible",
                     fix="No rule knows this check yet: read the SIP log and WAVs in the evidence, then record the "
                         "cause with 'harness findings note'.")


_RULE_MODULES = ("harness_side", "signalling", "media", "audio", "transfer", "recording")


def _load_rules() -> None:
    for module in _RULE_MODULES:
        importlib.import_module(f"{__name__}.{module}")
