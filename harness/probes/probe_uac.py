"""SIP flows on top of :class:`SipProbe`: REGISTER with digest, and a probe call that never lingers.

A probe call is placed to learn how the PBX treats it (challenged? refused? rings? answered?) and is
torn down at once: CANCEL as soon as it rings (when asked), ACK + BYE the moment it is answered, so
a probe that finds a hole never leaves a call up::

    reg = register(probe, "1001", password)          # reg.code, reg.total_ms, reg.exchanges
    call = place_call(probe, "sip:00441632960123@pbx.example.com", from_user="1001",
                      auth=("1001", password), cancel_on_ring=True)
    call.answered, call.rang, call.final, call.codes
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field

from harness.contracts.sipmsg import SipMessage, SipParseError, build_request, digest_authorization, new_branch, new_tag
from harness.probes.client import Exchange, Reply, SipProbe

__all__ = ["CallResult", "RegisterResult", "auth_header", "place_call", "register", "route_set", "sdp_offer"]


@dataclass
class RegisterResult:
    exchanges: list[Exchange] = field(default_factory=list)

    @property
    def code(self) -> int | None:
        return self.exchanges[-1].status if self.exchanges else None

    @property
    def challenged(self) -> bool:
        return bool(self.exchanges) and self.exchanges[0].status in (401, 407)

    @property
    def total_ms(self) -> float | None:
        """First send to the last final answer (challenge round included); None if one is missing."""
        if not self.exchanges or any(e.final is None for e in self.exchanges):
            return None
        last = self.exchanges[-1]
        assert last.final is not None
        return round((last.t0 - self.exchanges[0].t0) * 1000.0 + last.final.t_ms, 3)

    @property
    def refs(self) -> list[int]:
        return [e.ref for e in self.exchanges]


def auth_header(reply: SipMessage | None) -> tuple[str, str] | None:
    """(answer header name, challenge) for a 401/407, or None when the answer carries no challenge."""
    if reply is None:
        return None
    if reply.status == 401 and reply.header("WWW-Authenticate"):
        return "Authorization", reply.header("WWW-Authenticate")
    if reply.status == 407 and reply.header("Proxy-Authenticate"):
        return "Proxy-Authorization", reply.header("Proxy-Authenticate")
    return None


def register(probe: SipProbe, user: str, password: str | None, *, auth_user: str | None = None,
             expires: int = 60, note: str = "", timeout: float | None = None) -> RegisterResult:
    """REGISTER ``user``; answer one challenge with ``password`` (None: stop at the challenge)."""
    uri = f"sip:{probe.target.sip_domain}"
    call_id, from_tag = None, new_tag()
    res = RegisterResult()
    first = probe.request("REGISTER", uri, from_user=user, from_tag=from_tag, headers=[("Expires", str(expires))],
                          note=note or f"REGISTER {user}", timeout=timeout)
    res.exchanges.append(first)
    call_id = first.call_id
    ch = auth_header(first.final.msg if first.final else None)
    if ch is None or password is None:
        return res
    name, challenge = ch
    try:
        value = digest_authorization(challenge, "REGISTER", uri, auth_user or user, password)
    except SipParseError as exc:
        probe.evidence.note(first.ref, f"cannot answer the challenge: {exc}")
        return res
    res.exchanges.append(probe.request(
        "REGISTER", uri, from_user=user, from_tag=from_tag, call_id=call_id, cseq=2,
        headers=[("Expires", str(expires)), (name, value)], note=(note or f"REGISTER {user}") + " (digest)",
        timeout=timeout))
    return res


def sdp_offer(ip: str, port: int, *, srtp: bool = False, session: str = "harness-probe") -> bytes:
    """A G.711 audio offer; ``srtp`` makes it RTP/SAVP with an SDES key (RFC 4568)."""
    sid = secrets.randbelow(10**9)
    lines = ["v=0", f"o=- {sid} {sid} IN IP4 {ip}", f"s={session}", f"c=IN IP4 {ip}", "t=0 0",
             f"m=audio {port} {'RTP/SAVP' if srtp else 'RTP/AVP'} 0 8 101",
             "a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=rtpmap:101 telephone-event/8000",
             "a=fmtp:101 0-15", "a=ptime:20", "a=sendrecv"]
    if srtp:
        key = base64.b64encode(secrets.token_bytes(30)).decode()
        lines.append(f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}")
    return ("\r\n".join(lines) + "\r\n").encode()


def route_set(msg: SipMessage) -> list[str]:
    """The UAC's route set from a dialog-creating answer: its Record-Route entries, reversed."""
    entries: list[str] = []
    for value in msg.all("Record-Route"):
        entries += [e.strip() for e in re.split(r",(?![^<]*>)", value) if e.strip()]
    return list(reversed(entries))


