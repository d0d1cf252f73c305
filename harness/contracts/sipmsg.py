"""SIP messages as text: parse, build, and answer digest challenges (RFC 3261, RFC 2617).

For the places where the harness speaks SIP itself rather than through pjsua2: load generation,
system probes and security probes. Parsing is tolerant (the harness also reads what broken servers
send) but never guesses: a message it cannot read raises :class:`SipParseError`::

    msg = parse(data)
    if msg.is_response and msg.status == 401:
        auth = digest_authorization(msg.header("WWW-Authenticate"), "REGISTER", uri, "1001", password)
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field

__all__ = [
    "SipMessage",
    "SipParseError",
    "build_request",
    "digest_authorization",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse",
    "parse_challenge",
]

COMPACT = {"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
           "c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to", "v": "via",
           "o": "event", "r": "refer-to", "b": "referred-by", "x": "session-expires"}


class SipParseError(ValueError):
    """Bytes that are not a SIP message."""


@dataclass
class SipMessage:
    method: str = ""  # requests
    uri: str = ""
    status: int = 0  # responses
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_response(self) -> bool:
        return self.status > 0

    def header(self, name: str, default: str = "") -> str:
        """The first value of a header (compact forms understood), or ``default``."""
        values = self.all(name)
        return values[0] if values else default

    def all(self, name: str) -> list[str]:
        want = COMPACT.get(name.lower(), name.lower())
        return [v for k, v in self.headers if COMPACT.get(k.lower(), k.lower()) == want]

    @property
    def call_id(self) -> str:
        return self.header("Call-ID")

    @property
    def cseq(self) -> tuple[int, str]:
        raw = self.header("CSeq").split()
        try:
            return int(raw[0]), raw[1].upper() if len(raw) > 1 else ""
        except (IndexError, ValueError):
            return 0, ""

    def tag(self, which: str = "To") -> str:
        m = re.search(r";\s*tag=([^;>\s]+)", self.header(which))
        return m.group(1) if m else ""

    def branch(self) -> str:
        m = re.search(r";\s*branch=([^;\s,]+)", self.header("Via"))
        return m.group(1) if m else ""


_STATUS = re.compile(r"^SIP/2\.0\s+(\d{3})(?:\s+(.*))?$")
_REQUEST = re.compile(r"^([A-Za-z]+)\s+(\S+)\s+SIP/2\.0$")


def parse(data: bytes) -> SipMessage:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("latin-1")
    lines = text.replace("\r\n", "\n").split("\n")
    first = lines[0].strip() if lines else ""
    msg = SipMessage(body=body)
    m = _STATUS.match(first)
    if m:
        msg.status, msg.reason = int(m.group(1)), (m.group(2) or "").strip()
    else:
        m = _REQUEST.match(first)
        if not m:
            raise SipParseError(f"not a SIP start line: {first[:80]!r}")
        msg.method, msg.uri = m.group(1).upper(), m.group(2)
    for line in lines[1:]:
        if not line:
            continue
        if line[0] in " \t" and msg.headers:  # folded continuation line
            k, v = msg.headers[-1]
            msg.headers[-1] = (k, v + " " + line.strip())
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise SipParseError(f"header line without a colon: {line[:80]!r}")
        msg.headers.append((name.strip(), value.strip()))
    return msg


def build_request(method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
    """A request with Content-Length filled in (any given Content-Length is replaced)."""
    lines = [f"{method} {uri} SIP/2.0"]
    lines += [f"{k}: {v}" for k, v in headers if k.lower() not in ("content-length", "l")]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str = "harness") -> str:
    return f"{secrets.token_hex(12)}@{host}"


def parse_challenge(value: str) -> dict[str, str]:
    """``Digest realm="x", nonce="y", qop="auth"`` -> ``{"realm": "x", ...}`` (scheme under ``scheme``)."""
    scheme, _, rest = value.strip().partition(" ")
    out = {"scheme": scheme}
    for m in re.finditer(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))', rest):
        out[m.group(1).lower()] = m.group(2) if m.group(2) is not None else m.group(3)
    return out


def digest_authorization(challenge: str, method: str, uri: str, username: str, password: str,
                         *, nc: int = 1, cnonce: str | None = None) -> str:
    """The Authorization / Proxy-Authorization value answering a Digest challenge (MD5, qop auth)."""
    ch = parse_challenge(challenge)
    if ch.get("scheme", "").lower() != "digest":
        raise SipParseError(f"not a Digest challenge: {challenge[:60]!r}")
    algorithm = ch.get("algorithm", "MD5")
    if algorithm.upper() not in ("MD5", "MD5-SESS"):
        raise SipParseError(f"unsupported digest algorithm {algorithm}")
    realm, nonce = ch.get("realm", ""), ch.get("nonce", "")

    def h(s: str) -> str:
        return hashlib.md5(s.encode(), usedforsecurity=False).hexdigest()

    cnonce = cnonce or secrets.token_hex(8)
    ha1 = h(f"{username}:{realm}:{password}")
    if algorithm.upper() == "MD5-SESS":
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    qops = [q.strip() for q in ch.get("qop", "").split(",") if q.strip()]
    parts = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in qops:
        ncs = f"{nc:08x}"
        response = h(f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
        parts += [f'response="{response}"', "qop=auth", f"nc={ncs}", f'cnonce="{cnonce}"']
    else:
        parts.append(f'response="{h(f"{ha1}:{nonce}:{ha2}")}"')
    parts.append(f"algorithm={algorithm}")
    if "opaque" in ch:
        parts.append(f'opaque="{ch["opaque"]}"')
    return "Digest " + ", ".join(parts)
