"""System suite steps: is the PBX reachable, how fast does it answer, does media flow, is its DNS and clock
sound (its TLS certificate: ``steps_tls.py``).

Each step probes with raw SIP (:mod:`harness.probes`, through :func:`~harness.scenarios.steps_probe.probe_session`),
bounded in packets and time, and adds one check per question. Thresholds come from the step's parameters,
else the scenario's or the target profile's ``thresholds:`` (same key), else the defaults::

    steps:
      - reachability: {transports: [udp, tcp, tls]}
      - options_rtt: {count: 20, max_p95_ms: 250}
      - register_time: {account: caller}
      - tls_certificate: {min_days: 14}
      - dns: {}
      - clock: {max_skew_s: 5}

The raw SIP of every probe goes to ``probes-evidence.txt`` in the scenario directory (passwords
and digest responses masked).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from harness.contracts.checkname import CheckName
from harness.contracts.errors import HarnessError
from harness.contracts.target import TRANSPORTS
from harness.contracts.verdict import CheckResult, Verdict
from harness.contracts.yamlsrc import Fields
from harness.probes import ProbeConnectError, ProbeSession
from harness.probes.probe_session import default_port
from harness.probes.probe_uac import register
from harness.probes.sanity import date_skew, resolve
from harness.probes.scope import is_ip_literal
from harness.probes.timing import percentile, summarize
from harness.scenarios.context import RunContext
from harness.scenarios.registry import ParseScope, step
from harness.scenarios.steps_probe import ProbeStep, limit, pick_account, probe_session, transport_param

__all__: list[str] = []  # steps are reached through the registry

OPTIONS_RTT = CheckName("options_rtt")
REGISTER_TIME = CheckName("register_time")
DNS = CheckName("dns")
CLOCK_SKEW = CheckName("clock", metric="skew")


# ---- reachability ----------------------------------------------------------------------------------------
@step("reachability")
@dataclass(frozen=True)
class Reachability(ProbeStep):
    """Does the PBX answer SIP on each transport? One check per transport: answered, or why not.

    ``transports`` (default udp, tcp, tls) are all judged: one the PBX does not offer is a FAIL
    saying so, never a silent pass. ``ports`` overrides the conventional ports (UDP/TCP on the
    profile's port, TLS on the next one).
    """

    transports: tuple[str, ...]
    ports: tuple[tuple[str, int], ...]
    probes: int
    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Reachability:
        raw = f.opt("transports", list, list(TRANSPORTS))
        for t in raw:
            if t not in TRANSPORTS:
                raise f.fail("transports", f"unknown transport {t!r} (known: {', '.join(TRANSPORTS)})")
        if not raw:
            raise f.fail("transports", "needs at least one transport")
        ports_raw = f.opt("ports", dict, {})
        pf = Fields(ports_raw, f.path, f.error, f.field_name("ports"), f.line_of("ports"))
        ports = tuple((t, pf.integer(t, None, low=1, high=65535)) for t in TRANSPORTS if t in ports_raw)
        pf.done()
        return cls(tuple(dict.fromkeys(raw)), ports, f.integer("probes", 3, low=1, high=10),
                   f.number("timeout_ms", 2000, low=50, high=30000) / 1000.0)

    def run(self, ctx: RunContext) -> None:
        ports = dict(self.ports)
        with probe_session(ctx, packets=len(self.transports) * (self.probes * 4 + 1), timeout_s=self.timeout_s) as ps:
            for tp in self.transports:
                port = ports.get(tp, default_port(ctx.target, tp))
                ctx.check(self._one(ctx, ps, tp, port))

    def _one(self, ctx: RunContext, ps: ProbeSession, tp: str, port: int) -> CheckResult:
        name = CheckName("reachability", subject=tp)
        where = f"{ps.scope.address}:{port}"
        configured = tp == ctx.target.transport or tp in dict(self.ports)
        try:
            probe = ps.probe(tp, port=port)
        except ProbeConnectError as exc:
            return CheckResult.of(name, Verdict.FAIL, exc.reason, "answers", op="==", detail=(
                f"{tp.upper()} {where}: {exc.reason}" + ("" if configured else
                                                         " (not offered: the profile does not name this transport)")),
                metrics={"port": port, "configured": configured})
        rtts, codes, refs = [], [], []
        for _ in range(self.probes):
            ex = probe.request("OPTIONS", f"sip:{ctx.target.host}:{port}", from_user="probe",
                               timeout=ctx.remaining(self.timeout_s), note=f"reachability {tp}")
            refs.append(ex.ref)
            if ex.error:
                return CheckResult.of(name, Verdict.FAIL, ex.error, "answers", op="==",
                                      detail=f"{tp.upper()} {where}: {ex.error}",
                                      metrics={"port": port, "configured": configured, "evidence": refs})
            if ex.rtt_ms is not None:
                rtts.append(ex.rtt_ms)
                codes.append(ex.status)
        metrics = {"port": port, "configured": configured, "answered": len(rtts), "sent": self.probes,
                   "rtt_ms": round(statistics.median(rtts), 3) if rtts else None, "codes": codes,
                   "evidence": refs}
        if not rtts:
            return CheckResult.of(name, Verdict.FAIL, "no answer", "answers", op="==", metrics=metrics,
                                  detail=f"{tp.upper()} {where}: {self.probes} OPTIONS unanswered within "
                                         f"{self.timeout_s:.1f} s each")
        return CheckResult.of(name, Verdict.PASS, "answered", "answers", op="==", metrics=metrics,
                              detail=f"{tp.upper()} {where}: {codes[-1]} in {metrics['rtt_ms']} ms")


# ---- OPTIONS round trip ----------------------------------------------------------------------------------
@step("options_rtt")
@dataclass(frozen=True)
class OptionsRtt(ProbeStep):
    """``count`` OPTIONS (one at a time, ``interval_ms`` apart): p50 and p95 round trip, and loss."""

    count: int
    interval_s: float
    transport: str | None
    max_p50_ms: float | None
    max_p95_ms: float | None
    max_loss_pct: float | None
    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> OptionsRtt:
        return cls(f.integer("count", 20, low=2, high=200), f.number("interval_ms", 50, low=0, high=5000) / 1000.0,
                   transport_param(f), f.number("max_p50_ms", None, low=0), f.number("max_p95_ms", None, low=0),
                   f.number("max_loss_pct", None, low=0, high=100),
                   f.number("timeout_ms", 1000, low=50, high=10000) / 1000.0)

    def run(self, ctx: RunContext) -> None:
        rtts: list[float] = []
        lost = 0
        with probe_session(ctx, packets=self.count + 2, timeout_s=self.timeout_s) as ps:
            try:
                probe = ps.probe(self.transport)
            except ProbeConnectError as exc:
                ctx.check(CheckResult.error(OPTIONS_RTT.with_metric("p50"), f"cannot reach the PBX: {exc}"))
                return
            first = last = 0
            for i in range(self.count):
                if time.monotonic() > ctx.deadline:
                    break
                ex = probe.request("OPTIONS", probe.server_uri(), from_user="probe", retransmit=False,
                                   timeout=ctx.remaining(self.timeout_s), note=f"rtt probe {i + 1}/{self.count}")
                first, last = first or ex.ref, ex.ref
                if ex.rtt_ms is None:
                    lost += 1
                else:
                    rtts.append(ex.rtt_ms)
                time.sleep(self.interval_s)
        sent = len(rtts) + lost
        metrics: dict[str, Any] = {**summarize(rtts), "sent": sent, "lost": lost, "evidence": [first, last]}
        ctx.extra.setdefault("system", {})["options_rtt"] = metrics
        ctx.check(CheckResult.compare(OPTIONS_RTT.with_metric("p50"), percentile(rtts, 50), "<=",
                                      limit(ctx, "options_rtt_p50_ms", self.max_p50_ms), "ms", metrics=metrics))
        ctx.check(CheckResult.compare(OPTIONS_RTT.with_metric("p95"), percentile(rtts, 95), "<=",
                                      limit(ctx, "options_rtt_p95_ms", self.max_p95_ms), "ms", metrics=metrics))
        loss = round(100.0 * lost / sent, 2) if sent else None
        ctx.check(CheckResult.compare(OPTIONS_RTT.with_metric("loss"), loss, "<=",
                                      limit(ctx, "options_loss_pct", self.max_loss_pct), "%",
                                      detail=f"{lost} of {sent} unanswered within {self.timeout_s:.1f} s"))


# ---- REGISTER response time ------------------------------------------------------------------------------
@step("register_time")
@dataclass(frozen=True)
class RegisterTime(ProbeStep):
    """REGISTER with digest (challenge round included) for ``account``, then unregister: total time."""

    account: str | None
    transport: str | None
    max_ms: float | None
    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> RegisterTime:
        return cls(f.opt("account", str, None), transport_param(f), f.number("max_ms", None, low=1),
                   f.number("timeout_ms", 3000, low=100, high=30000) / 1000.0)

    def run(self, ctx: RunContext) -> None:
        acc = pick_account(ctx, self.account)
        if acc is None:
            ctx.check(CheckResult.error(REGISTER_TIME, "the target profile has no account to register"))
            return
        threshold = limit(ctx, "register_time_ms", self.max_ms)
        with probe_session(ctx, packets=16, timeout_s=self.timeout_s) as ps:
            try:
                probe = ps.probe(self.transport)
            except ProbeConnectError as exc:
                ctx.check(CheckResult.error(REGISTER_TIME, f"cannot reach the PBX: {exc}", threshold, "ms"))
                return
            reg = register(probe, acc.username, acc.password.reveal(), auth_user=acc.auth_username,
                           note=f"REGISTER {acc.name}", timeout=ctx.remaining(self.timeout_s))
            if reg.code == 200:
                register(probe, acc.username, acc.password.reveal(), auth_user=acc.auth_username, expires=0,
                         note=f"unREGISTER {acc.name}", timeout=ctx.remaining(self.timeout_s))
        legs = [e.final_ms for e in reg.exchanges]
        metrics = {"account": acc.name, "code": reg.code, "challenged": reg.challenged,
                   "transactions_ms": legs, "evidence": reg.refs}
        if reg.code != 200:
            code = reg.code
            ctx.check(CheckResult.of(REGISTER_TIME, Verdict.FAIL if code else Verdict.ERROR, reg.total_ms, threshold,
                                     "ms", "<=", metrics=metrics,
                                     detail=f"REGISTER {acc.name} ended with {code}" if code else
                                     "no answer to REGISTER"))
            return
        ctx.check(CheckResult.compare(REGISTER_TIME, reg.total_ms, "<=", threshold, "ms", metrics=metrics,
                                      detail="challenge + authenticated REGISTER" if reg.challenged else ""))


# ---- RTP both ways ---------------------------------------------------------------------------------------
@step("expect_rtp")
@dataclass(frozen=True)
class ExpectRtp(ProbeStep):
    """Media reaches each end of call ``call``: of the RTP packets one end sent, the other received at least
    ``min_delivered_pct`` (95), counted by both parties' own stacks, and at least ``min_packets`` (50, one
    second of 20 ms packets) were sent at all, or the call was too short to tell.

    This is the RTP-port reachability check: a PBX media port that is blocked or mis-advertised shows
    up as one side receiving nothing, and media that stops after a moment as a low delivered share. Run
    it while the call is up (before ``hangup``).
    """

    alias: str
    min_packets: int
    min_delivered_pct: float = 95.0

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> ExpectRtp:
        return cls(scope.call(f, "call", "main"), f.integer("min_packets", 50, low=1, high=100000),
                   f.number("min_delivered_pct", 95.0, low=0, high=100))

    def run(self, ctx: RunContext) -> None:
        leg = ctx.calls[self.alias]
        if leg.callee is None or leg.callee_call is None:
            ctx.check(CheckResult.error(CheckName("rtp", call=self.alias),
                                        "the callee is not a party of this scenario"))
            return
        sides = ((leg.caller, leg.caller_call, leg.callee, leg.callee_call),
                 (leg.callee, leg.callee_call, leg.caller, leg.caller_call))
        for src, src_call, dst, dst_call in sides:
            name = CheckName("rtp", direction=(src, dst))
            try:
                sent, got = ctx.party(src).stats(src_call), ctx.party(dst).stats(dst_call)
            except HarnessError as exc:
                ctx.check(CheckResult.error(name, f"no RTP statistics: {exc}"))
                continue
            tx, rx = (sent or {}).get("tx_packets"), (got or {}).get("rx_packets")
            metrics = {"remote_rtp": (got or {}).get("remote_rtp"), "codec": (got or {}).get("codec"),
                       "rx_packets": rx, "tx_packets": tx, "rx_lost": (got or {}).get("rx_lost")}
            if not isinstance(tx, int) or not isinstance(rx, int):
                ctx.check(CheckResult.error(name, "RTP packets not counted", self.min_delivered_pct, "%"))
                continue
            if tx < self.min_packets:
                ctx.check(CheckResult.of(name, Verdict.ERROR, None, self.min_delivered_pct, "%", ">=",
                                         f"{src} sent only {tx} packets (needs {self.min_packets}): the call was too "
                                         "short to judge", metrics))
                continue
            share = round(min(100.0, 100.0 * rx / tx), 1)
            ctx.check(CheckResult.compare(name, share, ">=", self.min_delivered_pct, "%",
                                          detail=f"{dst} received {rx} of the {tx} packets {src} sent, from "
                                                 f"{metrics['remote_rtp'] or '?'}", metrics=metrics))

# ---- DNS -------------------------------------------------------------------------------------------------
@step("dns")
@dataclass(frozen=True)
class Dns(ProbeStep):
    """The target's host name: resolves, quickly, to the same addresses each time.

    Not applicable when the profile gives an IP address (no check is added; the log says so).
    """

    lookups: int
    max_ms: float | None

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Dns:
        return cls(f.integer("lookups", 3, low=1, high=10), f.number("max_ms", None, low=1))

    def run(self, ctx: RunContext) -> None:
        host = ctx.target.host
        if is_ip_literal(host):
            ctx.log(f"    dns: not applicable (the target is the address {host})")
            ctx.extra.setdefault("not_applicable", []).append("dns")
            return
        results = [resolve(host, ctx.target.port) for _ in range(self.lookups)]
        failed = [r for r in results if r.error]
        sets = {tuple(sorted(r.addresses)) for r in results if not r.error}
        addrs = sorted({a for r in results for a in r.addresses})
        ctx.check(CheckResult.of(DNS.with_metric("resolves"), Verdict.FAIL if failed else Verdict.PASS,
                                 ", ".join(addrs) or failed[0].error, "resolves", op="==",
                                 detail=f"{len(failed)} of {len(results)} lookups failed: {failed[0].error}" if failed
                                 else "", metrics={"host": host}))
        times = [r.ms for r in results if r.ms is not None]
        ctx.check(CheckResult.compare(DNS.with_metric("time"), percentile(times, 50), "<=",
                                      limit(ctx, "dns_time_ms", self.max_ms), "ms", metrics={"lookups_ms": times}))
        if not failed:
            ctx.check(CheckResult.of(DNS.with_metric("stable"), Verdict.PASS if len(sets) == 1 else Verdict.FAIL,
                                     len(sets), 1, "answers", "==",
                                     detail="" if len(sets) == 1 else f"answers differ: {sorted(sets)}"))


# ---- clock -----------------------------------------------------------------------------------------------
@step("clock")
@dataclass(frozen=True)
class Clock(ProbeStep):
    """The PBX's clock against ours, from the Date header of its answers (OPTIONS, then REGISTER).

    A PBX that sends no Date cannot be judged: with ``required: true`` that is an ERROR, otherwise
    the step adds no check and the log says so.
    """

    account: str | None
    max_skew_s: float | None
    required: bool
    timeout_s: float

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Clock:
        return cls(f.opt("account", str, None), f.number("max_skew_s", None, low=0),
                   f.opt("required", bool, False), f.number("timeout_ms", 2000, low=100, high=30000) / 1000.0)

    def run(self, ctx: RunContext) -> None:
        skew, refs = None, []
        with probe_session(ctx, packets=16, timeout_s=self.timeout_s) as ps:
            try:
                probe = ps.probe()
            except ProbeConnectError as exc:
                ctx.check(CheckResult.error(CLOCK_SKEW, f"cannot reach the PBX: {exc}"))
                return
            ex = probe.request("OPTIONS", probe.server_uri(), from_user="probe", note="clock (Date header)",
                               timeout=ctx.remaining(self.timeout_s))
            refs.append(ex.ref)
            skew = _skew(ex)
            acc = pick_account(ctx, self.account)
            if skew is None and acc is not None:
                reg = register(probe, acc.username, acc.password.reveal(), auth_user=acc.auth_username,
                               note="clock (Date of the REGISTER answer)", timeout=ctx.remaining(self.timeout_s))
                refs += reg.refs
                skew = next((s for s in (_skew(e) for e in reversed(reg.exchanges)) if s is not None), None)
                if reg.code == 200:
                    register(probe, acc.username, acc.password.reveal(), auth_user=acc.auth_username, expires=0,
                             note="unREGISTER", timeout=ctx.remaining(self.timeout_s))
        threshold = limit(ctx, "clock_skew_s", self.max_skew_s)
        if skew is None:
            if self.required:
                ctx.check(CheckResult.error(CLOCK_SKEW, "the PBX sends no Date header: its clock cannot be "
                                            "compared", threshold, "s"))
            else:
                ctx.log("    clock: not judged (the PBX sends no Date header)")
                ctx.extra.setdefault("not_applicable", []).append("clock")
            return
        ctx.check(CheckResult.compare(CLOCK_SKEW, abs(skew), "<=", threshold, "s",
                                      detail=f"the PBX is {abs(skew):.0f} s {'ahead' if skew >= 0 else 'behind'}",
                                      metrics={"skew_s": skew, "evidence": refs}))


def _skew(ex: Any) -> float | None:
    final = ex.final
    if final is None or not final.msg.header("Date"):
        return None
    # the Date was written when the answer left: compare with the wall clock at its arrival
    arrival = time.time() - (time.monotonic() - final.at)
    return date_skew(final.msg.header("Date"), arrival)
