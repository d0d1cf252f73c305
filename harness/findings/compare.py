"""Old against new: the checks of the run that found a problem beside those of its retest.

The finding's own check comes first, then every check that was not PASS on either side, then (up to
a limit) the rest, so the table stays readable for a scenario with thirty audio checks::

    rows = compare_checks(before, after, focus="register:agent")
    for line in format_rows(rows):
        print(line)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CompareRow", "compare_checks", "format_rows", "measured"]


@dataclass(frozen=True)
class CompareRow:
    name: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "before": self.before, "after": self.after}


def compare_checks(before: list[dict[str, Any]], after: list[dict[str, Any]], focus: str,
                   limit: int = 16) -> list[CompareRow]:
    old = {str(c.get("name")): c for c in before}
    new = {str(c.get("name")): c for c in after}
    names = list(dict.fromkeys([*old, *new]))
    bad = [n for n in names if n != focus and any((side.get(n) or {}).get("verdict") not in (None, "PASS")
                                                   for side in (old, new))]
    rest = [n for n in names if n != focus and n not in bad]
    ordered = [focus, *bad, *rest][:max(limit, 1 + len(bad))]
    return [CompareRow(n, old.get(n), new.get(n)) for n in ordered]


def measured(check: dict[str, Any] | None) -> str:
    """``401 SIP FAIL``; ``- (not measured)`` when the check is absent."""
    if check is None:
        return "- (not run)"
    value = check.get("value")
    text = "-" if value is None else f"{value}{(' ' + check['unit']) if check.get('unit') else ''}"
    return f"{text} {check.get('verdict', '?')}"


def format_rows(rows: list[CompareRow]) -> list[str]:
    width = max([len(r.name) for r in rows] + [5])
    left = max([len(measured(r.before)) for r in rows] + [6])
    lines = [f"  {'check':{width}}  {'before':{left}}  after"]
    for r in rows:
        lines.append(f"  {r.name:{width}}  {measured(r.before):{left}}  {measured(r.after)}")
    return lines
