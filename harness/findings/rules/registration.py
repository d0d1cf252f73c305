"""The rule for a registration the PBX lost (a restart that emptied its location table) or let expire
(never refreshed): a 404/480 for a callee that had registered. Timing comes from the parties' SIP logs
(the scenario's checks have none): a call checked before an event was placed before it."""

from __future__ import annotations

import re
from typing import Any

from harness.contracts.siplog import LoggedMessage
from harness.findings.evidence import CheckView, Clues, summary_line
from harness.findings.finding_model import Diagnosis
from harness.findings.rules import found, rule

__all__: list[str] = []  # reached through the registry


def _since(t: float, anchor: float) -> float:
    return (t - anchor) % 86400.0  # log clocks wrap at midnight; a scenario never lasts half a day


def _not_after(a: float, b: float) -> bool:
    """Log time ``a`` is at or before ``b``."""
    return _since(b, a) < 43200.0


def _call_times(c: Clues, checks: list[dict[str, Any]]) -> list[tuple[float, LoggedMessage]]:
    """The first INVITE of each call whose outcome check (kind ``call`` and the call alone: ``call:<alias>``) is among
    ``checks``: a call checked before a step ran was placed before it, so its INVITE pins that moment in the
    logs' time. Checks without an ``id`` pin nothing (their names are not taken apart)."""
    views = [CheckView.of(chk) for chk in checks]
    return [t for v in views if v.id is not None and v.kind == "call" and len(v.id.parts()) == 2
            and (t := _invite(c, v.subject)) is not None]


def _invite(c: Clues, alias: str) -> tuple[float, LoggedMessage] | None:
    """When the caller of call ``alias`` sent its first INVITE, from its SIP log."""
    call = c.calls.get(alias) or {}
    call_id = str(call.get("sip_call_id") or "")
    for m in c.requests(str(call.get("caller") or ""), "INVITE"):
        if call_id and m.msg.call_id == call_id:
            return m.seconds, m
    return None


def _expires(msg: LoggedMessage) -> int | None:
    """The expiry a REGISTER asked for, or its 200 OK granted (Contact ;expires= first, then Expires)."""
    contact = re.search(r";\s*expires\s*=\s*(\d+)", msg.msg.header("Contact"), re.IGNORECASE)
    raw = contact.group(1) if contact else msg.msg.header("Expires").strip()
    return int(raw) if raw.isdigit() else None


def _bindings(c: Clues, party: str) -> list[tuple[float, LoggedMessage]]:
    """(time, 200 OK) of every REGISTER of ``party`` that bound a contact (not the un-REGISTERs, expires 0)."""
    msgs = c.sip_log(party)
    unregister = {(m.msg.call_id, m.msg.cseq[0]) for m in msgs
                  if m.direction == "TX" and m.msg.method == "REGISTER" and _expires(m) == 0}
    out = []
    for m in c.responses(party, "REGISTER"):
        if m.msg.status == 200 and (m.msg.call_id, m.msg.cseq[0]) not in unregister:
            out.append((m.seconds, m))
    return out


def _answer(c: Clues, alias: str, code: int) -> str:
    call = c.calls.get(alias) or {}
    call_id = str(call.get("sip_call_id") or "")
    got = [m for m in c.responses(str(call.get("caller") or ""), "INVITE")
           if m.msg.status == code and (not call_id or m.msg.call_id == call_id)]
    return summary_line(got[-1]) if got else ""


@rule("registration_lost", kinds=("call",), order=28)
def registration_lost(c: Clues) -> Diagnosis | None:
    """A 404/480 for a callee that had registered (200) earlier in the scenario, and whose registration
    the PBX lost since: a PBX restart that emptied its location table, or a registration that was never
    refreshed and expired. Timing comes from the parties' SIP logs (the scenario's checks have none):
    a call checked before an event was placed before it."""
    code, n = c.code, c.name
    call = c.calls.get(n.subject) or {}
    callee = str(call.get("callee") or "")
    if code not in (404, 480) or n.part or not callee:
        return None
    earlier = c.earlier_checks()
    failed = _invite(c, n.subject)
    restart = next((i for i in range(len(earlier) - 1, -1, -1) if earlier[i].get("name") == "fault:kamailio"
                    and earlier[i].get("verdict") == "PASS" and earlier[i].get("value") in ("restart", "start")),
                   None)
    if restart is not None:
        return _lost_in_restart(c, code, callee, earlier, restart, failed)
    reg = next((chk for chk in reversed(earlier) if chk.get("name") == f"register:{callee}"
                and chk.get("verdict") == "PASS" and isinstance((chk.get("metrics") or {}).get("expires"), int)),
               None)
    return _expired(c, code, callee, earlier, reg, failed) if reg is not None and failed is not None else None


