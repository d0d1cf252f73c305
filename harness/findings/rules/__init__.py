"""Diagnosis rules: small typed functions, each turning one kind of evidence into cause and fix.

A rule declares which checks it looks at (by the kind of the check's typed identity, ``id`` in
``results.json``: ``register``, ``call``, ``audio``...; see :class:`~harness.findings.evidence.CheckView`)
and returns a :class:`~harness.findings.finding_model.Diagnosis` or None when the evidence is not its kind of
problem. :func:`diagnose` asks the rules in order and takes the first answer; a generic one restates the
check when none knows better::

    @rule("auth_failure", kinds=("register", "call"), order=10)
    def auth_failure(c: Clues) -> Diagnosis | None:
        if c.code not in (401, 403, 407):
            return None
        return found("the PBX refused the credentials ...", "check the password ...", "REGISTER -> 401")

Rules live in modules by subject (harness_side, signalling, registration, drops, media, audio, transfer,
recording); :func:`diagnose` imports them all, which registers them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, replace

from harness.findings.evidence import Clues
from harness.findings.finding_model import Diagnosis

__all__ = ["RULES", "Rule", "diagnose", "found", "rule"]

RuleFn = Callable[[Clues], Diagnosis | None]


@dataclass(frozen=True)
class Rule:
    name: str
    kinds: tuple[str, ...]  #: check kinds; a trailing '*' matches a prefix, '*' alone every check
    order: int
    fn: RuleFn

    def applies(self, kind: str) -> bool:
        """A kind is a plain word. A check without an ``id`` has its whole name text for a kind (see
        :meth:`CheckView.of <harness.findings.evidence.CheckView.of>`): with a ':' in it, it matches
        only ``*``, never a prefix such as ``recording*``."""
        return any(k == "*" or (kind.startswith(k[:-1]) and ":" not in kind) if k.endswith("*") else kind == k
                   for k in self.kinds)


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


_RULE_MODULES = ("harness_side", "signalling", "registration", "drops", "media_flow", "audio", "transfer", "recordings")


def _load_rules() -> None:
    for module in _RULE_MODULES:
        importlib.import_module(f"{__name__}.{module}")
