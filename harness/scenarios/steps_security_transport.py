"""The ``transport_security`` step: is TLS offered? Is SRTP (SDES) offered, or required? Is plaintext SIP
accepted? Checks ``security:transport:<what>`` (:mod:`harness.scenarios.steps_security_base`)::

    steps:
      - transport_security: {tls: offered, srtp: offered, plaintext: allowed}
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from harness.contracts.sdp import parse_sdp
from harness.contracts.target import Account
from harness.contracts.yamlsrc import Fields
from harness.probes import ProbeConnectError, ProbeSession, SipProbe
from harness.probes.probe_session import default_port
from harness.probes.probe_uac import place_call, sdp_offer
from harness.scenarios.context import RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_probe import ProbeStep, probe_session
from harness.scenarios.steps_security_base import (
    callee_uri,
    finding,
    finding_error,
    need_account,
    open_probe,
    security_check,
)

__all__ = ["POLICY", "TransportSecurity"]

POLICY = ("required", "offered", "optional")
TLS_OFFERED = security_check("transport", "tls_offered")
PLAINTEXT = security_check("transport", "plaintext_sip")
SRTP_OFFERED = security_check("transport", "srtp_offered")
SRTP_REQUIRED = security_check("transport", "srtp_required")



@step("transport_security")
@dataclass(frozen=True)
class TransportSecurity(ProbeStep):
    """Is TLS offered? Is SRTP (SDES) offered, or required? Is plaintext SIP accepted?

    ``tls`` and ``srtp`` say what the policy wants (required, offered, optional; default offered);
    ``plaintext: forbidden`` (a TLS-only policy) makes an answer over UDP or TCP a finding. The SRTP
    probe calls go to ``to`` (default: a party of the scenario) as ``account``, over TLS when the PBX
    offers it, and are hung up at once.
    """

    tls: str
    srtp: str
    plaintext: str
    tls_port: int | None
    account: str | None
    to: str | None
    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> TransportSecurity:
        to = f.opt("to", (str, int), None)
        return cls(f.choice("tls", POLICY, "offered"), f.choice("srtp", POLICY, "offered"),
                   f.choice("plaintext", ("allowed", "forbidden"), "allowed"),
                   f.integer("tls_port", None, low=1, high=65535), f.opt("account", str, None),
                   None if to is None else str(to), f.number("timeout_ms", 3000, low=100, high=30000) / 1000.0)

    def run(self, ctx: RunContext) -> None:
        tls_port = self.tls_port or default_port(ctx.target, "tls")
        with probe_session(ctx, packets=60, timeout_s=self.timeout_s, isolated=True) as ps:
            tls_probe = self._tls(ctx, ps, tls_port)
            self._plaintext(ctx, ps)
            acc = need_account(ctx, self.account, SRTP_OFFERED, "medium")
            if acc is None:
                return
            probe = tls_probe or open_probe(ctx, ps, SRTP_OFFERED, "medium")
            if probe is None:
                return
            callee = callee_uri(ctx, self.to, acc)
            self._srtp(ctx, probe, acc, callee, over_tls=tls_probe is not None)

    def _tls(self, ctx: RunContext, ps: ProbeSession, port: int) -> SipProbe | None:
        severity = {"required": "high", "offered": "medium", "optional": "info"}[self.tls]
        try:
            probe = ps.probe("tls", port=port)
        except ProbeConnectError as exc:
            ctx.check(finding(TLS_OFFERED, self.tls == "optional", "not offered", "offered", severity,
                              f"no TLS at {ps.scope.address}:{port}: {exc.reason}; SIP and SDES keys travel in clear"))
            return None
        ex = probe.request("OPTIONS", f"sip:{ctx.target.host}:{port};transport=tls", from_user="probe",
                           timeout=ctx.remaining(self.timeout_s), note="TLS offered?")
        ok = ex.rtt_ms is not None
        ctx.check(finding(TLS_OFFERED, ok or self.tls == "optional", "offered" if ok else "handshake only",
                          "offered", severity, f"TLS at {ps.scope.address}:{port}: {ex.summary()}", [ex.ref]))
        return probe if ok else None

    def _plaintext(self, ctx: RunContext, ps: ProbeSession) -> None:
        forbidden = self.plaintext == "forbidden"
        accepted, refs, notes = [], [], []
        for tp in ("udp", "tcp"):
            try:
                probe = ps.probe(tp)
            except ProbeConnectError as exc:
                notes.append(f"{tp.upper()}: {exc.reason}")
                continue
            ex = probe.request("OPTIONS", probe.server_uri(), from_user="probe", timeout=ctx.remaining(self.timeout_s),
                               note=f"plaintext {tp.upper()} accepted?")
            refs.append(ex.ref)
            notes.append(f"{tp.upper()}: {ex.summary()}")
            if ex.status is not None and ex.status < 400:
                accepted.append(tp.upper())
        ok = not (forbidden and accepted)
        ctx.check(finding(PLAINTEXT, ok, ", ".join(accepted) or "refused",
                          "refused" if forbidden else "allowed by policy", "high" if forbidden else "info",
                          "; ".join(notes), refs))

    def _srtp(self, ctx: RunContext, probe: SipProbe, acc: Account, callee: str, *, over_tls: bool) -> None:
        auth = (acc.auth_username, acc.password.reveal())
        t = ctx.remaining(self.timeout_s)
        host = probe.local[0]
        port = 20000 + 2 * secrets.randbelow(10000)
        via = "over TLS" if over_tls else f"over {probe.channel.transport.upper()} (keys in clear: no TLS)"
        secure = place_call(probe, callee, from_user=acc.username, auth=auth, body=sdp_offer(host, port, srtp=True),
                            cancel_on_ring=False, timeout=t, note="SRTP offered (RTP/SAVP + a=crypto)?")
        plain = place_call(probe, callee, from_user=acc.username, auth=auth, body=sdp_offer(host, port, srtp=False),
                           cancel_on_ring=False, timeout=t, note="SRTP required (plain RTP/AVP refused)?")
        for call in (secure, plain):
            if call.final in (404, 480, 408) or call.final is None:
                ctx.check(finding_error(SRTP_OFFERED,
                                        f"the callee {callee} did not take the probe call ({call.outcome()}): "
                                        "SRTP cannot be judged", "medium", secure.refs + plain.refs))
                return
        answer = parse_sdp(secure.answer.body) if secure.answer is not None else []
        srtp_ok = any(m.srtp for m in answer)
        sev_offer = {"required": "high", "offered": "medium", "optional": "info"}[self.srtp]
        ctx.check(finding(SRTP_OFFERED, srtp_ok or self.srtp == "optional",
                          "accepted" if srtp_ok else "not accepted", "accepted", sev_offer,
                          f"SDES offer {via}: {secure.outcome()}" +
                          (f"; answer {', '.join(m.proto for m in answer)}" if answer else ""),
                          secure.refs))
        plain_refused = not plain.answered
        ctx.check(finding(SRTP_REQUIRED, plain_refused or self.srtp != "required",
                          "required" if plain_refused else "not required", "required" if self.srtp == "required"
                          else f"{self.srtp} by policy", "high" if self.srtp == "required" else "info",
                          f"plain RTP offer: {plain.outcome()}", plain.refs))
