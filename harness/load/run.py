"""One load run: profile and target checked, lab managed, Locust driven, results written.

``harness load`` comes through :func:`run_load`::

    outcome = run_load(settings, Path("scenarios/load-smoke.yaml"), target_file=None, out=Path("reports/x"),
                       options=LoadOptions(workers=0))
    outcome.verdict        # PASS when every SLA check passed

Input errors (profile, target, out dir) are raised before any process starts. With no target file
the embedded lab is used, started if needed and stopped afterwards only if this run started it.
Locust runs in-process (``workers=0``) or as a master on loopback with ``workers`` worker processes
(:mod:`harness.load.worker`). The run is bounded by the shape's end, ``limits.max_duration_s`` and
``limits.max_calls``, whichever comes first; then held calls hang up (the drain) and the outputs are
written: Locust's CSVs and HTML report, ``load.json`` (:mod:`harness.load.summary`), and
``results.json``/``junit.xml`` in the shape of :class:`harness.contracts.results.RunResult`.
"""

from __future__ import annotations

import csv
import json
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness
from harness.contracts.checkname import CheckName
from harness.contracts.errors import HarnessError, InputError
from harness.contracts.results import RunResult, ScenarioResult, write_json_atomic
from harness.contracts.settings import Settings
from harness.contracts.target import Target
from harness.contracts.verdict import CheckResult, Verdict
from harness.lab.stack import LabStack
from harness.load.plan import UacPlan, make_plan
from harness.load.profile import LoadProfile, load_profile
from harness.load.recorder import Recorder
from harness.load.summary import ARRIVALS, summarize
from harness.scenarios.session import lab_running, resolve_target

__all__ = ["LoadOptions", "LoadOutcome", "run_load"]

DRAIN_S = 10.0  # how long held and unanswered calls get to end after the load stops
WORKER_READY_S = 30.0
REPORT_WAIT_S = 3.5  # one Locust worker report interval (3 s) and a little: the last figures arrive


@dataclass(frozen=True)
class LoadOptions:
    web: bool = False
    web_port: int = 8089
    workers: int = 0  # 0: Locust in this process; N: a master here and N worker processes
    master_port: int = 0  # 0: any free loopback port


@dataclass
class LoadOutcome:
    run: RunResult
    summary: dict[str, Any]
    out: Path

    @property
    def verdict(self) -> Verdict:
        return self.run.verdict


