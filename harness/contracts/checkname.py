"""A check's identity, typed: built where the check is made, written as text in one place, never parsed back.

    >>> str(CheckName("audio", call="transferred", direction=("caller", "agent_b"), metric="mos"))
    'audio:transferred:caller->agent_b:mos'
    >>> str(CheckName("register", subject="caller"))
    'register:caller'
    >>> str(CheckName("dtmf", subject="caller", call="main"))
    'dtmf:caller:main'

The text form (``results.json``'s ``name``, JUnit test names, finding keys) joins the parts with ``:``:
kind, then subject and call in the order the kind names them (``order``), then the direction
``src->dst``, then the metric. ``results.json`` also keeps the parts themselves (``id``), which is what
the findings read: no code takes a name apart. A part may not contain ``:``, and the subject, the call
and the ends of a direction may not contain ``->`` (the scenario loader refuses such party and call
names before a run starts).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["NAME_PART", "CheckName"]

#: what a party name, a call name or a label may be made of (the loader holds scenario files to it)
NAME_PART = re.compile(r"^[A-Za-z0-9_.+-][A-Za-z0-9_.+ ()-]*$")


@dataclass(frozen=True)
class CheckName:
    """``kind``: what is judged (audio, call, transfer, register, rtp, hold, ...). ``call``: the call (its
    name or a label of the moment). ``subject``: a party, transport or other thing when the check is about
    one. ``direction``: ``(source, destination)`` of media. ``metric``: the measured part. ``subject_first``
    puts the subject before the call in the text (``dtmf:<party>:<call>``)."""

    kind: str
    call: str = ""
    subject: str = ""
    direction: tuple[str, str] | None = None
    metric: str = ""
    subject_first: bool = False

    def __post_init__(self) -> None:
        if not self.kind or ":" in self.kind or "->" in self.kind:
            raise ValueError(f"check kind {self.kind!r} must be a plain word")
        for what, value in (("call", self.call), ("subject", self.subject), *(
                ("direction", end) for end in (self.direction or ()))):
            if ":" in value or "->" in value:
                raise ValueError(f"check {what} {value!r} may contain neither ':' nor '->'")
        if ":" in self.metric:
            raise ValueError(f"check metric {self.metric!r} may not contain ':'")

    def parts(self) -> list[str]:
        middle = [self.subject, self.call] if self.subject_first else [self.call, self.subject]
        out = [self.kind, *(p for p in middle if p)]
        if self.direction is not None:
            out.append(f"{self.direction[0]}->{self.direction[1]}")
        if self.metric:
            out.append(self.metric)
        return out

    def __str__(self) -> str:
        return ":".join(self.parts())

    def with_metric(self, metric: str) -> CheckName:
        """The same subject, another measured part (an audio direction's ``mos``, ``delay``, ...)."""
        return CheckName(self.kind, self.call, self.subject, self.direction, metric, self.subject_first)

    @property
    def source(self) -> str:
        return self.direction[0] if self.direction else ""

    @property
    def destination(self) -> str:
        return self.direction[1] if self.direction else ""

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind}
        for key in ("call", "subject", "metric"):
            if getattr(self, key):
                d[key] = getattr(self, key)
        if self.direction is not None:
            d["direction"] = list(self.direction)
        if self.subject_first:
            d["subject_first"] = True
        return d

    @classmethod
    def from_dict(cls, d: Any) -> CheckName | None:
        """From ``results.json``'s ``id``; None when it is missing or malformed (an old or doctored file)."""
        if not isinstance(d, dict) or not isinstance(d.get("kind"), str):
            return None
        direction = d.get("direction")
        try:
            return cls(d["kind"], str(d.get("call") or ""), str(d.get("subject") or ""),
                       (str(direction[0]), str(direction[1])) if isinstance(direction, list | tuple)
                       and len(direction) == 2 else None, str(d.get("metric") or ""), bool(d.get("subject_first")))
        except ValueError:
            return None
