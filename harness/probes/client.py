"""A SIP client made of raw text: sends one request, collects the answers of its transaction.

The probes need what a user agent library hides: the exact bytes, every provisional answer, the
timing of each, and the freedom to send what no library would (a missing Via, a lying
Content-Length). :class:`SipProbe` does one transaction at a time over one :class:`Channel`,
retransmits over UDP like RFC 3261 timer A/E (bounded by the timeout and the packet budget), and
writes everything to the :class:`EvidenceLog`::

    probe = SipProbe(channel, target, evidence)
    ex = probe.request("OPTIONS", f"sip:{target.host}:{target.port}", from_user="probe")
    ex.status, ex.rtt_ms, ex.final.msg.header("Server")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.contracts.errors import ProbeConnectError
from harness.contracts.sipmsg import SipMessage, SipParseError, build_request, new_branch, new_call_id, new_tag, parse
from harness.contracts.target import Target
from harness.probes.probe_evidence import EvidenceLog
from harness.probes.transport import Channel

__all__ = ["Exchange", "Reply", "SipProbe"]

T1 = 0.5  # RFC 3261 round-trip estimate: the first UDP retransmission interval
T2 = 4.0


@dataclass
class Reply:
    """One answer: when it came (ms after the first send), parsed, and its bytes."""

    t_ms: float
    msg: SipMessage
    raw: bytes
    at: float = 0.0  # monotonic arrival time


@dataclass
class Exchange:
    """One request and what came back for it."""

    ref: int
    request: bytes
    replies: list[Reply] = field(default_factory=list)
    sent: int = 0
    error: str = ""
    call_id: str = ""
    cseq: tuple[int, str] = (0, "")
    branch: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    uri: str = ""
    t0: float = 0.0  # monotonic time of the first send

    @property
    def final(self) -> Reply | None:
        return next((r for r in self.replies if r.msg.status >= 200), None)

    @property
    def status(self) -> int | None:
        """The final status, or None when no final answer came."""
        f = self.final
        return f.msg.status if f else None

    @property
    def statuses(self) -> list[int]:
        return [r.msg.status for r in self.replies]

    @property
    def rtt_ms(self) -> float | None:
        """Time to the first answer of any kind (a 100 Trying counts: the server is alive)."""
        return self.replies[0].t_ms if self.replies else None

    @property
    def final_ms(self) -> float | None:
        f = self.final
        return f.t_ms if f else None

    def summary(self) -> str:
        if self.error:
            return self.error
        if not self.replies:
            return "no answer"
        return " ".join(f"{r.msg.status}" for r in self.replies) + (
            f" {self.final.msg.reason}" if self.final else "")


def _is_final(r: Reply) -> bool:
    return r.msg.status >= 200


class SipProbe:
    """One raw SIP client on one channel. Not thread-safe; one transaction at a time."""

    def __init__(self, channel: Channel, target: Target, evidence: EvidenceLog, *,
                 user_agent: str = "harness-probe", timeout: float = 2.0):
        self.channel, self.target, self.evidence = channel, target, evidence
        self.user_agent, self.timeout = user_agent, timeout
        self.stray: list[Reply] = []  # answers that came during another transaction (a 487 after CANCEL)

    # ---- addressing -------------------------------------------------------------------------------
    @property
    def local(self) -> tuple[str, int]:
        return self.channel.local

    def via(self, branch: str) -> str:
        host, port = self.local
        return f"SIP/2.0/{self.channel.via_transport} {host}:{port};branch={branch};rport"

    def contact(self, user: str) -> str:
        host, port = self.local
        tp = "" if self.channel.transport == "udp" else f";transport={self.channel.transport}"
        return f"<sip:{user}@{host}:{port}{tp}>"

    def server_uri(self) -> str:
        return f"sip:{self.target.host}:{self.target.port}"

    # ---- requests ---------------------------------------------------------------------------------
    def request(self, method: str, uri: str, *, from_user: str, from_domain: str | None = None,
                to_uri: str | None = None, to_tag: str = "", from_tag: str | None = None,
                call_id: str | None = None, cseq: int = 1, branch: str | None = None,
                headers: Sequence[tuple[str, str]] = (), body: bytes = b"", content_type: str = "application/sdp",
                route: Sequence[str] = (), contact: bool = True, note: str = "", timeout: float | None = None,
                until: Callable[[Reply], bool] = _is_final, retransmit: bool = True) -> Exchange:
        """Build, send and wait: returns when ``until`` holds for an answer (default: a final one)."""
        domain = from_domain or self.target.sip_domain
        branch = branch or new_branch()
        call_id = call_id or new_call_id(self.local[0])
        to = to_uri or (f"sip:{from_user}@{domain}" if method == "REGISTER" else uri)
        hs: list[tuple[str, str]] = [
            ("Via", self.via(branch)), ("Max-Forwards", "70"),
            ("From", f"<sip:{from_user}@{domain}>;tag={from_tag or new_tag()}"),
            ("To", f"<{to}>" + (f";tag={to_tag}" if to_tag else "")),
            ("Call-ID", call_id), ("CSeq", f"{cseq} {method}")]
        hs += [("Route", r) for r in route]
        if contact and method in ("INVITE", "REGISTER", "SUBSCRIBE", "OPTIONS"):
            hs.append(("Contact", self.contact(from_user)))
        hs.append(("User-Agent", self.user_agent))
        hs += list(headers)
        if body and not any(k.lower() in ("content-type", "c") for k, _ in hs):
            hs.append(("Content-Type", content_type))
        data = build_request(method, uri, hs, body)
        ex = self.transact(data, note=note or f"{method} {uri}", timeout=timeout, until=until,
                           retransmit=retransmit, match=(call_id, cseq, method))
        ex.branch, ex.headers, ex.uri = branch, hs, uri
        return ex

    def transact(self, data: bytes, *, note: str = "", timeout: float | None = None,
                 until: Callable[[Reply], bool] = _is_final, retransmit: bool = True,
                 match: tuple[str, int, str] | None = None) -> Exchange:
        """Send ``data`` (retransmitted over UDP while unanswered) and collect the answers.

        ``match`` is (Call-ID, CSeq number, method): answers of other transactions are written to
        the evidence but not counted. Without it every SIP message that arrives counts (raw probes).
        """
        wait = self.timeout if timeout is None else timeout
        ch = self.channel
        ref = self.evidence.tx(ch.transport, ch.local, ch.remote, data, note)
        ex = Exchange(ref=ref, request=data)
        if match:
            ex.call_id, ex.cseq = match[0], (match[1], match[2])
        t0 = ex.t0 = time.monotonic()
        deadline = t0 + wait
        interval = T1
        next_send: float | None = t0
        try:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                if next_send is not None and now >= next_send:
                    ch.send(data)
                    ex.sent += 1
                    if ch.transport == "udp" and retransmit:
                        next_send = now + interval
                        interval = min(interval * 2, T2)
                    else:
                        next_send = None
                until_next = (next_send if next_send is not None else deadline) - time.monotonic()
                raw = ch.recv(max(0.0, min(until_next, deadline - time.monotonic())))
                if raw is None:
                    continue
                reply = self._accept(ex, raw, match)
                if reply is None:
                    continue
                next_send = None  # any answer stops the retransmissions
                if until(reply):
                    break
        except ProbeConnectError as exc:
            ex.error = exc.reason
            self.evidence.note(ref, f"transport: {exc.reason}")
        return ex

    def _accept(self, ex: Exchange, raw: bytes, match: tuple[str, int, str] | None) -> Reply | None:
        ch = self.channel
        self.evidence.rx(ch.transport, ch.remote, ch.local, raw, ex.ref)
        try:
            msg = parse(raw)
        except SipParseError:
            self.evidence.note(ex.ref, "(not SIP: ignored)")
            return None
        if not msg.is_response:
            return None  # a request from the server (NOTIFY, OPTIONS keep-alive): not ours to answer here
        now = time.monotonic()
        reply = Reply(round((now - ex.t0) * 1000.0, 3), msg, raw, now)
        if match is not None:
            cid, num, method = match
            if msg.call_id != cid or msg.cseq != (num, method):
                self.stray.append(reply)
                del self.stray[:-20]
                return None
        ex.replies.append(reply)
        return reply

    def wait_more(self, ex: Exchange, timeout: float, until: Callable[[Reply], bool] = _is_final) -> Exchange:
        """Keep collecting answers of ``ex`` without sending (after a CANCEL: the INVITE's 487)."""
        for r in [r for r in self.stray if r.msg.call_id == ex.call_id and r.msg.cseq == ex.cseq]:
            self.stray.remove(r)
            r.t_ms = round((r.at - ex.t0) * 1000.0, 3)
            ex.replies.append(r)
            if until(r):
                return ex
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                raw = self.channel.recv(left)
                if raw is None:
                    break
                reply = self._accept(ex, raw, (ex.call_id, *ex.cseq))
                if reply is not None and until(reply):
                    break
        except ProbeConnectError as exc:
            ex.error = exc.reason
        return ex

    def send_only(self, data: bytes, note: str = "") -> int:
        """Send without waiting (an ACK); returns the evidence number."""
        ch = self.channel
        ref = self.evidence.tx(ch.transport, ch.local, ch.remote, data, note)
        try:
            ch.send(data)
        except ProbeConnectError as exc:
            self.evidence.note(ref, f"transport: {exc.reason}")
        return ref

    def drain(self, seconds: float) -> int:
        """Read and log whatever still arrives for ``seconds`` (late retransmissions); returns a count."""
        n = 0
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                raw = self.channel.recv(left)
            except ProbeConnectError:
                return n
            if raw is None:
                return n
            ch = self.channel
            self.evidence.rx(ch.transport, ch.remote, ch.local, raw, 0)
            n += 1
        return n
