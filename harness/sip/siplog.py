"""The SIP messages in a party's pjsua log, and credential masking for everything kept as evidence.

pjsua (log level 4, ``msgLogging``) writes every message it sends or receives as::

    08:41:49.827  pjsua_core.c  ....TX 962 bytes Request msg INVITE/cseq=24440 (tdta0x..) to UDP 127.0.0.1:39060:
    INVITE sip:2001@lab.local SIP/2.0
    ...
    --end msg--

:func:`read_messages` turns that into :class:`SipLogEntry` items; :func:`mask_credentials` blanks the
secret parts of Authorization and Proxy-Authorization headers (the digest response and client nonce),
so logs and reports never carry material to attack a password with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SipLogEntry", "mask_credentials", "mask_file", "read_messages", "write_call_log"]

_HEAD = re.compile(r"^(\d\d):(\d\d):(\d\d)\.(\d{3})\s+\S+\s+[.!]*(TX|RX) (\d+) bytes (Request|Response) msg "
                   r"(\S+) \(\S+\) (to|from) (\w+) ([^\s]+):\s*$")
_SECRET = re.compile(r'(?i)((?:response|cnonce)\s*=\s*)("[^"]*"|[^,\s]+)')
_AUTH_HEADER = re.compile(r"(?im)^((?:proxy-)?authorization\s*:.*)$")


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


def mask_credentials(text: str) -> str:
    """Blank the digest response and client nonce in (Proxy-)Authorization headers."""
    return _AUTH_HEADER.sub(lambda m: _SECRET.sub(lambda s: s.group(1) + '"***"', m.group(1)), text)


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
        i += 1
        hh, mm, ss, ms = (int(m.group(k)) for k in (1, 2, 3, 4))
        out.append(SipLogEntry(party=party, clock=f"{m.group(1)}:{m.group(2)}:{m.group(3)}.{m.group(4)}",
                               seconds=hh * 3600 + mm * 60 + ss + ms / 1000.0, direction=m.group(5),
                               peer=f"{m.group(10)} {m.group(11)}", summary=m.group(8),
                               text=mask_credentials("\n".join(body).strip("\n"))))
    return out


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
