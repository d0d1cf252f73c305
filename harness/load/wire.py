"""SIP on the wire for the load engine: build requests and read responses as bytes, fast.

The load engine handles tens of thousands of messages a second in one Python process, so it does
not build :class:`harness.contracts.sipmsg.SipMessage` objects: it reads only the headers a UAC needs
(top Via branch, CSeq, To tag, Contact, Record-Route, challenges, body) in one pass over the bytes.
Digest answers still come from :func:`harness.contracts.sipmsg.digest_authorization`::

    key = call_id_key(data)                  # routing: which call's inbox gets this datagram
    r = parse_response(data)                 # None for a request
    if r and r.status == 200 and r.cseq_method == "INVITE": ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "IncomingRequest",
    "Response",
    "build_request",
    "call_id_key",
    "offer_sdp",
    "parse_request",
    "parse_response",
    "reply_to",
    "split_header_values",
    "uri_of",
]

_CALL_ID_RE = re.compile(rb"\r\n(?:call-id|i)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
_TAG_RE = re.compile(r";\s*tag=([^;>,\s]+)", re.IGNORECASE)
#: lower-cased header name (long and compact form) -> what the response reader keeps
_WANTED = {b"via": "via", b"v": "via", b"cseq": "cseq", b"to": "to", b"t": "to", b"contact": "contact",
           b"m": "contact", b"record-route": "rr", b"www-authenticate": "www", b"proxy-authenticate": "proxy",
           b"call-id": "call_id", b"i": "call_id"}


def call_id_key(data: bytes) -> bytes | None:
    """The Call-ID of a datagram, read without parsing the rest (the common spelling first)."""
    i = data.find(b"\r\nCall-ID:")
    if i >= 0:
        j = data.find(b"\r", i + 10)
        return data[i + 10:j].strip() if j > 0 else None
    m = _CALL_ID_RE.search(data)
    return m.group(1).strip() if m else None


_PEEK_BRANCH = re.compile(rb"\r\n(?:via|v)[ \t]*:[^\r\n]*?branch=([^;,\s]+)", re.IGNORECASE)
_TOKEN = re.compile(rb"[^;,\s]+")
_PEEK_CSEQ = re.compile(rb"\r\ncseq[ \t]*:[ \t]*(\d+)[ \t]+([A-Za-z]+)", re.IGNORECASE)


class Response:
    """A SIP response as a UAC reads it: status, top Via branch and CSeq at once (enough to match it to
    a transaction); To, Contact, Record-Route, challenge and body on first use (once per call)."""

    __slots__ = ("_full", "branch", "cseq_method", "cseq_num", "raw", "status")

    def __init__(self, raw: bytes, status: int, branch: str, cseq_num: int, cseq_method: str):
        self.raw, self.status, self.branch = raw, status, branch
        self.cseq_num, self.cseq_method = cseq_num, cseq_method
        self._full: _Full | None = None

    def _parsed(self) -> _Full:
        if self._full is None:
            self._full = _parse_full(self.raw)
        return self._full

    @property
    def reason(self) -> str:
        return self._parsed().reason

    @property
    def to(self) -> str:
        return self._parsed().to

    @property
    def contact(self) -> str:
        return self._parsed().contact

    @property
    def record_route(self) -> list[str]:
        return self._parsed().record_route

    @property
    def challenge(self) -> tuple[str, str] | None:
        return self._parsed().challenge

    @property
    def call_id(self) -> str:
        return self._parsed().call_id

    @property
    def body(self) -> bytes:
        return self._parsed().body

    @property
    def to_tag(self) -> str:
        m = _TAG_RE.search(self.to)
        return m.group(1) if m else ""


class _Full:
    """The headers of a response read on first use (a plain slotted class: made once per 2xx)."""

    __slots__ = ("body", "call_id", "challenge", "contact", "reason", "record_route", "to")

    def __init__(self, reason: str, body: bytes) -> None:
        self.reason, self.body = reason, body
        self.to = self.contact = self.call_id = ""
        self.record_route: list[str] = []
        self.challenge: tuple[str, str] | None = None


def parse_response(data: bytes) -> Response | None:
    """Read a response's status, branch and CSeq; None when ``data`` is a request.
    Raises ValueError for a garbled status line."""
    if not data.startswith(b"SIP/2.0 "):
        return None
    status = int(data[8:11])
    branch = ""
    i = data.find(b"\r\nVia: ")  # the common spelling first; any other through the regex
    if i >= 0:
        end = data.find(b"\r", i + 7)
        j = data.find(b"branch=", i, end)
        if j > 0:
            m = _TOKEN.match(data, j + 7, end)
            branch = m.group().decode("ascii", "replace") if m else ""
    else:
        m = _PEEK_BRANCH.search(data)
        branch = m.group(1).decode("ascii", "replace") if m else ""
    num, method = 0, ""
    i = data.find(b"\r\nCSeq: ")
    if i >= 0:
        end = data.find(b"\r", i + 8)
        parts = data[i + 8:end].split()
        if len(parts) == 2 and parts[0].isdigit():
            num, method = int(parts[0]), parts[1].decode("ascii", "replace").upper()
    if not method:
        c = _PEEK_CSEQ.search(data)
        if c:
            num, method = int(c.group(1)), c.group(2).decode("ascii").upper()
    return Response(data, status, branch, num, method)


#: a wanted header's name at a line start, matched in a lower-cased copy of the header block (one
#: ``bytes.lower()`` is cheaper than a case-insensitive pattern); values are sliced from the original
_WANTED_LOW_RE = re.compile(rb"\r\n(to|t|contact|m|record-route|www-authenticate|proxy-authenticate|call-id|i)"
                            rb"[ \t]*:[ \t]*")


def _parse_full(data: bytes) -> _Full:
    """One pass over the header block for the headers a UAC keeps (long and compact names, any case)."""
    end = data.find(b"\r\n\r\n")
    head, body = (data[:end], data[end + 4:]) if end >= 0 else (data, b"")
    first = head.find(b"\r\n")
    r = _Full(head[12:first if first > 0 else len(head)].decode("utf-8", "replace"), body)
    wanted, find = _WANTED, head.find
    for m in _WANTED_LOW_RE.finditer(head.lower()):
        start = m.end()
        eol = find(b"\r\n", start)
        kind = wanted[m.group(1)]
        value = head[start:eol if eol >= 0 else len(head)].strip().decode("utf-8", "replace")
        if kind == "to":
            if not r.to:
                r.to = value
        elif kind == "contact":
            if not r.contact and value:
                r.contact = uri_of(split_header_values(value)[0] if "," in value else value)
        elif kind == "rr":
            r.record_route.extend(split_header_values(value) if "," in value else [value])
        elif kind == "call_id":
            r.call_id = value
        elif r.challenge is None:
            r.challenge = ("WWW-Authenticate" if kind == "www" else "Proxy-Authenticate", value)
    return r


@dataclass
class IncomingRequest:
    """A request the far end sent us (BYE, re-INVITE, OPTIONS): enough to answer it."""

    method: str
    cseq_method: str
    raw_headers: list[bytes]  # Via, From, To, Call-ID, CSeq lines, as received


_ECHO = (b"via", b"v", b"from", b"f", b"to", b"t", b"call-id", b"i", b"cseq")


def parse_request(data: bytes) -> IncomingRequest | None:
    sp = data.find(b" ")
    if sp <= 0 or data.startswith(b"SIP/2.0"):
        return None
    method = data[:sp].decode("ascii", "replace").upper()
    head = data.partition(b"\r\n\r\n")[0]
    keep, cseq_method = [], ""
    for line in head.split(b"\r\n")[1:]:
        c = line.find(b":")
        name = line[:c].strip().lower() if c > 0 else b""
        if name in _ECHO:
            keep.append(line)
            if name == b"cseq":
                cseq_method = line[c + 1:].split()[-1].decode("ascii", "replace").upper()
    return IncomingRequest(method, cseq_method, keep)


def reply_to(req: IncomingRequest, code: int, reason: str, to_tag: str = "", body: bytes = b"",
             extra: tuple[str, ...] = ()) -> bytes:
    """A response echoing the request's Via/From/To/Call-ID/CSeq (adding a To tag when it has none)."""
    out = [f"SIP/2.0 {code} {reason}".encode()]
    for line in req.raw_headers:
        if to_tag and line.split(b":", 1)[0].strip().lower() in (b"to", b"t") and b"tag=" not in line.lower():
            line = line + b";tag=" + to_tag.encode()
        out.append(line)
    out += [h.encode() for h in extra]
    if body:
        out.append(b"Content-Type: application/sdp")
    out.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(out) + b"\r\n\r\n" + body


