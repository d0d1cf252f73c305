"""The one SDP parser: each media section with its address, port, protocol, payloads, codecs, direction
and SDES keys, as the probes, the load engine, the findings and the recording reader need them::

    >>> (m,) = parse_sdp(b"v=0\\r\\nc=IN IP4 10.0.0.5\\r\\nm=audio 4000 RTP/SAVP 0 101\\r\\n"
    ...                  b"a=rtpmap:0 PCMU/8000\\r\\na=rtpmap:101 telephone-event/8000\\r\\na=sendonly\\r\\n"
    ...                  b"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc\\r\\n")
    >>> m.address, m.port, m.payloads, m.codecs, m.direction, m.srtp
    ('10.0.0.5', 4000, (0, 101), ('PCMU',), 'sendonly', True)

A line that cannot be read is skipped, never an error: SDP comes from the system under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SdpMedia", "first_audio", "parse_sdp"]

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass(frozen=True)
class SdpMedia:
    """One ``m=`` section."""

    kind: str  #: audio, video, ...
    port: int  #: 0: the stream was refused
    proto: str  #: RTP/AVP, RTP/SAVP, UDP/TLS/RTP/SAVPF, ...
    payloads: tuple[int, ...] = ()
    address: str = ""  #: the section's c= address, else the session's ("" when neither says)
    direction: str = "sendrecv"  #: the section's a=sendrecv/sendonly/recvonly/inactive, else the session's
    rtpmap: tuple[tuple[int, str], ...] = ()  #: (payload type, encoding name) from a=rtpmap
    crypto_suites: tuple[str, ...] = ()  #: SDES a=crypto suites

    @property
    def codecs(self) -> tuple[str, ...]:
        """Encoding names in payload order (static G.711 types named without an rtpmap), DTMF events left out."""
        names = dict(self.rtpmap)
        out = []
        for pt in self.payloads:
            name = names.get(pt) or _STATIC.get(pt)
            if name and name.lower() != "telephone-event":
                out.append(name)
        return tuple(out)

    @property
    def srtp(self) -> bool:
        """SDES-keyed SRTP (RTP/SAVP or RTP/SAVPF with a=crypto), accepted (port not 0)."""
        return self.port != 0 and "SAVP" in self.proto.upper() and bool(self.crypto_suites)

    @property
    def dtls(self) -> bool:
        return self.port != 0 and "TLS" in self.proto.upper()

    @property
    def connectable(self) -> str | None:
        """The address to send RTP to, or None when the SDP gives none (or the null address)."""
        return None if self.address in ("", "0.0.0.0", "::") else self.address

    def __str__(self) -> str:
        return f"{self.address}:{self.port} ({self.direction}, {' '.join(self.codecs) or 'no codecs'})"


_STATIC = {0: "PCMU", 3: "GSM", 8: "PCMA", 9: "G722", 18: "G729"}


@dataclass
class _Section:
    kind: str
    port: int
    proto: str
    payloads: tuple[int, ...]
    address: str = ""
    direction: str = ""
    rtpmap: list[tuple[int, str]] = field(default_factory=list)
    crypto: list[str] = field(default_factory=list)


def parse_sdp(body: bytes | str) -> list[SdpMedia]:
    """Every media section of an SDP body, in order."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    session_addr, session_dir = "", "sendrecv"
    sections: list[_Section] = []
    cur: _Section | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if len(line) < 2 or line[1] != "=":
            continue
        key, value = line[0], line[2:]
        if key == "m":
            parts = value.split()
            try:
                port = int(parts[1].split("/")[0])
            except (IndexError, ValueError):
                cur = None  # an unreadable m= line: its attributes go nowhere
                continue
            cur = _Section(parts[0], port, parts[2] if len(parts) > 2 else "",
                           tuple(int(p) for p in parts[3:] if p.isdigit()))
            sections.append(cur)
        elif key == "c":
            parts = value.split()
            addr = parts[2].split("/")[0] if len(parts) >= 3 else ""
            if cur is not None:
                cur.address = addr
            elif not sections:
                session_addr = addr
        elif key == "a":
            if value in DIRECTIONS:
                if cur is not None:
                    cur.direction = value
                elif not sections:
                    session_dir = value
            elif cur is not None and value.startswith("rtpmap:"):
                head, _, enc = value[7:].partition(" ")
                if head.isdigit() and enc:
                    cur.rtpmap.append((int(head), enc.split("/")[0]))
            elif cur is not None and value.startswith("crypto:") and len(value.split()) > 1:
                cur.crypto.append(value.split()[1])
    return [SdpMedia(s.kind, s.port, s.proto, s.payloads, s.address or session_addr, s.direction or session_dir,
                     tuple(s.rtpmap), tuple(s.crypto)) for s in sections]


def first_audio(body: bytes | str) -> SdpMedia | None:
    """The first audio section, or None when there is none."""
    return next((m for m in parse_sdp(body) if m.kind == "audio"), None)
