"""Rules for transfers: a REFER the far end rejected, or a transfer the NOTIFYs never completed.

The transfer checks are named ``transfer:<call>:<part>`` (notify, time, released, outcome, recovered);
the facts come from the parties' SIP logs: the answer to the REFER and the NOTIFY sipfrag status lines.
"""

from __future__ import annotations

import re

from harness.contracts.siplog import LoggedMessage
from harness.findings.evidence import Clues, summary_line
from harness.findings.finding_model import Diagnosis
from harness.findings.rules import found, rule

__all__: list[str] = []  # reached through the registry

_SIPFRAG = re.compile(r"SIP/2\.0\s+(\d{3})\s*([^\r\n]*)")


def _refer_answers(c: Clues) -> list[LoggedMessage]:
    return [m for p in c.parties for m in c.responses(p, "REFER")]


def _notify_status(c: Clues) -> list[tuple[int, str, LoggedMessage]]:
    """(code, reason, message) of every sipfrag a transferor received in a NOTIFY."""
    out = []
    for p in c.parties:
        for m in c.requests(p, "NOTIFY", direction="RX"):
            frag = _SIPFRAG.search(m.msg.body.decode("utf-8", "replace"))
            if frag:
                out.append((int(frag.group(1)), frag.group(2).strip(), m))
    return out


@rule("transfer_failed", kinds=("transfer", "refer*", "xfer*"), order=10)
def transfer_failed(c: Clues) -> Diagnosis | None:
    part, value = c.name.part, c.value
    answers = [m for m in _refer_answers(c) if m.msg.status >= 200]
    rejected = [m for m in answers if m.msg.status >= 300 and m.msg.status not in (401, 407)]
    notifies = _notify_status(c)
    facts = [summary_line(m) for m in answers[-2:]] + [f"NOTIFY sipfrag: {code} {reason}" for code, reason, _ in
                                                        notifies[-3:]]
    if part == "time":
        return found(f"the transfer took {value} ms (limit {c.check.get('threshold')} ms) from REFER to the "
                     "transferred call being answered: the target answered late, or the PBX was slow to place the "
                     "new call", "look at the new call's setup in the transferee's SIP log", *facts)
    if part == "recovered":
        return found("the caller lost the call when the transfer failed: the transferee or the PBX ended the "
                     "original call instead of keeping it (no transfer recall)",
                     "configure the PBX/phones to keep or recall the original call when a transfer fails", *facts)
    if part == "outcome":
        return found(f"the transfer was expected to fail ({c.check.get('threshold')}) but ended with {value}: the "
                     "state the scenario relies on (a busy or silent target, REFER refused) was not there",
                     "check the transfer target's state before the transfer", *facts, confidence="possible")
    if rejected:
        m = rejected[-1].msg
        return found(f"the REFER was rejected with {m.status} {m.reason}: the transferee or the PBX does not allow "
                     "this transfer (transfers disabled for the account, REFER not supported, or the party refused it)",
                     "allow transfers for the account on the PBX (or its phone), or use the PBX's own transfer "
                     "feature code if it does not pass REFER through", *facts)
    finals = [code for code, _, _ in notifies if code >= 200]
    code = c.code or (finals[-1] if finals else None)
    if code is not None and code >= 300:
        reason = next((r for k, r, _ in reversed(notifies) if k == code), "")
        return found(f"the REFER was accepted, but the transfer target answered {code} {reason} (reported in the "
                     "NOTIFY): the transfer did not complete".replace("  ", " "),
                     "make the transfer target reachable and free (registered, not busy), or check the number the "
                     "transferor referred to", *facts)
    if part == "released":
        return found(f"the transfer left calls up that should have ended ({c.check.get('detail')}): the transferor "
                     "or the transferee did not release its old leg after the final NOTIFY",
                     "check the BYE of the old legs in the SIP logs; phones must hang up after NOTIFY 200", *facts)
    if answers or part == "notify":
        return found("the REFER was accepted but no final NOTIFY came: the transfer was never completed (the new "
                     "call did not reach a final answer, or the PBX does not relay NOTIFY)",
                     "check the new call from the transferee to the target in its SIP log, and that the PBX "
                     "relays in-dialog NOTIFY requests", *facts)
    return found("no answer to a REFER appears in the SIP logs: the REFER was not sent or not relayed",
                 "check that the transferor's REFER leaves the phone and that the PBX routes in-dialog REFER",
                 *facts, confidence="possible")
