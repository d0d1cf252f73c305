"""What is known about one failing check: the clues the rules read, and the evidence a finding keeps.

:class:`Clues` wraps one check, its scenario's ``results.json`` entry and the scenario directory
(SIP logs, WAVs). :func:`collect_evidence` keeps what an engineer needs to look at later: the files,
the metrics that belong to the check, and the SIP messages of the parties involved as one-line
summaries (start line only, so no header value, no credential) plus the key message in full with
Authorization headers masked.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.checkname import CheckName
from harness.contracts.sdp import SdpMedia, first_audio
from harness.contracts.siplog import LoggedMessage, mask_credentials, parsed_messages

__all__ = ["CheckView", "Clues", "collect_evidence", "is_private", "summary_line"]

MAX_SIP_LINES = 40  #: per party, in the evidence summary
_AUDIO_SUMMARY_DROP = ("checks", "delay_track", "mos_detail")
#: addresses that do not cross a NAT (ipaddress' is_private also counts documentation ranges)
_UNROUTED = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10",
                                                    "169.254.0.0/16", "fc00::/7", "fe80::/10"))


@dataclass(frozen=True)
class CheckView:
    """What the rules read of a check's identity, built from its typed ``id`` (never from its name text).

    ``audio`` with direction ``caller->agent`` and metric ``mos`` -> kind ``audio``, subject
    ``caller->agent``, part ``mos``; the same in call ``transferred`` -> scope ``transferred``;
    ``transfer`` of call ``main``, metric ``notify`` -> subject ``main``, part ``notify``;
    ``register`` of ``caller`` -> subject ``caller``.
    """

    kind: str
    subject: str = ""  #: ``src->dst`` when the check has a direction, else its call, else its subject
    part: str = ""  #: the metric
    #: with a direction: its call (a call label, a recording's call), and its subject when it has one too,
    #: as the name text orders them (``audio:echo:caller->caller``: scope ``echo``)
    scope: str = ""
    id: CheckName | None = None  #: the typed identity (None: a check from before ids were recorded)

    @classmethod
    def of(cls, check: dict[str, Any]) -> CheckView:
        """The view of a ``results.json`` check. A check without an ``id`` (a results.json written before
        checks carried one) is not taken apart: its kind is its whole name text and everything else is
        empty, so no rule for a kind matches it and only the diagnoses that ignore the name (the
        harness-side ones, the generic one) apply."""
        cid = CheckName.from_dict(check.get("id"))
        if cid is None:
            return cls(str(check.get("name", "")))
        if cid.direction is not None:
            middle = (cid.subject, cid.call) if cid.subject_first else (cid.call, cid.subject)
            return cls(cid.kind, f"{cid.source}->{cid.destination}", cid.metric, ":".join(p for p in middle if p),
                       cid)
        return cls(cid.kind, cid.call or cid.subject, cid.metric, "", cid)

    @property
    def prefix(self) -> str:
        return f"{self.kind}:{self.scope}" if self.scope else self.kind

    def sibling(self, subject: str, part: str = "") -> str:
        """The name text of the check ``part`` of ``subject`` under the same prefix (e.g. the other
        direction), as :class:`~harness.contracts.checkname.CheckName` writes it."""
        return f"{self.prefix}:{subject}" + (f":{part}" if part else "")

    @property
    def audio_key(self) -> str:
        """The key of this direction's analysis in the scenario's ``audio`` results."""
        return self.subject if self.prefix == "audio" else f"{self.prefix}:{self.subject}"

    @property
    def direction(self) -> tuple[str, str] | None:
        """(source, destination) of a check about one direction of media."""
        return self.id.direction if self.id is not None else None

    @property
    def call(self) -> str:
        """The call the check is about ("" when it names none)."""
        return self.id.call if self.id is not None else ""

    @property
    def party(self) -> str:
        """The party, transport or other thing the check is about, apart from its call ("" when none)."""
        return self.id.subject if self.id is not None else ""


@dataclass
class Clues:
    """One FAIL/ERROR check with everything around it. Log files are read once, on first use."""

    check: dict[str, Any]
    scenario: dict[str, Any]
    scenario_dir: Path | None = None
    target: dict[str, Any] = field(default_factory=dict)
    log_cache: dict[str, list[LoggedMessage]] = field(default_factory=dict, repr=False)  #: shared per scenario

    # ---- the check --------------------------------------------------------------------------------
    @property
    def name(self) -> CheckView:
        return CheckView.of(self.check)

    @property
    def value(self) -> Any:
        return self.check.get("value")

    @property
    def code(self) -> int | None:
        """The check's value as a SIP status code, when it is one."""
        v = self.value
        return v if isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 699 else None

    def sibling(self, name: str) -> dict[str, Any] | None:
        return next((c for c in self.scenario.get("checks", []) if c.get("name") == name), None)

    def earlier_checks(self) -> list[dict[str, Any]]:
        """The scenario's checks recorded before this one, in order: what the scenario had done by then
        (checks are appended as steps run, so their order is the scenario's timeline)."""
        checks = list(self.scenario.get("checks") or [])
        at = next((i for i, chk in enumerate(checks) if chk is self.check), None)
        if at is None:
            at = next((i for i, chk in enumerate(checks) if chk.get("name") == self.check.get("name")), len(checks))
        return checks[:at]

    # ---- the scenario -----------------------------------------------------------------------------
    @property
    def error(self) -> dict[str, Any]:
        return self.scenario.get("error") or {}

    @property
    def calls(self) -> dict[str, dict[str, Any]]:
        return dict((self.scenario.get("sip") or {}).get("calls") or {})

    @property
    def registrations(self) -> dict[str, dict[str, Any]]:
        return dict((self.scenario.get("sip") or {}).get("registrations") or {})

    def rtp(self, alias: str, party: str) -> dict[str, Any]:
        return dict(((self.scenario.get("rtp") or {}).get(alias) or {}).get(party) or {})

    def audio(self, direction: str) -> dict[str, Any]:
        return dict((self.scenario.get("audio") or {}).get(direction) or {})

    def call_between(self, a: str, b: str) -> str | None:
        """The alias of the call whose two ends are parties ``a`` and ``b``."""
        for alias, c in self.calls.items():
            if {c.get("caller"), c.get("callee")} == {a, b}:
                return alias
        return None

    @property
    def parties(self) -> list[str]:
        arts = self.scenario.get("artifacts") or {}
        return [k.split(":", 1)[1] for k in arts if k.startswith("sip_log:")]

    def involved(self) -> list[str]:
        """The parties the check is about (all of them when the check does not say)."""
        n = self.name
        if n.direction:
            return list(n.direction)
        if n.kind == "register" and n.subject:
            return [n.subject]
        call = self.calls.get(n.subject) or {}
        ends = [p for p in (call.get("caller"), call.get("callee")) if p]
        if n.kind == "dtmf" and n.party:
            ends = [n.party, *[p for p in ends if p != n.party]]
        return ends or self.parties

    # ---- files ------------------------------------------------------------------------------------
    def file(self, artifact: str) -> Path | None:
        name = (self.scenario.get("artifacts") or {}).get(artifact)
        if not name or self.scenario_dir is None:
            return None
        return self.scenario_dir / name

    def sip_log(self, party: str) -> list[LoggedMessage]:
        if party not in self.log_cache:
            path = self.file(f"sip_log:{party}")
            self.log_cache[party] = parsed_messages(path) if path is not None else []
        return self.log_cache[party]

    def sdp(self, party: str, direction: str, call_id: str = "") -> SdpMedia | None:
        """The last audio SDP ``party`` sent (TX) or received (RX) in the call ``call_id`` (any call if
        that Call-ID is not in its log, as behind a B2BUA that changes it)."""
        msgs = [m for m in self.sip_log(party) if m.direction == direction and m.msg.body.strip()]
        same = [m for m in msgs if call_id and m.msg.call_id == call_id]
        for m in reversed(same or msgs):
            media = first_audio(m.msg.body)
            if media is not None:
                return media
        return None

    def responses(self, party: str, method: str) -> list[LoggedMessage]:
        """Responses ``party`` received to its ``method`` requests, in order."""
        return [m for m in self.sip_log(party)
                if m.direction == "RX" and m.msg.is_response and m.msg.cseq[1] == method]

    def requests(self, party: str, method: str, direction: str = "TX") -> list[LoggedMessage]:
        return [m for m in self.sip_log(party) if m.direction == direction and m.msg.method == method]


