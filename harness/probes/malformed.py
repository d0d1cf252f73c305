"""A fixed, bounded set of malformed and oversized SIP messages for the robustness check.

Each probe is one message a careless parser chokes on. A robust PBX answers it with a 4xx or drops
it, and keeps serving: the check sends an OPTIONS after each one. The set is deliberately small
and fixed (no random fuzzing): the same run gives the same probes, so a finding can be retested::

    for p in PROBES:
        data = p.build(Addressing("127.0.0.1", 5555, "UDP", "127.0.0.1", 5060, "lab.local"))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from harness.contracts.sipmsg import new_branch, new_call_id, new_tag

__all__ = ["PROBES", "Addressing", "MalformedProbe", "broken_sdp_body", "probe_names"]


@dataclass(frozen=True)
class Addressing:
    """Who sends and where to: enough to make the well-formed parts of a probe right."""

    local_host: str
    local_port: int
    transport: str  # as in Via: UDP, TCP, TLS
    host: str
    port: int
    domain: str
    max_datagram: int = 65000  # UDP cannot carry more; stream transports can


@dataclass(frozen=True)
class MalformedProbe:
    name: str
    what: str
    build: Callable[[Addressing], bytes]
    method: str = "OPTIONS"  # the method it carries (an INVITE may start a call that must be ended)


def _head(a: Addressing, method: str = "OPTIONS", *, via: bool = True, call_id: str | None = None,
          cseq: str | None = None, uri: str | None = None) -> list[str]:
    lines = [f"{method} {uri or f'sip:{a.host}:{a.port}'} SIP/2.0"]
    if via:
        lines.append(f"Via: SIP/2.0/{a.transport} {a.local_host}:{a.local_port};branch={new_branch()};rport")
    lines += ["Max-Forwards: 70", f"From: <sip:probe@{a.domain}>;tag={new_tag()}", f"To: <sip:{a.host}:{a.port}>",
              f"Call-ID: {call_id or new_call_id(a.local_host)}", f"CSeq: {cseq or '1 ' + method}",
              "User-Agent: harness-probe"]
    return lines


def _msg(lines: list[str], body: bytes = b"", content_length: str | None = None) -> bytes:
    cl = str(len(body)) if content_length is None else content_length
    return ("\r\n".join([*lines, f"Content-Length: {cl}"]) + "\r\n\r\n").encode() + body


def _bad_header_line(a: Addressing) -> bytes:
    return _msg([*_head(a), "This line has no colon", "X-Bad\x01Name: value", "Accept: application/sdp;;;q="])


def _huge_content_length(a: Addressing) -> bytes:
    return _msg(_head(a), b"v=0\r\n", content_length="4294967296")


def _negative_content_length(a: Addressing) -> bytes:
    return _msg(_head(a), content_length="-1")


def _missing_via(a: Addressing) -> bytes:
    return _msg(_head(a, via=False))


def _missing_call_id(a: Addressing) -> bytes:
    return _msg([ln for ln in _head(a) if not ln.startswith("Call-ID")])


def _bad_cseq(a: Addressing) -> bytes:
    return _msg(_head(a, cseq="99999999999999999999999 INVITE"))


def _bad_request_line(a: Addressing) -> bytes:
    head = _head(a)
    head[0] = f"OPTIONS sip:{a.host}:{a.port} SIP/7.0 trailing junk"
    return _msg(head)


def _bad_uri(a: Addressing) -> bytes:
    return _msg(_head(a, uri="sip:%%%@@[::::]:99999;;lr=;=;"))


def _oversized(a: Addressing) -> bytes:
    # one header large enough to overflow fixed buffers, still inside one UDP datagram
    base = _msg(_head(a))
    pad = max(0, min(a.max_datagram, 60000) - len(base) - 16)
    return _msg([*_head(a), "X-Padding: " + "A" * pad])


def _via_flood(a: Addressing) -> bytes:
    head = _head(a)
    vias = [f"Via: SIP/2.0/UDP 192.0.2.{i % 250 + 1}:5060;branch={new_branch()}" for i in range(200)]
    return _msg([head[0], head[1], *vias, *head[2:]])


def _binary(a: Addressing) -> bytes:
    return b"\x00\xff\xfe" + bytes(range(256)) + b"\r\n\r\n"


def broken_sdp_body() -> bytes:
    return (b"v=9\r\no=\r\ns\r\nc=IN IP4 999.999.999.999\r\nt=x y\r\n"
            b"m=audio 99999999 RTP/AVP 0 8 999 -1\r\na=rtpmap:0\r\na=rtpmap:\xff\xfe PCMU/abc\r\nm=\r\n")


def _broken_sdp(a: Addressing) -> bytes:
    lines = _head(a, "INVITE", uri=f"sip:probe-sdp@{a.domain}")
    lines += [f"Contact: <sip:probe@{a.local_host}:{a.local_port}>", "Content-Type: application/sdp"]
    return _msg(lines, broken_sdp_body())


PROBES: tuple[MalformedProbe, ...] = (
    MalformedProbe("bad_header_line", "a header line without a colon and a control character in a name",
                   _bad_header_line),
    MalformedProbe("huge_content_length", "Content-Length 2^32 with a 5-byte body", _huge_content_length),
    MalformedProbe("negative_content_length", "Content-Length -1", _negative_content_length),
    MalformedProbe("missing_via", "no Via header (nowhere to answer)", _missing_via),
    MalformedProbe("missing_call_id", "no Call-ID header", _missing_call_id),
    MalformedProbe("bad_cseq", "a CSeq number of 23 digits and a method that is not the request's", _bad_cseq),
    MalformedProbe("bad_request_line", "SIP/7.0 and trailing junk in the request line", _bad_request_line),
    MalformedProbe("bad_uri", "a Request-URI that is not a URI", _bad_uri),
    MalformedProbe("oversized", "one ~60 KB header (the largest UDP datagram)", _oversized),
    MalformedProbe("via_flood", "200 Via headers", _via_flood),
    MalformedProbe("binary_garbage", "256 bytes of binary that are not SIP", _binary),
    MalformedProbe("broken_sdp", "an INVITE whose SDP is garbage (bad version, address, port, payloads)",
                   _broken_sdp, method="INVITE"),
)


def probe_names() -> tuple[str, ...]:
    return tuple(p.name for p in PROBES)