def _contact_uri(msg: SipMessage) -> str | None:
    m = re.search(r"<([^>]+)>", msg.header("Contact")) or re.match(r"\s*([^;\s]+)", msg.header("Contact"))
    return m.group(1) if m else None


@dataclass
class CallResult:
    """What a probe call met. ``final`` is the last INVITE's final status (None: none came)."""

    exchanges: list[Exchange] = field(default_factory=list)
    authenticated: bool = False
    cancelled: bool = False
    answer: SipMessage | None = None  # the 2xx, when the call was answered
    error: str = ""

    @property
    def codes(self) -> list[int]:
        return [r.msg.status for e in self.exchanges for r in e.replies if e.cseq[1] == "INVITE"]

    @property
    def final(self) -> int | None:
        invites = [e for e in self.exchanges if e.cseq[1] == "INVITE"]
        return invites[-1].status if invites else None

    @property
    def answered(self) -> bool:
        return self.answer is not None

    @property
    def rang(self) -> bool:
        """A 180/183 came: the PBX routed the call somewhere (for toll fraud that is already too far)."""
        return any(c in (180, 181, 182, 183) for c in self.codes)

    @property
    def challenged(self) -> bool:
        invites = [e for e in self.exchanges if e.cseq[1] == "INVITE"]
        return bool(invites) and invites[0].status in (401, 407)

    @property
    def refs(self) -> list[int]:
        return [e.ref for e in self.exchanges]

    def outcome(self) -> str:
        if self.error and not self.codes:
            return self.error
        if self.answered:
            return "answered (200)"
        if self.final is None:
            return "no final answer" + (" (rang, cancelled)" if self.rang else "")
        first = self.exchanges[0].final
        what = f"{self.final} {self.exchanges[-1].final.msg.reason if self.exchanges[-1].final else ''}".strip()
        if self.authenticated and first is not None:
            what = f"{first.msg.status} challenge, then {what}"
        return what + (" after ringing" if self.rang else "")


def place_call(probe: SipProbe, uri: str, *, from_user: str, from_domain: str | None = None,
               auth: tuple[str, str] | None = None, body: bytes | None = None, cancel_on_ring: bool = True,
               timeout: float | None = None, note: str = "INVITE") -> CallResult:
    """INVITE ``uri``; authenticate once if challenged and ``auth`` is given; never leave it up."""
    res = CallResult()
    if body is None:
        body = sdp_offer(probe.local[0], _rtp_port(probe))
    from_tag = new_tag()
    stop = _ringing_or_final if cancel_on_ring else _final

    ex = probe.request("INVITE", uri, from_user=from_user, from_domain=from_domain, from_tag=from_tag, body=body,
                       until=stop, note=note, timeout=timeout)
    res.exchanges.append(ex)
    ch = auth_header(ex.final.msg if ex.final else None)
    if ex.final is not None and ex.final.msg.status >= 300:
        _ack_failure(probe, ex, ex.final.msg)
    if ch is not None and auth is not None:
        name, challenge = ch
        try:
            value = digest_authorization(challenge, "INVITE", uri, auth[0], auth[1])
        except SipParseError as exc:
            res.error = str(exc)
            return res
        res.authenticated = True
        ex = probe.request("INVITE", uri, from_user=from_user, from_domain=from_domain, from_tag=from_tag,
                           call_id=ex.call_id, cseq=2, headers=[(name, value)], body=body, until=stop,
                           note=note + " (digest)", timeout=timeout)
        res.exchanges.append(ex)
        if ex.final is not None and ex.final.msg.status >= 300:
            _ack_failure(probe, ex, ex.final.msg)
    if ex.final is None and ex.replies:  # it rings (or trying): CANCEL, then collect the final answer
        _cancel(probe, ex, res)
    if ex.final is not None and 200 <= ex.final.msg.status < 300:
        res.answer = ex.final.msg
        _ack_and_bye(probe, ex, ex.final.msg, res)
    if ex.error:
        res.error = ex.error
    return res


