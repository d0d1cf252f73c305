"""The ``tls_certificate`` step: the PBX's TLS certificate, chain, validity, expiry, host name and protocol
versions, one check each (``tls:handshake``, ``tls:chain``, ``tls:validity``, ``tls:expiry``, ``tls:hostname``,
``tls:protocols``)::

    steps:
      - tls_certificate: {min_days: 14}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.contracts.checkname import CheckName
from harness.contracts.verdict import CheckResult, Verdict
from harness.contracts.yamlsrc import Fields
from harness.probes import ProbeConnectError, ProbeSession, tlscheck
from harness.probes.probe_session import default_port
from harness.scenarios.context import RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_probe import ProbeStep, limit, probe_session

__all__ = ["TlsCertificate", "tls_checks"]

TLS = CheckName("tls")


@step("tls_certificate")
@dataclass(frozen=True)
class TlsCertificate(ProbeStep):
    """The PBX's TLS certificate: chain, validity and expiry, host name, protocol versions.

    ``name`` is the host name phones use (default: the profile's SIP domain, else its host);
    ``ca_file`` a CA bundle for a private PBX (relative to the scenario file).
    """

    port: int | None
    name: str | None
    ca_file: str | None
    min_days: float | None
    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> TlsCertificate:
        ca = f.opt("ca_file", str, None)
        if ca is not None:
            path = Path(ca) if Path(ca).is_absolute() else Path(scope.path).parent / ca
            if not path.is_file():
                raise f.fail("ca_file", f"CA file '{ca}' not found")
            ca = str(path)
        return cls(f.integer("port", None, low=1, high=65535), f.opt("name", str, None), ca,
                   f.number("min_days", None, low=0, high=3650),
                   f.number("timeout_ms", 3000, low=100, high=30000) / 1000.0)

    def run(self, ctx: RunContext) -> None:
        port = self.port or default_port(ctx.target, "tls")
        with probe_session(ctx, packets=12, timeout_s=self.timeout_s) as ps:
            name = self.name or ps.server_name
            for c in tls_checks(ps, port, name, self.ca_file or ctx.target.tls_ca_file,
                                limit(ctx, "tls_cert_min_days", self.min_days),
                                self.timeout_s):
                ctx.check(c)


def tls_checks(ps: ProbeSession, port: int, name: str, ca_file: str | None, min_days: float,
               timeout_s: float, base: CheckName = TLS) -> list[CheckResult]:
    """All TLS checks, each ``base`` with its metric; a failed handshake is one FAIL and the certificate
    checks are not run."""
    where = f"{ps.scope.address}:{port}"
    try:
        info = tlscheck.fetch(ps.scope, ps.budget, port, name, timeout_s)
    except ProbeConnectError as exc:
        return [CheckResult.of(base.with_metric("handshake"), Verdict.FAIL, exc.reason, "TLS handshake", op="==",
                               detail=f"no TLS at {where}: {exc.reason}; certificate checks not run",
                               metrics={"port": port})]
    out = [CheckResult.of(base.with_metric("handshake"), Verdict.PASS, info.version, "TLS handshake", op="==",
                          detail=f"{info.version} {info.cipher} at {where}",
                          metrics={"port": port, "cipher": info.cipher})]
    cert = tlscheck.decode(info.der)
    subject = ", ".join(f"{k}={v}" for rdn in cert.get("subject", ()) for k, v in rdn)
    issuer = ", ".join(f"{k}={v}" for rdn in cert.get("issuer", ()) for k, v in rdn)
    facts = {"subject": subject, "issuer": issuer, "not_before": cert.get("notBefore"),
             "not_after": cert.get("notAfter"), "serial": cert.get("serialNumber")}
    ok, why = tlscheck.verify(ps.scope, ps.budget, port, name, ca_file, timeout_s)
    out.append(CheckResult.of(base.with_metric("chain"), Verdict.PASS if ok else Verdict.FAIL, why, "verified",
                              op="==", detail=f"issuer {issuer}", metrics=facts))
    left, since = tlscheck.days_left(cert)
    valid_now = left >= 0 and since >= 0
    out.append(CheckResult.of(base.with_metric("validity"), Verdict.PASS if valid_now else Verdict.FAIL,
                              "valid" if valid_now else ("expired" if left < 0 else "not yet valid"), "valid",
                              op="==", detail=f"{cert.get('notBefore')} .. {cert.get('notAfter')}", metrics=facts))
    out.append(CheckResult.compare(base.with_metric("expiry"), left, ">=", min_days, "days",
                                   detail=f"expires {cert.get('notAfter')}"))
    matches, names = tlscheck.name_matches(cert, name)
    out.append(CheckResult.of(base.with_metric("hostname"), Verdict.PASS if matches else Verdict.FAIL, name,
                              "named in the certificate", detail=f"certificate names: {', '.join(names) or 'none'}",
                              metrics={"names": names}))
    # a version that could not be tested is not judged (ERROR with why), never a PASS on nothing
    report = tlscheck.protocol_report(ps.scope, ps.budget, port, name, timeout_s)
    verdict, value, detail = tlscheck.judge_protocols(report)
    out.append(CheckResult.of(base.with_metric("protocols"), Verdict(verdict), value, "TLSv1.2+ only", op="==",
                              detail=detail, metrics={"versions": {v: r.accepted for v, r in report.items()},
                                                      "how": {v: r.how for v, r in report.items()}}))
    return out
