"""Run scenarios against a target: parties up, steps in order, checks judged, results stored.

Each scenario gets its own directory under the run directory (party logs with the SIP messages,
received WAVs). ``results.json`` and ``junit.xml`` are rewritten after every scenario, so a crash
or an interrupt keeps everything judged so far. A scenario never takes the run down: a crashed
party, a timeout or a dead lab component becomes an ERROR with the step that hit it and the last
log lines, and the run goes on with the next scenario.
"""

from __future__ import annotations

import re
import socket
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import harness
from harness.contracts.checkname import CheckName
from harness.contracts.errors import HarnessError, LabError, PartyError, PartyTimeout, StepFailed, is_harness_side
from harness.contracts.results import DEFAULT_RERUNS, RunResult, ScenarioResult, write_json_atomic
from harness.contracts.siplog import mask_file, read_messages, write_call_log
from harness.contracts.target import Target
from harness.contracts.verdict import CheckResult, Verdict
from harness.health import HostMonitor, PartySeries, assess
from harness.health.procs import ProcessWatch
from harness.lab.stack import LabStack
from harness.report.junit import write_junit
from harness.scenarios.context import RunContext
from harness.scenarios.rerun import set_aside, starved_reasons
from harness.scenarios.run_health import (
    clock_bound,
    health_limits,
    lab_media_pids,
    lab_service_series,
    media_check,
    reaches,
)
from harness.scenarios.scenario_model import Scenario
from harness.sip import AutoPolicy, Party

__all__ = ["RunSink", "Runner", "slug"]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-") or "scenario"


