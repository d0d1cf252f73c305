"""SIP messages of a party's pjsua log (level 4) for the ladder: described, and credentials masked.

The messages are read by :func:`harness.contracts.siplog.read_messages` (the one reader of pjsua's message
log). Added here: the party's own address (pjsua logs it once: ``SIP UDP transport started,
published address is 127.0.0.1:32916``), what each message is (method or status, SDP, Call-ID,
User-Agent/Server, through :mod:`harness.contracts.sipmsg`), and time across midnight (the log has the time
of day only, so each file is unwrapped on its own).

Masked before anything else sees the text (:func:`mask_credentials`): the ``response``, ``nonce``,
``cnonce``, ``opaque``, ``nextnonce`` and ``rspauth`` values of Authorization, Proxy-Authorization,
WWW-Authenticate, Proxy-Authenticate and Authentication-Info; Basic credentials; SDES ``inline:``
SRTP keys and MIKEY ``key-mgmt`` data.
The text stays untrusted (it is whatever the PBX sent) and is escaped where it is shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from harness.contracts.siplog import mask_credentials
from harness.contracts.sipmsg import SipParseError, parse

__all__ = ["SipEvent", "SipLog", "mask_credentials", "read_sip_log"]

_PUBLISHED = re.compile(r"published address is (\S+?)\s*$", re.MULTILINE)
_REACHABLE = re.compile(r"SIP \w+ socket reachable at (\S+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class SipEvent:
    """One SIP message as one party sent (TX) or received (RX) it."""

    t: float  #: seconds since midnight (unwrapped across midnight within one file)
    clock: str  #: the log's time of day, ``HH:MM:SS.mmm``
    party: str
    direction: str  #: ``TX`` or ``RX``
    local: str  #: the party's own address, when the log says it ("" otherwise)
    remote: str  #: the other end's address as pjsua names it, e.g. ``127.0.0.1:5060``
    transport: str
    label: str  #: ``INVITE``, ``200 OK`` ...
    method: str  #: request method, or the CSeq method of a response
    status: int
    call_id: str
    has_sdp: bool
    agent: str  #: User-Agent or Server header ("" when none)
    text: str  #: the whole message, credentials masked


@dataclass
class SipLog:
    party: str
    local: str
    events: list[SipEvent]


def _describe(text: str) -> tuple[str, str, int, str, bool, str]:
    """label, method, status, call id, has SDP, user agent; tolerant of whatever arrived."""
    raw = text.replace("\r\n", "\n")
    try:
        msg = parse(raw.encode("utf-8", "replace"))
    except SipParseError:
        first = raw.split("\n", 1)[0].strip()
        return first[:60] or "(unreadable)", "", 0, "", False, ""
    has_sdp = "application/sdp" in msg.header("Content-Type").lower() and bool(msg.body.strip())
    agent = msg.header("User-Agent") or msg.header("Server")
    if msg.is_response:
        return f"{msg.status} {msg.reason}".strip(), msg.cseq[1], msg.status, msg.call_id, has_sdp, agent
    return msg.method, msg.method, 0, msg.call_id, has_sdp, agent


def read_sip_log(path: Path, party: str) -> SipLog:
    """The messages of one ``<party>.sip.log`` (read by :func:`harness.contracts.siplog.read_messages`), masked
    again here with the fuller rules above, described, and unwrapped across midnight."""
    from harness.contracts.siplog import read_messages

    try:
        head = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return SipLog(party=party, local="", events=[])
    m = _PUBLISHED.search(head) or _REACHABLE.search(head)
    local = m.group(1) if m else ""
    events: list[SipEvent] = []
    offset, last_t = 0.0, -1.0
    for entry in read_messages(path, party):
        t = entry.seconds + offset
        if last_t - t > 43200:  # the clock went back by more than 12 h: midnight passed
            offset += 86400.0
            t += 86400.0
        last_t = t
        transport, _, remote = entry.peer.partition(" ")
        text = mask_credentials(entry.text)
        label, method, status, call_id, has_sdp, agent = _describe(text)
        events.append(SipEvent(t=t, clock=entry.clock, party=party, direction=entry.direction, local=local,
                               remote=remote.strip(), transport=transport, label=label, method=method,
                               status=status, call_id=call_id, has_sdp=has_sdp, agent=agent, text=text))
    return SipLog(party=party, local=local, events=events)