def _final(r: Reply) -> bool:
    return r.msg.status >= 200


def _ringing_or_final(r: Reply) -> bool:
    return r.msg.status >= 180


def _rtp_port(probe: SipProbe) -> int:
    return 20000 + 2 * secrets.randbelow(10000)  # nothing listens: a probe offers media it never sends


def _header(ex: Exchange, name: str) -> str:
    return next((v for k, v in ex.headers if k.lower() == name.lower()), "")


def _ack_failure(probe: SipProbe, ex: Exchange, final: SipMessage) -> None:
    """The ACK of a non-2xx final answer: same branch and Request-URI as the INVITE (RFC 3261 17.1.1.3)."""
    hs = [("Via", _header(ex, "Via")), ("Max-Forwards", "70"), ("From", _header(ex, "From")),
          ("To", final.header("To")), ("Call-ID", ex.call_id), ("CSeq", f"{ex.cseq[0]} ACK")]
    hs += [("Route", v) for k, v in ex.headers if k == "Route"]
    probe.send_only(build_request("ACK", ex.uri, hs), f"ACK {final.status}")


def _cancel(probe: SipProbe, ex: Exchange, res: CallResult) -> None:
    hs = [("Via", _header(ex, "Via")), ("Max-Forwards", "70"), ("From", _header(ex, "From")),
          ("To", _header(ex, "To")), ("Call-ID", ex.call_id), ("CSeq", f"{ex.cseq[0]} CANCEL")]
    hs += [("Route", v) for k, v in ex.headers if k == "Route"]
    res.cancelled = True
    cancel = probe.transact(build_request("CANCEL", ex.uri, hs), note="CANCEL",
                            match=(ex.call_id, ex.cseq[0], "CANCEL"))
    res.exchanges.append(cancel)
    probe.wait_more(ex, probe.timeout)
    if ex.final is not None and ex.final.msg.status >= 300:
        _ack_failure(probe, ex, ex.final.msg)


def _ack_and_bye(probe: SipProbe, ex: Exchange, ok: SipMessage, res: CallResult) -> None:
    """ACK the 2xx and hang up at once, through the route set the answer recorded."""
    target = _contact_uri(ok) or ex.uri
    routes = route_set(ok)
    base = [("Max-Forwards", "70"), ("From", _header(ex, "From")), ("To", ok.header("To")),
            ("Call-ID", ex.call_id)]
    rhs = [("Route", r) for r in routes]
    ack = [("Via", probe.via(new_branch())), *base, ("CSeq", f"{ex.cseq[0]} ACK"), *rhs]
    probe.send_only(build_request("ACK", target, ack), "ACK 2xx")
    bye_hs = [("Via", probe.via(new_branch())), *base, ("CSeq", f"{ex.cseq[0] + 1} BYE"), *rhs]
    bye = probe.transact(build_request("BYE", target, bye_hs), note="BYE (the probe call was answered: hang up)",
                         match=(ex.call_id, ex.cseq[0] + 1, "BYE"))
    res.exchanges.append(bye)