def _lost_in_restart(c: Clues, code: int, callee: str, earlier: list[dict[str, Any]], restart: int,
                     failed: tuple[float, LoggedMessage] | None) -> Diagnosis | None:
    uri = str((c.calls.get(c.name.subject) or {}).get("uri") or callee)
    before = earlier[:restart]
    registered = (c.registrations.get(callee) or {}).get("code") == 200 or any(
        chk.get("name") == f"register:{callee}" and chk.get("verdict") == "PASS" for chk in before)
    if not registered:
        return None
    anchors = _call_times(c, before)  # their INVITEs were sent before the restart
    bindings = [(t, m) for t, m in _bindings(c, callee) if failed is None or _not_after(t, failed[0])]
    granted = _expires(bindings[-1][1]) if bindings else None
    facts = [f"{callee} registered: {summary_line(bindings[-1][1])}" if bindings else "",
             f"the PBX granted that registration {granted} s: {callee} would refresh it only near its end"
             if granted else "",
             f"fault:kamailio: {earlier[restart].get('detail')}", _answer(c, c.name.subject, code)]
    fix = ("keep registrations across a PBX restart: persistent location storage (kamailio: usrloc db_mode with a "
           "database; other PBXs keep contacts in their database) or a standby that shares it; or make phones "
           "register again soon: a shorter registration expiry, or a re-register prompted after the restart "
           "(a NOTIFY check-sync, a reboot of the phones)")
    anchor = anchors[-1][0] if anchors else None
    if not bindings or anchor is None or failed is None:
        return found(f"{code}: the PBX restart probably emptied its location table: {callee} registered (200) "
                     f"before the restart and the PBX had no contact for {uri} after it (the SIP logs do not show "
                     "whether it registered again)", fix, *facts, confidence="possible")
    again = [m for t, m in bindings if not _not_after(t, anchor)]
    if again:
        return found(f"{code}: the PBX restart may have emptied its location table, but {callee} registered again "
                     f"(200) between a call placed before the restart and this one, perhaps before the restart: "
                     f"{summary_line(again[-1])}", fix, *facts, confidence="possible")
    return found(f"{code}: the PBX restart emptied its location table: {callee} registered (200) before the restart "
                 f"and did not register again, so the PBX had no contact for {uri}", fix, *facts)


def _expired(c: Clues, code: int, callee: str, earlier: list[dict[str, Any]], reg: dict[str, Any],
             failed: tuple[float, LoggedMessage]) -> Diagnosis | None:
    uri = str((c.calls.get(c.name.subject) or {}).get("uri") or callee)
    expires = int(reg["metrics"]["expires"])
    anchors = _call_times(c, earlier[next(i for i, chk in enumerate(earlier) if chk is reg) + 1:])
    if not anchors:
        return None
    anchor = anchors[0]  # the first call placed after the REGISTER: the registration is older than its INVITE
    elapsed = _since(failed[0], anchor[0])
    refreshed = [m for t, m in _bindings(c, callee) if _since(t, anchor[0]) < elapsed]
    if elapsed < expires or refreshed:
        return None  # still registered by the clock, or renewed: the 404 is something else
    return found(f"{code}: {callee}'s registration expired: it registered (200) for {expires} s and never "
                 f"refreshed it, and this call came at least {elapsed:.1f} s later, so nobody is registered for "
                 f"{uri} any more", f"find why {callee}'s phone stopped refreshing its registration (power, network, "
                 "a NAT or firewall that blocks the refresh, a re-register interval longer than the expiry the PBX "
                 "grants); a phone must register again before its registration runs out",
                 f"register:{callee}: {reg.get('detail')}", f"the first call after it: {summary_line(anchor[1])}",
                 _answer(c, c.name.subject, code))