def local_ip_for(host: str, port: int) -> str:
    """The local address the OS would use to reach ``host`` (no packet is sent)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((host, port))
            return str(s.getsockname()[0])
    except OSError:
        return "127.0.0.1"


class RunSink(Protocol):
    """Something that wants results as they happen (the findings store, a live report)."""

    def run_started(self, run: RunResult) -> None: ...

    def scenario_finished(self, run: RunResult, result: ScenarioResult) -> None: ...

    def run_finished(self, run: RunResult) -> None: ...


class Runner:
    def __init__(self, target: Target, out_dir: Path, *, lab: LabStack | None = None,
                 log: Callable[[str], None] = print, sinks: list[RunSink] | None = None,
                 media_priority: str = "realtime", reruns: int = DEFAULT_RERUNS):
        self.target, self.out_dir, self.lab, self.log = target, out_dir, lab, log
        self.reruns = reruns  #: extra attempts for a scenario its starved host left unjudged
        self.sinks = list(sinks or [])
        self.media_priority = media_priority  #: the parties' scheduling (harness.sip.realtime)
        self.monitor: HostMonitor | None = None
        self.lab_watch: ProcessWatch | None = None
        self.local_ip = local_ip_for(target.host, target.port)  # 127.0.0.1 for the loopback lab
        self.run = RunResult(run_id=out_dir.name, out_dir=str(out_dir), target=target.public(),
                             harness_version=harness.__version__)

    def save(self) -> None:
        data = self.run.to_dict()
        write_json_atomic(self.out_dir / "results.json", data)
        write_junit(data, self.out_dir / "junit.xml")

    def run_all(self, scenarios: list[Scenario]) -> RunResult:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.save()
        for sink in self.sinks:
            sink.run_started(self.run)
        self.monitor = HostMonitor().start()
        if self.lab is not None:  # the lab PBX shares this host: watch its processes' run-queue waits
            self.lab_watch = ProcessWatch(partial(lab_media_pids, self.lab)).start()
        try:
            for sc in scenarios:
                self.run.scenarios.append(self.run_attempts(sc))
                self.save()
                for sink in self.sinks:
                    sink.scenario_finished(self.run, self.run.scenarios[-1])
        except KeyboardInterrupt:
            self.run.interrupted = True
            raise
        finally:
            self.monitor.stop()
            if self.lab_watch is not None:
                self.lab_watch.stop()
            self.run.finished = time.time()
            self.save()
            for sink in self.sinks:
                sink.run_finished(self.run)
        return self.run

    # ---- one scenario -----------------------------------------------------------------------------
    def run_attempts(self, sc: Scenario) -> ScenarioResult:
        """Run ``sc``, and again while its host's starvation left it unjudged (harness.scenarios.rerun)."""
        attempts: list[dict[str, Any]] = []
        res = self.run_one(sc, attempts)
        while len(attempts) < self.reruns and (reasons := starved_reasons(res)) is not None:
            attempts.append(set_aside(res, self.out_dir, len(attempts) + 1, reasons))
            self.log(f"  the harness could not judge {sc.name} (its host was overloaded): running it again, "
                     f"attempt {len(attempts) + 1} of {self.reruns + 1}; attempt {len(attempts)} is kept in "
                     f"{attempts[-1]['out_dir']}")
            res = self.run_one(sc, attempts)
        return res

    def run_one(self, sc: Scenario, attempts: list[dict[str, Any]] | None = None) -> ScenarioResult:
        sdir = self.out_dir / slug(sc.name)
        n = 2
        while sdir.exists():
            sdir = self.out_dir / f"{slug(sc.name)}-{n}"
            n += 1
        sdir.mkdir(parents=True)
        res = ScenarioResult(name=sc.name, file=sc.path, started=time.time(), out_dir=sdir.name,
                             attempts=list(attempts or []))
        self.log(f"scenario {sc.name} ({sc.path})")
        ctx = RunContext(sc, self.target, sdir, self.log, lab=self.lab)
        t0 = time.monotonic()
        current = "setup"
        interrupted = False
        try:
            ctx.begin_window("setup")
            if self._setup(ctx):
                for entry in sc.steps:
                    current = entry.label
                    if time.monotonic() > ctx.deadline:
                        raise StepFailed(f"scenario timeout of {sc.timeout_s:.0f} s reached")
                    ctx.begin_window(current)
                    entry.step.run(ctx)
                    ctx.end_window()
        except StepFailed as exc:
            res.error = {"step": current, "line": _line_of(sc, current), "message": str(exc), "kind": "failed"}
            self.log(f"    stopped at {current}: {exc}")
        except HarnessError as exc:
            tail = getattr(exc, "log_tail", "")
            blame = "harness" if is_harness_side(exc) else ""
            res.error = {"step": current, "line": _line_of(sc, current), "message": str(exc),
                         "kind": type(exc).__name__, "log_tail": tail, "blame": blame}
            ctx.check(CheckResult.error(CheckName("step", subject=current), str(exc), blame=blame))
        except Exception as exc:  # a bug in the harness: this scenario is an ERROR, the run goes on
            where = sdir / "internal-error.txt"
            where.write_text(traceback.format_exc())
            message = f"internal error ({type(exc).__name__}: {exc}); traceback in {where.name}"
            res.error = {"step": current, "line": _line_of(sc, current), "message": message,
                         "kind": "internal", "blame": "harness"}
            ctx.check(CheckResult.error(CheckName("step", subject=current), message, blame="harness"))
            ctx.artifacts["internal_error"] = where.name
        except KeyboardInterrupt:
            interrupted = True
            res.error = {"step": current, "line": _line_of(sc, current), "message": "interrupted",
                         "kind": "interrupted"}
            ctx.check(CheckResult.error(CheckName("step", subject=current), "the run was interrupted"))
        finally:
            ctx.end_window()
            if res.error is not None:
                done = {e.label for e in sc.steps[: _index_of(sc, current) + 1]}
                res.skipped_steps = [e.label for e in sc.steps if e.label not in done]
            res.health = self._settle_health(ctx, t0)
            self._collect_rtp(ctx)
            self._teardown(ctx)
            self._check_lab(ctx)
            self._keep_sip_evidence(ctx)
            res.checks = ctx.checks
            res.sip = {"calls": {a: leg.timings() for a, leg in ctx.calls.items()},
                       "registrations": ctx.registrations}
            res.audio, res.rtp = ctx.audio, ctx.rtp
            res.artifacts = {**ctx.artifacts, **self._logs(ctx)}
            res.duration_s = time.monotonic() - t0
            res.finish()
            self.log(f"  => {res.verdict.value} ({res.duration_s:.1f} s)")
        if interrupted:
            self.run.scenarios.append(res)
            raise KeyboardInterrupt
        return res

    def _setup(self, ctx: RunContext) -> bool:
        """Start one pjsua2 child per party and register the accounts. False when registration failed."""
        sc, target = ctx.scenario, self.target
        for name in sc.parties:
            ctx.parties[name] = Party(name, ctx.out_dir, local_ip=self.local_ip, transport=target.transport,
                                      codecs=target.codecs, priority=self.media_priority)
        with ThreadPoolExecutor(max_workers=max(1, len(ctx.parties))) as pool:
            for fut in [pool.submit(p.start) for p in ctx.parties.values()]:
                fut.result()
        for name, spec in sc.parties.items():
            account = target.account(spec.account)
            party = ctx.parties[name]
            a = spec.answer
            party.add_account(account, target, register=spec.register, auto=AutoPolicy(
                mode=a.mode, code=a.code, delay_ms=a.delay_ms, play=spec.play, loop=spec.loop,
                record=ctx.record_path(name) if spec.record else None, transfer=spec.transfer,
                hold_mute=spec.hold_mute, hold_music=spec.hold_music))
        ok = True
        deadline = time.monotonic() + float(ctx.threshold("register_timeout_s"))
        for name, spec in sc.parties.items():  # they registered side by side: one deadline for all
            if not spec.register:
                continue
            try:
                reg = ctx.parties[name].wait_registered(spec.account, max(0.1, deadline - time.monotonic()))
            except PartyTimeout:
                where = f"{target.host}:{target.port}/{target.transport}"
                ctx.registrations[name] = {"account": spec.account, "code": None, "reason": "no response"}
                ctx.check(CheckResult.of(CheckName("register", subject=name), Verdict.FAIL, "no response", 200, op="==",
                                         unit="SIP", detail=f"no answer from {where} to REGISTER within "
                                         f"{ctx.threshold('register_timeout_s')} s: the PBX is unreachable, or "
                                         "the target profile's address, port or transport is wrong"))
                ok = False
                continue
            ctx.registrations[name] = {"account": spec.account, "code": reg.code, "reason": reg.reason}
            ctx.check(CheckResult.of(CheckName("register", subject=name), Verdict.PASS if reg.ok else Verdict.FAIL,
                                     reg.code, 200, op="==", unit="SIP",
                                     detail="" if reg.ok else _reg_hint(reg.code, reg.reason)))
            ok = ok and reg.ok
        if not ok:
            raise StepFailed("registration failed; the scenario's steps were not run")
        return ok

    def _settle_health(self, ctx: RunContext, t_start: float) -> dict[str, Any]:
        """Judge the harness's own health over every window that measured checks (harness.health).

        A FAIL or ERROR measured while the harness was starved becomes ERROR blamed on the harness, with
        the figures; it never blames the PBX. Returns the scenario's health for results.json.
        """
        series: list[PartySeries] = []
        missing: list[str] = []
        stale: list[str] = []
        for name, party in ctx.parties.items():
            if not party.alive:
                missing.append(name)
                continue
            try:
                series.append(PartySeries.from_reply(name, party.health(t_start - 1.0)))
            except PartyError:
                missing.append(name)
        now = time.monotonic()
        if self.lab is not None:  # the lab's IVR/queue/echo parties carry media of these calls too
            lab_series = lab_service_series(self.lab, until=now)
            series += lab_series
            stale = [f"party {s.name} after {max(0.0, s.t[-1] - t_start) if s.t else 0.0:.1f} s (the lab's health"
                     " file had nothing later)" for s in lab_series if not reaches(s, now)]
        limits = health_limits(ctx)
        shared_host = self.lab is not None
        windows = []
        overloaded = False
        for w in ctx.windows:
            if not w.checks:
                continue
            t1 = w.t1 if w.t1 is not None else now
            host = self._host_over(w.t0, t1)
            wh = assess(w.t0, t1, series, host, limits)
            names = [ctx.checks[i].name for i in w.checks]
            entry = {"step": w.label, "checks": names, **wh.as_dict()}
            windows.append(entry)
            checks, before_s = list(w.checks), None
            if not wh.overloaded:
                # A stall just before a media window still shows in it: the jitter buffers grew then and shed
                # the added delay a frame at a time for seconds. Judge the time before it for the media checks.
                checks = [i for i in w.checks if media_check(ctx.checks[i])]
                b0 = max(t_start, w.t0 - limits.media_memory_s)
                if not checks or w.t0 - b0 < 0.5:
                    continue
                wh = assess(b0, w.t0, series, self._host_over(b0, w.t0), limits)
                if not wh.overloaded:
                    continue
                before_s = w.t0 - b0
                entry["before"] = {"seconds": round(before_s, 2), "overloaded": True, "reasons": wh.reasons}
            overloaded = True
            turned = []
            for i in checks:
                c = ctx.checks[i]
                if c.verdict is Verdict.PASS or not wh.spoils(clock_bound(c)):
                    continue
                measured = f"{c.value}{(' ' + c.unit) if c.unit else ''}" if c.value is not None else "no value"
                c.detail = (f"{wh.diagnosis(shared_host, before_s)}; measured {measured} against {c.op} {c.threshold}"
                            + (f" ({c.detail})" if c.detail else "")).replace("  ", " ")
                c.verdict, c.blame = Verdict.ERROR, "harness"
                c.metrics = {**c.metrics, "health": {"overloaded": True, "reasons": wh.reasons,
                                                     "window_s": round(t1 - w.t0, 2),
                                                     **({"before_s": round(before_s, 2)} if before_s else {})}}
                turned.append(c.name)
            entry["turned"] = turned
            if turned:
                self.log(f"    ERROR {wh.diagnosis(shared_host, before_s)}")
                self.log(f"          so these checks of {w.label} are ERROR, not the PBX's: {', '.join(turned)}")
        whole = assess(t_start, now, series, self._host_over(t_start, now), limits)
        return {"overloaded": overloaded, "limits": limits.as_dict(), "parties": whole.parties, "host": whole.host,
                "unmeasured": [f"party {n} (not running)" for n in missing] + stale + whole.unmeasured,
                "shared_host": shared_host, "windows": windows}

    def _host_over(self, t0: float, t1: float) -> dict[str, Any]:
        host: dict[str, Any] = self.monitor.over(t0, t1) if self.monitor is not None else {}
        if self.lab_watch is not None:
            host["lab_wait_ms"] = self.lab_watch.over(t0, t1)
        return host

    def _collect_rtp(self, ctx: RunContext) -> None:
        for alias, leg in ctx.calls.items():
            for party, cid in ((leg.caller, leg.caller_call), (leg.callee, leg.callee_call)):
                if party is None or cid is None or not ctx.parties.get(party) or not ctx.parties[party].alive:
                    continue
                try:
                    stats = ctx.parties[party].stats(cid)
                except PartyError:
                    continue
                if stats:
                    ctx.rtp.setdefault(alias, {})[party] = stats

    def _teardown(self, ctx: RunContext) -> None:
        # each child needs ~1 s to hang up, unregister and destroy pjsua: close them side by side
        with ThreadPoolExecutor(max_workers=max(1, len(ctx.parties))) as pool:
            list(pool.map(lambda p: p.close(), ctx.parties.values()))

    def _keep_sip_evidence(self, ctx: RunContext) -> None:
        """Mask credentials in the party logs, and keep each call's SIP messages in its own file."""
        entries = []
        for name, party in ctx.parties.items():
            mask_file(party.sip_log_file)
            mask_file(party.log_file)
            entries += read_messages(party.sip_log_file, name)
        for alias, leg in ctx.calls.items():
            if not leg.sip_call_id:
                continue
            dest = ctx.out_dir / f"sip-{slug(alias)}.log"
            if write_call_log(entries, {leg.sip_call_id}, dest):
                ctx.artifacts[f"sip:{alias}"] = dest.name

    def _check_lab(self, ctx: RunContext) -> None:
        if self.lab is None:
            return
        try:
            self.lab.check()
        except LabError as exc:
            ctx.check(CheckResult.error(CheckName("lab"), str(exc)))

    def _logs(self, ctx: RunContext) -> dict[str, str]:
        out = {}
        for name, p in ctx.parties.items():
            for kind, path in (("log", p.log_file), ("sip_log", p.sip_log_file)):
                if path.exists():
                    out[f"{kind}:{name}"] = path.name
        return out


def _reg_hint(code: int, reason: str) -> str:
    if code in (401, 403, 407):
        return f"{code} {reason}: wrong username or password for the account in the target profile"
    if code in (408, 503):
        return f"{code} {reason}: the PBX did not answer (unreachable, wrong address/port or transport)"
    return f"{code} {reason}"


def _index_of(sc: Scenario, label: str) -> int:
    for e in sc.steps:
        if e.label == label:
            return e.index
    return -1


def _line_of(sc: Scenario, label: str) -> Any:
    for e in sc.steps:
        if e.label == label:
            return e.line
    return None
