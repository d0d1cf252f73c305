"""Read a party's SIP message log (``<party>.sip.log``, pjsua log level 4) back into messages.

pjsua writes every message it sends or receives in full between a header line and ``--end msg--``::

    08:33:40.365  pjsua_core.c  ....TX 961 bytes Request msg INVITE/cseq=29795 (tdta0x..) to UDP 127.0.0.1:42060:
    INVITE sip:2001@lab.local SIP/2.0
    ...
    --end msg--

The rules read the facts they need from here: REGISTER answers, INVITE outcomes, the SDP each side
offered and answered, REFER answers and NOTIFY sipfrags. The log is read by
:func:`harness.contracts.siplog.read_messages` and masked by its :func:`mask_credentials` (re-exported here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.contracts.siplog import mask_credentials, read_messages
from harness.contracts.sipmsg import SipMessage, SipParseError, parse

__all__ = ["LoggedMessage", "SdpMedia", "mask_credentials", "read_sip_log", "sdp_media", "summary_line"]



@dataclass(frozen=True)
class LoggedMessage:
    time: str
    seconds: float  #: ``time`` as seconds since midnight (the log reader's, for comparing times)
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
    """Every complete message in the log (credentials masked); what cannot be parsed is skipped."""
    out: list[LoggedMessage] = []
    for entry in read_messages(path, path.stem):
        try:
            msg = parse(entry.text.encode())
        except SipParseError:
            continue
        out.append(LoggedMessage(entry.clock, entry.seconds, entry.direction, entry.peer.split(" ", 1)[-1], msg,
                                 entry.text))
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


def summary_line(lm: LoggedMessage) -> str:
    """One line for evidence: time, direction, start line, peer. Never a header value (no secrets)."""
    m = lm.msg
    start = f"SIP/2.0 {m.status} {m.reason}" if m.is_response else f"{m.method} {m.uri}"
    arrow = "->" if lm.direction == "TX" else "<-"
    return f"{lm.time} {arrow} {start} ({m.cseq[1] or '?'}, {'to' if lm.direction == 'TX' else 'from'} {lm.peer})"
