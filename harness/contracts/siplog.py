"""The SIP messages in a party's pjsua log, and credential masking for everything kept as evidence.

pjsua (log level 4, ``msgLogging``) writes every message it sends or receives as::

    08:41:49.827  pjsua_core.c  ....TX 962 bytes Request msg INVITE/cseq=24440 (tdta0x..) to UDP 127.0.0.1:39060:
    INVITE sip:2001@lab.local SIP/2.0
    ...
    --end msg--

:func:`read_messages` turns that into :class:`SipLogEntry` items (the one reader of these logs: the
report's ladder and the findings' evidence build on it); :func:`parsed_messages` gives the same entries
as parsed :class:`~harness.contracts.sipmsg.SipMessage` (:class:`LoggedMessage`), and
:func:`published_address` the party's own address as pjsua logs it. :func:`mask_credentials` is the one masker
of everything kept as evidence: the ``response``, ``nonce``, ``cnonce``, ``opaque``, ``nextnonce`` and
``rspauth`` values of Authorization, Proxy-Authorization, WWW-Authenticate, Proxy-Authenticate and
Authentication-Info; Basic credentials; SDES ``inline:`` SRTP keys and MIKEY ``key-mgmt`` data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.contracts.sipmsg import SipMessage, SipParseError, parse

__all__ = ["LoggedMessage", "SipLogEntry", "mask_credentials", "mask_file", "parsed_messages", "published_address",
           "read_messages", "write_call_log"]

_HEAD = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3})\s+\S+\s+[.!]*(TX|RX) (\d+) bytes (Request|Response) msg "
                   r"(\S+) \(\S+\) (to|from) (\w+) ([^\s]+):\s*$")
MASK = "***"
_LOOSE_DIGEST = re.compile(r'\b(response|cnonce)\s*=\s*("[^"]*"|[^,\s]+)', re.IGNORECASE)
_AUTH_HEADERS = re.compile(r"^(authorization|proxy-authorization|www-authenticate|proxy-authenticate"
                           r"|authentication-info)\s*:(.*)$", re.IGNORECASE)
_AUTH_PARAMS = re.compile(r'\b(response|nonce|cnonce|opaque|nextnonce|rspauth)(\s*=\s*)("(?:[^"\\]|\\.)*"?|[^,\s]+)',
                          re.IGNORECASE)
_BASIC = re.compile(r"^(\s*basic\s+)\S+", re.IGNORECASE)
_CRYPTO = re.compile(r"(inline:)[^\s|;]+", re.IGNORECASE)
_MIKEY = re.compile(r"^(a=key-mgmt:\s*\S+\s+)\S+", re.IGNORECASE)
#: pjsua names the party's own address once: ``SIP UDP transport started, published address is 127.0.0.1:32916``
_PUBLISHED = re.compile(r"published address is (\S+?)\s*$", re.MULTILINE)
_REACHABLE = re.compile(r"SIP \w+ socket reachable at (\S+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class SipLogEntry:
    party: str
    clock: str  #: HH:MM:SS.mmm as logged
    seconds: float  #: seconds since midnight, for ordering
    direction: str  #: TX or RX
    peer: str  #: transport and address it went to / came from
    summary: str  #: pjsua's one-word summary, e.g. INVITE/cseq=1 or 200/INVITE/cseq=1
    text: str  #: the message, credentials masked

    @property
    def call_id(self) -> str:
        m = re.search(r"(?im)^(?:call-id|i)\s*:\s*(\S+)", self.text)
        return m.group(1) if m else ""

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()


@dataclass(frozen=True)
class LoggedMessage:
    """A :class:`SipLogEntry` with its message parsed."""

    time: str  #: HH:MM:SS.mmm as logged
    seconds: float  #: ``time`` as seconds since midnight (for comparing times)
    direction: str  #: TX (the party sent it) | RX (the party received it)
    peer: str  #: address it went to / came from (without the transport)
    msg: SipMessage
    text: str = field(repr=False)  #: the message, credentials masked

    @property
    def label(self) -> str:
        m = self.msg
        return f"{m.status} {m.reason} ({m.cseq[1]})" if m.is_response else m.method


def mask_credentials(text: str, secrets: Iterable[str] = ()) -> str:
    """The SIP text with authentication secrets and SRTP keys replaced by ``***``: the digest values of the
    authentication headers, Basic credentials, SDES ``inline:`` keys and MIKEY data, a digest ``response``
    or ``cnonce`` wherever it stands (a malformed probe may put it anywhere), and any of ``secrets`` (the
    profile's passwords) wherever they appear. The one masker of everything kept as evidence."""
    for secret in sorted({x for x in secrets if x}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    out = []
    for line in text.split("\n"):
        cr = "\r" if line.endswith("\r") else ""
        body = line[:-1] if cr else line
        m = _AUTH_HEADERS.match(body)
        if m:
            value = _BASIC.sub(lambda b: b.group(1) + MASK, m.group(2))
            value = _AUTH_PARAMS.sub(lambda p: f'{p.group(1)}{p.group(2)}"{MASK}"', value)
            body = body[: m.start(2)] + value
        elif body[:2].lower() == "a=":
            body = _MIKEY.sub(lambda k: k.group(1) + MASK, _CRYPTO.sub(lambda k: k.group(1) + MASK, body))
        else:
            body = _LOOSE_DIGEST.sub(lambda p: f'{p.group(1)}="{MASK}"', body)
        out.append(body + cr)
    return "\n".join(out)


def read_messages(path: Path, party: str) -> list[SipLogEntry]:
    """Every SIP message in one pjsua log, in log order. A missing file gives none."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    out: list[SipLogEntry] = []
    i = 0
    while i < len(lines):
        m = _HEAD.match(lines[i])
        i += 1
        if not m:
            continue
        body: list[str] = []
        while i < len(lines) and lines[i] != "--end msg--":
            body.append(lines[i])
            i += 1
        if i >= len(lines):
            break  # torn at the end (the party died mid-write): not a message
        i += 1
        hh, mm, ss, ms = (int(m.group(k)) for k in (1, 2, 3, 4))
        out.append(SipLogEntry(party=party, clock=f"{m.group(1)}:{m.group(2)}:{m.group(3)}.{m.group(4)}",
                               seconds=hh * 3600 + mm * 60 + ss + ms / 1000.0, direction=m.group(5),
                               peer=f"{m.group(10)} {m.group(11)}", summary=m.group(8),
                               text=mask_credentials("\n".join(body).strip("\n"))))
    return out


def parsed_messages(path: Path) -> list[LoggedMessage]:
    """Every message of :func:`read_messages`, parsed; what cannot be parsed as SIP is left out."""
    out: list[LoggedMessage] = []
    for entry in read_messages(path, path.stem):
        try:
            msg = parse(entry.text.encode())
        except SipParseError:
            continue
        out.append(LoggedMessage(entry.clock, entry.seconds, entry.direction, entry.peer.split(" ", 1)[-1], msg,
                                 entry.text))
    return out


def published_address(path: Path) -> str:
    """The party's own ``host:port`` as its pjsua log names it ("" when it does not, or there is no log)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    m = _PUBLISHED.search(text) or _REACHABLE.search(text)
    return m.group(1) if m else ""


def mask_file(path: Path) -> None:
    """Mask credentials in a log file in place (after its writer has exited)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    masked = mask_credentials(text)
    if masked != text:
        path.write_text(masked, encoding="utf-8")


def write_call_log(entries: list[SipLogEntry], call_ids: set[str], dest: Path) -> int:
    """The messages of the given Call-IDs, from every party's log, in time order. Returns how many."""
    chosen = sorted((e for e in entries if e.call_id in call_ids), key=lambda e: (e.seconds, e.party))
    with dest.open("w", encoding="utf-8") as fh:
        for e in chosen:
            arrow = "->" if e.direction == "TX" else "<-"
            fh.write(f"{e.clock} {e.party} {e.direction} {arrow} {e.peer}\n{e.text}\n\n")
    return len(chosen)
