"""Toll fraud: was a call to an outside number refused, and in which dial formats?

Attackers dial the same international number in every way a PBX might route it out: ``00`` (most
of the world), ``+`` (E.164), ``011`` (North America), and behind an outside-line prefix ``9``.
:func:`dial_strings` makes those from one number; :func:`classify` says what one probe call met::

    for fmt, dialled in dial_strings("00441632960123", ("00", "+", "011", "9")):
        call = place_call(probe, target.aor(dialled), ...)
        outcome = classify(call, RefusalPolicy(), authenticated=False, waited_s=3.0)
        outcome.kind, outcome.text

Only a final answer the :class:`RefusalPolicy` names counts as refused (by default 403, 404, 484, 488,
503, 603; without credentials also a 401/407 challenge). Never the 487 that follows the harness's own
CANCEL: a call the PBX took and kept without a final answer for the whole wait rang out somewhere or
might have, which for a number abroad is already the exposure (``not refused within N s``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.probes.probe_uac import CallResult

__all__ = ["DEFAULT_REFUSALS", "FORMATS", "Outcome", "RefusalPolicy", "classify", "dial_strings", "verdict_of"]

#: final answers that refuse a call outright (forbidden, no such number, incomplete, not acceptable,
#: unavailable, declined)
DEFAULT_REFUSALS = (403, 404, 484, 488, 503, 603)
CHALLENGES = (401, 407)
FORMATS = ("00", "+", "011", "9")


@dataclass(frozen=True)
class RefusalPolicy:
    """The final answers that count as refusing a toll call (a target profile or the step may override)."""

    codes: tuple[int, ...] = DEFAULT_REFUSALS
    challenge_refuses: bool = True  #: a 401/407 to a call without credentials refuses it

    @classmethod
    def of(cls, codes: Iterable[int] | None) -> RefusalPolicy:
        return cls() if codes is None else cls(tuple(sorted({int(c) for c in codes})))

    def describe(self, *, authenticated: bool) -> str:
        codes = "/".join(str(c) for c in self.codes)
        return codes if authenticated or not self.challenge_refuses else f"401/407 challenge or {codes}"


def international(number: str) -> str | None:
    """The digits after the international prefix (``+``, ``00`` or ``011``, also behind an outside-line
    ``9``), or None for a national number."""
    for prefix in ("+", "011", "00", "9+", "9011", "900"):
        if number.startswith(prefix) and number[len(prefix):].isdigit() and len(number) > len(prefix):
            return number[len(prefix):]
    return None


def dial_strings(number: str, formats: Iterable[str] = FORMATS) -> list[tuple[str, str]]:
    """(format, what is dialled) for each wanted format. ``9`` goes in front of the ``00`` form: the
    outside line, then the number. A national number is dialled as it is, and with or without the ``9``."""
    digits = international(number)
    out: list[tuple[str, str]] = []
    for fmt in dict.fromkeys(formats):
        if fmt not in FORMATS:
            raise ValueError(f"unknown dial format {fmt!r} (known: {', '.join(FORMATS)})")
        if digits is not None:
            dialled = {"00": "00", "+": "+", "011": "011", "9": "900"}[fmt] + digits
        elif fmt == "9":
            dialled = number if number.startswith("9") else "9" + number
        else:
            dialled = number[1:] if number.startswith("9") and len(number) > 1 else number
        if dialled not in (d for _, d in out):
            out.append((fmt, dialled))
    return out


@dataclass(frozen=True)
class Outcome:
    #: refused | routed (rang or answered) | not_refused (no refusal: taken and kept, or another final)
    #: | no_answer (nothing at all came back) | not_judged (e.g. the credentials were not accepted)
    kind: str
    text: str

    @property
    def bad(self) -> bool:
        return self.kind in ("routed", "not_refused")


def classify(call: CallResult, policy: RefusalPolicy, *, authenticated: bool, waited_s: float) -> Outcome:
    codes = call.codes
    if call.answered:
        return Outcome("routed", f"{call.outcome()}: routed, torn down at once (BYE)")
    if call.rang:
        return Outcome("routed", f"it rang ({', '.join(map(str, codes))}): routed, torn down at once (CANCEL)")
    if call.cancelled:
        seen = ", ".join(str(c) for c in codes if c < 200) or "nothing"
        return Outcome("not_refused", f"not refused within {waited_s:g} s: the PBX took the call ({seen}) and gave "
                                      "no final answer; the harness cancelled it (its 487 is no refusal)")
    final = call.final
    if final is None:
        if codes:
            return Outcome("not_refused", f"not refused within {waited_s:g} s (only {', '.join(map(str, codes))})")
        if call.error:
            return Outcome("no_answer", f"no answer: {call.error}")
        return Outcome("no_answer", f"no answer at all within {waited_s:g} s")
    if final in CHALLENGES:
        if authenticated and call.authenticated:
            return Outcome("not_judged", f"{call.outcome()}: the account's credentials were not accepted, so what "
                                         "it may dial cannot be judged")
        if policy.challenge_refuses:
            return Outcome("refused", call.outcome())
    if final in policy.codes:
        return Outcome("refused", call.outcome())
    return Outcome("not_refused", f"{call.outcome()}: not a refusal (refusals: {policy.describe(authenticated=True)})")


def verdict_of(outcomes: Iterable[Outcome]) -> str:
    """``fail`` when any call was routed or not refused, else ``error`` when any is unjudged, else ``pass``."""
    kinds = [o.kind for o in outcomes]
    if any(k in ("routed", "not_refused") for k in kinds):
        return "fail"
    if not kinds or any(k != "refused" for k in kinds):
        return "error"
    return "pass"