def build_request(method: str, ruri: str, *, via: str, branch: str, from_: str, to: str, call_id: str,
                  cseq: int, cseq_method: str = "", contact: str = "", routes: tuple[str, ...] = (),
                  extra: tuple[str, ...] = (), body: bytes = b"", user_agent: str = "harness-load") -> bytes:
    """One request. ``via`` is ``host:port``; ``from_``/``to`` are full header values with their tags."""
    lines = [f"{method} {ruri} SIP/2.0", f"Via: SIP/2.0/UDP {via};branch={branch};rport", "Max-Forwards: 70",
             f"From: {from_}", f"To: {to}", f"Call-ID: {call_id}", f"CSeq: {cseq} {cseq_method or method}"]
    if contact:
        lines.append(f"Contact: {contact}")
    lines += [f"Route: {r}" for r in routes]
    lines += extra
    lines.append(f"User-Agent: {user_agent}")
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


_VALUES_RE = re.compile(r'(?:<[^>]*>|"(?:[^"\\]|\\.)*"|[^,<"])+')


def split_header_values(value: str) -> list[str]:
    """``<a>;x, <b,c>`` -> ``['<a>;x', '<b,c>']``: commas inside <> or quotes do not split."""
    if "<" in value or '"' in value:
        if value.count("<") == value.count(">") and value.count('"') % 2 == 0:
            return [v.strip() for v in _VALUES_RE.findall(value) if v.strip()]
    else:
        return [v.strip() for v in value.split(",") if v.strip()]
    out, depth, quoted, start = [], 0, False, 0  # unbalanced brackets or quotes: the careful way
    for i, ch in enumerate(value):
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        elif ch == "," and depth == 0 and not quoted:
            out.append(value[start:i].strip())
            start = i + 1
    out.append(value[start:].strip())
    return [v for v in out if v]


def uri_of(value: str) -> str:
    """The URI of a name-addr (``"x" <sip:a@b>;p`` -> ``sip:a@b``) or of a bare addr-spec."""
    lt = value.find("<")
    if lt >= 0:
        gt = value.find(">", lt)
        return value[lt + 1:gt if gt > 0 else len(value)].strip()
    return value.split(";", 1)[0].strip()


def offer_sdp(ip: str, port: int, session: int, direction: str = "sendrecv") -> bytes:
    """A PCMU/PCMA offer; ``direction`` ``sendonly`` puts the call on hold."""
    return (f"v=0\r\no=harness-load {session} {session} IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
            f"a=ptime:20\r\na={direction}\r\n").encode()
