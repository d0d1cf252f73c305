"""Read a party's SIP message log (``<party>.sip.log``, pjsua log level 4) back into messages.

pjsua writes every message it sends or receives in full between a header line and ``--end msg--``::

    08:33:40.365  pjsua_core.c  ....TX 961 bytes Request msg INVITE/cseq=29795 (tdta0x..) to UDP 127.0.0.1:42060:
    INVITE sip:2001@lab.local SIP/2.0
    ...
    --end msg--

The rules read the facts they need from here: REGISTER answers, INVITE outcomes, the SDP each side
offered and answered, REFER answers and NOTIFY sipfrags. Credentials never leave this module in
clear: :func:`mask_credentials` blanks Authorization headers in anything kept as evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from harness.sipmsg import SipMessage, SipParseError, parse

__all__ = ["LoggedMessage", "SdpMedia", "mask_credentials", "read_sip_log", "sdp_media", "summary_line"]

_HEAD = re.compile(r"^(?P<time>\d\d:\d\d:\d\d\.\d+)\s.*?\b(?P<dir>TX|RX) \d+ bytes (?:Request|Response) msg \S+"
                   r".*?\b(?:to|from) (?P<transport>[A-Za-z0-9]+) (?P<peer>\S+?):?\s*$")
_END = "--end msg--"
_AUTH = re.compile(r"^((?:Proxy-)?Authorization\s*:\s*)(\S+)?.*$", re.IGNORECASE | re.MULTILINE)
MAX_LOG_BYTES = 8 * 1024 * 1024  #: a longer log is read from its start only (a soak run's party)


@dataclass(frozen=True)
class LoggedMessage:
    time: str
    direction: str  #: TX (the party sent it) | RX (the party received it)
    peer: str  #: address it went to / came from
    msg: SipMessage
    text: str = field(repr=False)

    @property
    def label(self) -> str:
        m = self.msg
        return f"{m.status} {m.reason} ({m.cseq[1]})" if m.is_response else m.method


@dataclass(frozen=True)
class SdpMedia:
    """The audio stream an SDP describes: where its sender wants to receive RTP, and how."""

    address: str
    port: int
    direction: str  #: sendrecv | sendonly | recvonly | inactive
    codecs: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.address}:{self.port} ({self.direction}, {' '.join(self.codecs) or 'no codecs'})"


def read_sip_log(path: Path) -> list[LoggedMessage]:
    """Every complete message in the log; unreadable files and torn messages give what could be read."""
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_LOG_BYTES)
    except OSError:
        return []
    out: list[LoggedMessage] = []
    head: re.Match[str] | None = None
    body: list[str] = []
    for line in raw.decode("utf-8", "replace").splitlines():
        if head is None:
            head = _HEAD.match(line)
            body = []
            continue
        if line.strip() == _END:
            text = "\n".join(body).strip("\n")
            try:
                msg = parse(text.encode())
            except SipParseError:
                msg = None
            if msg is not None:
                out.append(LoggedMessage(head["time"], head["dir"], head["peer"], msg, text))
            head = None
            continue
        body.append(line)
    return out


def sdp_media(body: bytes) -> SdpMedia | None:
    """The first audio stream of an SDP body, or None when there is none."""
    text = body.decode("utf-8", "replace")
    session_addr, media_addr, port, direction, codecs = "", "", -1, "sendrecv", []
    in_audio = seen_audio = False
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("m="):
            if seen_audio:
                break
            in_audio = line.startswith("m=audio ")
            if in_audio:
                seen_audio = True
                parts = line.split()
                try:
                    port = int(parts[1].split("/")[0])
                except (IndexError, ValueError):
                    port = -1
        elif line.startswith("c="):
            addr = line.split()[-1].split("/")[0] if len(line.split()) >= 3 else ""
            if in_audio:
                media_addr = addr
            elif not seen_audio:
                session_addr = addr
        elif line[2:] in ("sendrecv", "sendonly", "recvonly", "inactive") and line.startswith("a=") \
                and (in_audio or not seen_audio):
            direction = line[2:]
        elif line.startswith("a=rtpmap:") and in_audio:
            codecs.append(line.split()[-1].split("/")[0])
    if not seen_audio:
        return None
    return SdpMedia(media_addr or session_addr, port, direction, tuple(c for c in codecs if c != "telephone-event"))


def mask_credentials(text: str) -> str:
    """Authorization and Proxy-Authorization header values replaced by ``<masked>`` (scheme kept)."""
    return _AUTH.sub(lambda m: f"{m.group(1)}{(m.group(2) or '') + ' ' if m.group(2) else ''}<masked>", text)


def summary_line(lm: LoggedMessage) -> str:
    """One line for evidence: time, direction, start line, peer. Never a header value (no secrets)."""
    m = lm.msg
    start = f"SIP/2.0 {m.status} {m.reason}" if m.is_response else f"{m.method} {m.uri}"
    arrow = "->" if lm.direction == "TX" else "<-"
    return f"{lm.time} {arrow} {start} ({m.cseq[1] or '?'}, {'to' if lm.direction == 'TX' else 'from'} {lm.peer})"