def run_load(settings: Settings, profile_path: Path, *, target_file: Path | None, out: Path,
             options: LoadOptions = LoadOptions(), log: Callable[[str], None] = print,
             sinks: list[Any] | None = None) -> LoadOutcome:
    profile = load_profile(profile_path)
    target, stack = resolve_target(settings, target_file)
    make_plan(profile, target)  # every input error before anything starts
    if options.workers < 0 or options.workers > 64:
        raise InputError(f"--workers {options.workers}: must be between 0 and 64")
    if out.exists() and any(out.iterdir()):
        raise InputError(f"run directory {out} exists and is not empty; choose another with --out")
    with lab_running(settings, stack, log) as stack:
        target = stack.target if stack is not None else target
        plan = make_plan(profile, target)
        return _LoadRun(profile, plan, target, out.resolve(), options, log, sinks or [], stack).execute()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _LoadRun:
    """The stateful part of one run (Locust environment, engine or workers, media sampler)."""

    def __init__(self, profile: LoadProfile, plan: UacPlan, target: Target, out: Path, options: LoadOptions,
                 log: Callable[[str], None], sinks: list[Any], lab: LabStack | None):
        self.profile, self.plan, self.target, self.out = profile, plan, target, out
        self.options, self.log, self.sinks, self.lab = options, log, sinks, lab
        self.recorders: dict[str, Recorder] = {}
        self.drained: set[str] = set()
        self.procs: list[subprocess.Popen[bytes]] = []
        self.notes: list[str] = []
        self.stop_reason = "the shape ended"
        self.engine: Any = None
        self._t0_wall = time.time()

    # ---- the whole run ----------------------------------------------------------------------------
    def execute(self) -> LoadOutcome:
        import gevent  # noqa: F401  (locust below monkey-patches; gevent first keeps the warning away)
        import locust  # noqa: F401

        self.out.mkdir(parents=True, exist_ok=True)
        self._logging()
        t_started = time.time()
        run = RunResult(run_id=self.out.name, out_dir=str(self.out), target=self.target.public(),
                        harness_version=harness.__version__, started=t_started)
        for sink in self.sinks:
            sink.run_started(run)
        interrupted = False
        summary: dict[str, Any] = {}
        try:
            summary = self._run()
        except KeyboardInterrupt:
            interrupted = True
            self.notes.append("interrupted")
            summary = self._summarize(self._t0_wall, [])
            raise
        except HarnessError as exc:  # e.g. the workers did not start: recorded, then reported by the CLI
            self.notes.append(str(exc).splitlines()[0])
            raise
        finally:
            res = self._scenario_result(summary, t_started)
            run.scenarios = [res]
            run.interrupted = interrupted
            run.finished = time.time()
            self._write(run, summary)
            for sink in self.sinks:
                sink.scenario_finished(run, res)
                sink.run_finished(run)
        return LoadOutcome(run, summary, self.out)

    def _logging(self) -> None:
        logger = logging.getLogger("locust")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        handler = logging.FileHandler(self.out / "locust.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)

    def _run(self) -> dict[str, Any]:
        import gevent
        from gevent.event import Event
        from locust.env import Environment
        from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter

        from harness.load.media_sampler import MediaSampler
        from harness.load.users import make_shape, make_user_class

        profile, opts = self.profile, self.options
        env = Environment(user_classes=[make_user_class(profile)], shape_class=make_shape(profile), stop_timeout=0)
        stopped = Event()
        env.events.test_stop.add_listener(lambda **_kw: stopped.set())
        try:
            runner = self._runner(env)
        except BaseException:
            for proc in self.procs:  # workers that did start must not outlive the failed run
                proc.kill()
            self._reap_workers()
            if self.engine is not None:
                self.engine.close()
            raise
        media = MediaSampler(profile.media, self.target, self.out / "media", profile.timeline, self.log)
        csv_writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, str(self.out / "locust"), full_history=True)
        greenlets = [gevent.spawn(csv_writer.stats_writer)]
        argv = sys.argv
        if opts.web:
            # Locust's UI parses sys.argv with its own option parser on every page load; ours is not its
            sys.argv = argv[:1]
            env.create_web_ui(host="127.0.0.1", port=opts.web_port)
            self.log(f"Locust web UI: http://127.0.0.1:{opts.web_port}/ (open while the run lasts)")
        try:
            if media.enabled:
                self.log(f"media: {len(media.calls)} calls between {profile.media.caller} and "
                         f"{profile.media.callee} ({profile.media.talk_s:g} s each)")
                try:
                    media.prepare()
                except HarnessError as exc:  # the load still runs; the MOS checks become ERROR
                    why = str(exc).splitlines()[0]
                    self.notes.append(f"media parties failed: {why}")
                    self.log(f"media parties failed, the load runs without them: {why}")
                    media.fail_all(f"media parties failed: {why}")
            self.log(f"load: {profile.name}, {profile.mode} mode, {len(profile.stages)} steps, "
                     f"{profile.timeline.duration_s:g} s, target {self.plan.host}:{self.plan.port}"
                     + (f", {opts.workers} workers" if opts.workers else ""))
            self._t0_wall, t0 = time.time(), time.perf_counter()
            if profile.mode == "rate":
                if self.engine is not None:
                    self.engine.follow(profile.timeline, t0)
                else:
                    runner.send_message("harness_start", {"t0_wall": self._t0_wall, "workers": opts.workers})
            runner.start_shape()
            media.start(t0)
            try:
                self._watch(runner, stopped, t0)
            except KeyboardInterrupt:
                # hang up what is up (briefly) so that the PBX is not left with open calls, then report
                self.stop_reason = "interrupted"
                runner.stop()
                self._finish(runner, drain_s=3.0)
                media.stop()
                raise
            self._finish(runner)
            media.stop()
        finally:
            gevent.killall(greenlets, block=True, timeout=2)
            csv_writer.close_files()
            self._final_csv(env)
            if env.web_ui is not None:
                env.web_ui.stop()
                sys.argv = argv
            runner.quit()
            if self.engine is not None:
                self.engine.close()
            self._reap_workers()
        self._html(env)
        return self._summarize(self._t0_wall, media.analyze())

    # ---- Locust runners ---------------------------------------------------------------------------
    def _runner(self, env: Any) -> Any:
        from harness.load.engine import LoadEngine
        from harness.load.users import attach_engine

        if self.options.workers == 0:
            runner = env.create_local_runner()
            self.engine = LoadEngine(self.plan, fire=env.events.request.fire,
                                     poisson=self.profile.arrival == "poisson")
            self.recorders["local"] = self.engine.recorder
            attach_engine(env, self.engine)
            self.engine.start()
            return runner
        port = self.options.master_port or _free_port()
        runner = env.create_master_runner(master_bind_host="127.0.0.1", master_bind_port=port)

        def on_report(client_id: str, data: dict[str, Any], **_kw: Any) -> None:
            part = data.get("harness_load")
            if part:
                self.recorders.setdefault(client_id, Recorder()).merge(part, same_process=True)

        def on_drained(environment: Any, msg: Any, **_kw: Any) -> None:
            on_report(msg.node_id, {"harness_load": msg.data})
            self.drained.add(msg.node_id)

        env.events.worker_report.add_listener(on_report)
        runner.register_message("harness_drained", on_drained)
        self._spawn_workers(port)
        import gevent

        deadline = time.monotonic() + WORKER_READY_S
        while len(runner.clients.ready) < self.options.workers:
            dead = [p for p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{len(dead)} exited" if dead else f"only {len(runner.clients.ready)} connected"
                raise HarnessError(f"load workers did not start ({why}); see {self.out / 'workers'}")
            gevent.sleep(0.1)
        return runner

    def _spawn_workers(self, port: int) -> None:
        wdir = self.out / "workers"
        wdir.mkdir(exist_ok=True)
        share = json.dumps(self.plan.share(self.options.workers).to_wire())
        deadline = self.profile.timeline.duration_s + DRAIN_S + 120.0
        for i in range(self.options.workers):
            with (wdir / f"worker-{i}.log").open("ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "harness.load.worker", "--master-port", str(port), "--profile",
                     self.profile.path, "--index", str(i), "--deadline-s", f"{deadline:.0f}",
                     "--drain-s", str(DRAIN_S), "--log", str(wdir / f"worker-{i}.locust.log")],
                    stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            assert proc.stdin is not None
            proc.stdin.write(share.encode() + b"\n")  # the plan (with any password) over the pipe only
            proc.stdin.close()
            self.procs.append(proc)

    def _reap_workers(self) -> None:
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # ---- while it runs ----------------------------------------------------------------------------
    def _watch(self, runner: Any, stopped: Any, t0: float) -> None:
        """Wait for the shape to end, stopping early at a bound (time, calls) or when workers die."""
        limits = self.profile.limits
        end = t0 + min(limits.max_duration_s, self.profile.timeline.duration_s + 2.0)
        while not stopped.wait(0.25):
            now = time.perf_counter()
            if now >= end:
                self.stop_reason = f"time bound ({limits.max_duration_s:g} s or the shape's end) reached"
                break
            if self._started(runner.environment) >= limits.max_calls:
                self.stop_reason = f"call bound (limits.max_calls {limits.max_calls}) reached"
                break
            if self.procs and all(p.poll() is not None for p in self.procs):
                self.stop_reason = "every load worker exited"
                self.notes.append(self.stop_reason)
                break
        if not stopped.is_set():
            runner.stop()

    def _started(self, env: Any) -> int:
        """Transactions started so far: exact in-process, from the workers' reports (3 s late) otherwise."""
        if self.engine is not None:
            return int(self.engine.started)
        entries = env.stats.entries
        return sum(entries[(name, "SIP")].num_requests for name in ARRIVALS if (name, "SIP") in entries)

    def _finish(self, runner: Any, drain_s: float = DRAIN_S) -> None:
        """After the load: held calls hang up, and every figure reaches this process."""
        import gevent

        if self.engine is not None:
            left = self.engine.drain(drain_s)
            if left:
                self.notes.append(f"{left} transactions still open {drain_s:g} s after the load ended")
            for text in self.engine.flow_errors:
                logging.getLogger("locust").error("load flow error:\n%s", text)
            return
        deadline = time.monotonic() + drain_s + 5.0
        while len(self.drained) < len(self.procs) and time.monotonic() < deadline:
            if all(p.poll() is not None for p in self.procs):
                break
            gevent.sleep(0.2)
        if len(self.drained) < len(self.procs):
            self.notes.append(f"{len(self.procs) - len(self.drained)} workers did not report their last figures")
        gevent.sleep(REPORT_WAIT_S)

    # ---- outputs ----------------------------------------------------------------------------------
    def _merged(self) -> Recorder:
        merged = Recorder()
        for rec in self.recorders.values():
            merged.merge(rec.to_wire(), same_process=False)
        return merged

    def _summarize(self, t0_wall: float, media: list[dict[str, Any]]) -> dict[str, Any]:
        return summarize(self._merged(), t0_wall, self.profile, media=media, run_info={
            "stop_reason": self.stop_reason, "workers": self.options.workers, "notes": self.notes,
            "target": {"host": self.plan.host, "port": self.plan.port, "call_uri": self.plan.call_uri}})

    def _final_csv(self, env: Any) -> None:
        """Locust's writer rewrites its files every second; write the final figures once more."""
        from locust.stats import PERCENTILES_TO_REPORT, StatsCSV

        final = StatsCSV(env, PERCENTILES_TO_REPORT)
        with (self.out / "locust_stats.csv").open("w", newline="") as fh:
            final.requests_csv(csv.writer(fh))
        with (self.out / "locust_failures.csv").open("w", newline="") as fh:
            final.failures_csv(csv.writer(fh))

    def _html(self, env: Any) -> None:
        from locust.html import get_html_report

        (self.out / "locust.html").write_text(get_html_report(env, show_download_link=False), encoding="utf-8")

    def _scenario_result(self, summary: dict[str, Any], t_started: float) -> ScenarioResult:
        res = ScenarioResult(name=f"load:{self.profile.name}", file=self.profile.path, started=t_started,
                             duration_s=time.time() - t_started, out_dir=".")
        res.checks = [CheckResult(**{**c, "verdict": Verdict(c["verdict"]), "id": CheckName.from_dict(c.get("id"))})
                      for c in summary.get("checks", [])]
        res.sip = {"load": {"mode": self.profile.mode, "stop_reason": self.stop_reason, "steps": [
            {k: s[k] for k in ("index", "label", "target", "target_unit", "achieved", "rate_achieved_pct",
                               "success_rate_pct", "calls_up_max")}
            | {"setup": {q: s["requests"].get("call:setup", {}).get(q) for q in ("p50_ms", "p95_ms", "p99_ms")},
               "failures": {n: f["failures_by_code"] for n, f in s["requests"].items() if f["failures_by_code"]}}
            for s in summary.get("steps", [])]}}
        res.audio = {f"step{m['step'] + 1}:{name}": d for m in summary.get("media", [])
                     for name, d in (m.get("directions") or {}).items()}
        res.artifacts = {name: name for name in ("load.json", "locust_stats.csv", "locust_stats_history.csv",
                                                 "locust_failures.csv", "locust.html", "locust.log")
                         if (self.out / name).exists() or name == "load.json"}
        if self.notes:
            res.error = {"step": "load", "line": None, "message": "; ".join(self.notes), "kind": "load"}
        res.finish()
        return res

    def _write(self, run: RunResult, summary: dict[str, Any]) -> None:
        from harness.report.junit import write_junit

        write_json_atomic(self.out / "load.json", summary)
        data = run.to_dict()
        write_json_atomic(self.out / "results.json", data)
        write_junit(data, self.out / "junit.xml")