def summary_line(lm: LoggedMessage) -> str:
    """One line for evidence: time, direction, start line, peer. Never a header value (no secrets)."""
    m = lm.msg
    start = f"SIP/2.0 {m.status} {m.reason}" if m.is_response else f"{m.method} {m.uri}"
    arrow = "->" if lm.direction == "TX" else "<-"
    return f"{lm.time} {arrow} {start} ({m.cseq[1] or '?'}, {'to' if lm.direction == 'TX' else 'from'} {lm.peer})"


def is_private(address: str) -> bool:
    """An address a peer elsewhere cannot send to: RFC 1918, CGNAT, link-local, unspecified."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_unspecified or any(ip in net for net in _UNROUTED if net.version == ip.version)


def collect_evidence(clues: Clues) -> dict[str, Any]:
    """The evidence a finding keeps: files (relative to ``scenario_dir``), metrics, SIP summary."""
    sc = clues.scenario
    n = clues.name
    parties = clues.involved()
    arts = sc.get("artifacts") or {}
    files = {k: v for k, v in arts.items()
             if any(k.endswith(":" + p) or f"{p}->" in k or f"->{p}" in k for p in parties) or not parties}
    metrics: dict[str, Any] = {"check": {k: clues.check.get(k) for k in
                                         ("name", "verdict", "value", "threshold", "unit", "op", "detail", "metrics")}}
    aliases = [a for a, c in clues.calls.items() if {c.get("caller"), c.get("callee")} & set(parties)]
    if n.kind == "register":
        metrics["registration"] = clues.registrations.get(n.subject)
    if aliases:
        metrics["calls"] = {a: clues.calls[a] for a in aliases}
        metrics["rtp"] = {a: (sc.get("rtp") or {}).get(a) for a in aliases if (sc.get("rtp") or {}).get(a)}
    if n.direction:
        audio = clues.audio(n.audio_key)
        if audio:
            metrics["audio"] = {k: v for k, v in audio.items() if k not in _AUDIO_SUMMARY_DROP}
            if isinstance(metrics["audio"].get("dropouts"), list):
                metrics["audio"]["dropouts"] = metrics["audio"]["dropouts"][:20]
    sip: dict[str, list[str]] = {}
    key_message = ""
    for p in parties:
        msgs = clues.sip_log(p)
        if not msgs:
            continue
        wanted = [m for m in msgs if (n.kind == "register") == (m.msg.cseq[1] == "REGISTER")] or msgs
        sip[p] = [summary_line(m) for m in wanted[-MAX_SIP_LINES:]]
        final = [m for m in wanted if m.direction == "RX" and m.msg.is_response and m.msg.status >= 300
                 and m.msg.status not in (401, 407)] or \
                [m for m in wanted if m.direction == "RX" and m.msg.is_response and m.msg.status >= 300]
        if final and not key_message:
            key_message = f"{p} received:\n{mask_credentials(final[-1].text)}"
    out: dict[str, Any] = {"run_dir": str(clues.scenario_dir) if clues.scenario_dir else "", "files": files,
                           "metrics": metrics, "sip": sip}
    if key_message:
        out["key_message"] = key_message
    if sc.get("error"):
        out["error"] = {k: v for k, v in sc["error"].items() if k != "log_tail"}
    return out
