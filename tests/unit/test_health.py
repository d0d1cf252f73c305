"""The harness's own health: the child's book of lateness, host pressure, the window verdict, and the
runner turning a FAIL measured while the harness was starved into an ERROR blamed on the harness."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.cli import run_exit_code
from harness.contracts.errors import ExitCode, LabError, PartyCrashed, PartyTimeout, ScenarioError, is_harness_side
from harness.contracts.results import RunResult, ScenarioResult
from harness.contracts.target import Target
from harness.contracts.thresholds import HealthLimits
from harness.contracts.verdict import CheckResult, Verdict
from harness.findings.evidence import Clues
from harness.findings.rules import diagnose
from harness.health.host import HostMonitor, read_counters, shares
from harness.health.judge import PartySeries, assess
from harness.scenarios.context import RunContext
from harness.scenarios.runner import Runner
from harness.scenarios.scenario_model import Scenario
from harness.sip.health import BUCKET_S, HealthBook

PSI_CPU = "some avg10=0.00 avg60=0.00 avg300=0.00 total={}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
PSI_MEM = "some avg10=0.00 avg60=0.00 avg300=0.00 total={}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total={}\n"


# ---- the child's book ---------------------------------------------------------------------------------
def test_book_keeps_the_worst_lateness_per_bucket_and_answers_a_window() -> None:
    book = HealthBook()
    t = 1000.0
    book.watchdog(t + 0.01, 2.0)
    book.watchdog(t + 0.02, 7.5)
    book.clock(t + 0.03, 1.0)
    book.clock(t + 0.25, 45.0)  # the next-but-one bucket
    got = book.since(t, t + 0.3)
    assert got["bucket_s"] == BUCKET_S
    assert got["wake_max_ms"][0] == 7.5 and got["wake_n"][0] == 2
    assert max(got["clock_max_ms"]) == 45.0 and sum(got["clock_n"]) == 2
    assert book.since(t + 0.2)["wake_n"] == [0]  # only the later bucket, which had no wake-ups


# ---- host pressure --------------------------------------------------------------------------------------
def _proc(tmp_path: Path, cpu_us: int, mem_some: int, mem_full: int, io_full: int, steal: int) -> Path:
    psi = tmp_path / "pressure"
    psi.mkdir(exist_ok=True)
    (psi / "cpu").write_text(PSI_CPU.format(cpu_us))
    (psi / "memory").write_text(PSI_MEM.format(mem_some, mem_full))
    (psi / "io").write_text(PSI_MEM.format(io_full, io_full))
    stat = tmp_path / "stat"
    stat.write_text(f"cpu  100 0 100 1000 0 0 0 {steal} 0 0\ncpu0 50 0 50 500 0 0 0 0 0 0\n"
                    "cpu1 50 0 50 500 0 0 0 0 0 0\nintr 1\n")
    return psi


def test_read_counters_parses_psi_totals_and_steal(tmp_path: Path) -> None:
    psi = _proc(tmp_path, 5_000, 7, 3, 11, 200)
    got = read_counters(psi, tmp_path / "stat")
    assert got["cpu_some"] == 5000 and got["memory_full"] == 3 and got["io_full"] == 11
    assert got["steal"] == pytest.approx(200 * 1e6 / 100 / 2, rel=0.5)  # jiffies -> µs per CPU


def test_missing_pressure_files_are_not_measured_never_zero(tmp_path: Path) -> None:
    got = read_counters(tmp_path / "nothing", tmp_path / "no-stat")
    assert set(got.values()) == {None}
    rows = [(0.0, got), (1.0, got)]
    out = shares(rows)
    assert out["memory_full_pct"] is None and out["worst_1s"]["steal_pct"] is None


def test_shares_of_a_window_and_its_worst_second() -> None:
    def c(cpu: float, mem_full: float) -> dict[str, float | None]:
        return {"cpu_some": cpu, "memory_some": mem_full, "memory_full": mem_full, "io_full": 0.0, "steal": 0.0}

    # 4 s: memory stalls 0.5 s in the third second only
    rows = [(0.0, c(0, 0)), (1.0, c(100_000, 0)), (2.0, c(200_000, 0)), (3.0, c(300_000, 500_000)),
            (4.0, c(400_000, 500_000))]
    out = shares(rows)
    assert out["cpu_some_pct"] == pytest.approx(10.0)
    assert out["memory_full_pct"] == pytest.approx(12.5)
    assert out["worst_1s"]["memory_full_pct"] == pytest.approx(50.0)
    assert out["measured"] is True


def test_host_monitor_samples_with_a_given_reader() -> None:
    n = {"i": 0}

    def reader() -> dict[str, float | None]:
        n["i"] += 1
        return {"cpu_some": n["i"] * 1000.0, "memory_some": 0.0, "memory_full": 0.0, "io_full": 0.0, "steal": 0.0}

    mon = HostMonitor(reader=reader)
    mon.sample()
    mon.sample()
    t = mon.samples[-1][0]
    assert mon.over(t - 10, t + 1)["measured"] is True


# ---- the verdict over a window ---------------------------------------------------------------------------
def series(name: str, clock: float, wake: float, sched: str = "SCHED_RR") -> PartySeries:
    reply = {"t": [10.0, 10.1, 10.2], "wake_max_ms": [0.2, wake, 0.3], "wake_n": [10, 10, 10],
             "clock_max_ms": [0.5, clock, 0.4], "clock_n": [5, 5, 5],
             "priority": {"policy": sched, "priority": 20, "why": ""}}
    return PartySeries.from_reply(name, reply)


QUIET_HOST = {"measured": True, "worst_1s": {"cpu_some_pct": 30.0, "memory_full_pct": 0.0, "steal_pct": 0.0}}


def test_a_quiet_window_is_healthy() -> None:
    wh = assess(10.0, 10.3, [series("caller", 3.0, 5.0), series("agent", 1.0, 2.0)], QUIET_HOST, HealthLimits())
    assert not wh.overloaded and wh.reasons == [] and wh.unmeasured == []
    assert wh.parties["caller"] == {"wake_late_max_ms": 5.0, "media_late_max_ms": 3.0, "media_ticks": 15,
                                    "scheduling": "SCHED_RR 20"}


def test_a_late_media_clock_or_wake_up_overloads_the_window_with_figures() -> None:
    wh = assess(10.0, 10.3, [series("caller", 85.0, 5.0), series("agent", 1.0, 250.0)], QUIET_HOST, HealthLimits())
    assert wh.overloaded
    assert "party caller's media clock (its RTP sending) ran 85 ms late (limit 40 ms; SCHED_RR 20)" in wh.reasons
    assert "party agent woke 250 ms late (limit 100 ms)" in wh.reasons
    assert "CPU pressure 30 % in the worst second" in wh.reasons
    assert wh.diagnosis(shared_host=True).startswith("harness host overloaded: ")
    assert "lab PBX runs on the same host" in wh.diagnosis(shared_host=True)
    assert "lab PBX" not in wh.diagnosis(shared_host=False)


def test_host_memory_stalls_and_steal_overload_the_window() -> None:
    host = {"measured": True, "worst_1s": {"cpu_some_pct": 90.0, "memory_full_pct": 35.0, "steal_pct": 40.0}}
    wh = assess(10.0, 10.3, [series("caller", 1.0, 1.0)], host, HealthLimits())
    assert wh.overloaded
    assert any("stalled on memory 35 %" in r for r in wh.reasons)
    assert any("hypervisor took 40 %" in r for r in wh.reasons)


def test_a_window_outside_the_buckets_is_unmeasured_not_healthy_by_default() -> None:
    wh = assess(50.0, 51.0, [series("caller", 90.0, 90.0)], {"measured": False}, HealthLimits())
    assert not wh.overloaded
    assert wh.unmeasured == ["caller's media clock", "caller's wake-ups", "host pressure"]


def test_limits_come_from_a_mapping_and_bad_ones_are_refused() -> None:
    assert HealthLimits.from_mapping({"max_media_late_ms": 60}).max_media_late_ms == 60.0
    with pytest.raises(ValueError, match="unknown health threshold"):
        HealthLimits.from_mapping({"max_lateness": 1})
    with pytest.raises(ValueError, match="non-negative number"):
        HealthLimits.from_mapping({"max_steal_pct": "lots"})


# ---- the runner: FAIL -> ERROR blamed on the harness ---------------------------------------------------
class FakeParty:
    def __init__(self, reply: dict[str, Any]):
        self.reply, self.alive = reply, True

    def health(self, since: float, until: float | None = None) -> dict[str, Any]:
        return self.reply


def _ctx(tmp_path: Path, clock_ms: float) -> tuple[Runner, RunContext]:
    target = Target.from_mapping({"name": "pbx", "pbx": {"host": "127.0.0.1", "port": 5060},
                                  "accounts": {"caller": {"username": "1001", "password": "x"}}}, "pbx.yaml")
    ctx = RunContext(Scenario(name="s", path="s.yaml"), target, tmp_path)
    ctx.begin_window("step 2 (check_audio)")
    w = ctx.windows[-1]
    ctx.check(CheckResult.compare("audio:main:caller->agent:mos", 2.1, ">=", 3.5, "MOS"))
    ctx.check(CheckResult.compare("audio:main:caller->agent:gain", 0.1, "<=", 6.0, "dB"))
    ctx.end_window()
    t = int(w.t0 / 0.1) * 0.1  # the bucket the window starts in, as the child books it
    ctx.parties["caller"] = FakeParty({"t": [t, t + 0.1], "wake_max_ms": [1.0, 2.0], "wake_n": [10, 10],
                                       "clock_max_ms": [clock_ms, 1.0], "clock_n": [5, 5],
                                       "priority": {"policy": "normal", "why": "not permitted"}})  # type: ignore[assignment]
    runner = Runner(target, tmp_path, log=lambda _m: None)
    return runner, ctx


def test_a_fail_measured_while_the_harness_was_starved_is_an_error_blamed_on_the_harness(tmp_path: Path) -> None:
    runner, ctx = _ctx(tmp_path, clock_ms=120.0)
    health = runner._settle_health(ctx, ctx.windows[0].t0 - 1)
    mos, gain = ctx.checks
    assert mos.verdict is Verdict.ERROR and mos.blame == "harness"
    assert mos.detail.startswith("harness host overloaded: party caller's media clock (its RTP sending) ran 120 ms")
    assert "measured 2.1 MOS against >= 3.5" in mos.detail
    assert mos.metrics["health"]["overloaded"] is True
    assert gain.verdict is Verdict.PASS and gain.blame == ""  # a PASS stays a PASS
    assert health["overloaded"] is True and health["windows"][0]["checks"] == [mos.name, gain.name]
    assert health["parties"]["caller"]["scheduling"] == "normal (not permitted)"
    # the findings rule says so, with the figures
    d = diagnose(Clues(mos.to_dict(), {"health": health, "checks": [mos.to_dict()]}, tmp_path))
    assert d.rule == "harness_overloaded" and "120 ms late" in d.cause


@pytest.mark.parametrize(("stall_before_s", "blamed"), [(3.0, "harness"), (15.0, "")])
def test_a_stall_just_before_a_media_window_is_the_harnesss_too(tmp_path: Path, stall_before_s: float,
                                                                 blamed: str) -> None:
    """The jitter buffers grown by a stall shed the delay for seconds into the next step's recording."""
    runner, ctx = _ctx(tmp_path, clock_ms=3.0)
    w = ctx.windows[0]
    ctx.check(CheckResult.compare("transfer:main:outcome", 480, "==", 200, "SIP"))  # signalling: not carried over
    w.checks.append(len(ctx.checks) - 1)
    t = int(w.t0 / 0.1) * 0.1
    stall = round(t - stall_before_s, 1)
    ctx.parties["caller"] = FakeParty({"t": [stall, t, t + 0.1], "wake_max_ms": [118.0, 1.0, 2.0],
                                       "wake_n": [10, 10, 10], "clock_max_ms": [107.0, 1.0, 1.0],
                                       "clock_n": [5, 5, 5], "priority": {"policy": "SCHED_RR", "priority": 20,
                                                                          "why": ""}})  # type: ignore[assignment]
    health = runner._settle_health(ctx, w.t0 - 20)
    mos, gain, transfer = ctx.checks
    assert mos.blame == blamed and mos.verdict is (Verdict.ERROR if blamed else Verdict.FAIL)
    assert transfer.verdict is Verdict.FAIL and transfer.blame == ""
    assert gain.verdict is Verdict.PASS
    if blamed:
        assert mos.detail.startswith("harness host overloaded up to 10.0 s before this window")
        assert "ran 107 ms late" in mos.detail
        assert health["overloaded"] is True and health["windows"][0]["before"]["overloaded"] is True
        d = diagnose(Clues(mos.to_dict(), {"health": health, "checks": [mos.to_dict()]}, tmp_path))
        assert d.rule == "harness_overloaded" and "in the 10.0 s before this check's window" in d.cause
    else:
        assert health["overloaded"] is False


def test_a_late_media_clock_spoils_media_checks_only_and_a_late_wake_up_every_check(tmp_path: Path) -> None:
    """The IVR test's case: the lab queue's media clock 49 ms late cannot explain a call that never reached
    its agent in 10 s; a party that woke 250 ms late (its SIP too) can spoil any check of the window."""
    wh = assess(10.0, 10.3, [series("caller", 49.0, 5.0)], QUIET_HOST, HealthLimits())
    assert wh.overloaded and wh.spoils(media=True) and not wh.spoils(media=False)
    wh = assess(10.0, 10.3, [series("caller", 1.0, 1.0)], {**QUIET_HOST, "lab_wait_ms": {"rtpengine": 60.0}},
                HealthLimits())
    assert wh.overloaded and not wh.spoils(media=False)  # the lab's media relay kept waiting: media alone
    wh = assess(10.0, 10.3, [series("caller", 49.0, 250.0)], QUIET_HOST, HealthLimits())
    assert wh.spoils(media=False)
    host = {"measured": True, "worst_1s": {"cpu_some_pct": 90.0, "memory_full_pct": 35.0, "steal_pct": 0.0}}
    assert assess(10.0, 10.3, [series("caller", 1.0, 1.0)], host, HealthLimits()).spoils(media=False)

    runner, ctx = _ctx(tmp_path, clock_ms=49.0)
    w = ctx.windows[0]
    for name, value, want in (("answered_by:main", "nobody", "support"), ("dtmf:agent:main", "1", "2")):
        ctx.check(CheckResult.compare(name, value, "==", want))
        w.checks.append(len(ctx.checks) - 1)
    health = runner._settle_health(ctx, w.t0 - 1)
    mos, _gain, answered, dtmf = ctx.checks
    assert mos.verdict is Verdict.ERROR and dtmf.verdict is Verdict.ERROR  # DTMF events ride the media clock
    assert answered.verdict is Verdict.FAIL and answered.blame == ""
    assert health["windows"][0]["turned"] == [mos.name, dtmf.name]


def test_a_healthy_window_leaves_the_fail_to_the_pbx(tmp_path: Path) -> None:
    runner, ctx = _ctx(tmp_path, clock_ms=3.0)
    health = runner._settle_health(ctx, ctx.windows[0].t0 - 1)
    assert ctx.checks[0].verdict is Verdict.FAIL and ctx.checks[0].blame == ""
    assert health["overloaded"] is False


# ---- exit codes ---------------------------------------------------------------------------------------
def _run(*checks: CheckResult) -> RunResult:
    sc = ScenarioResult(name="s", file="s.yaml", checks=list(checks))
    sc.finish()
    return RunResult(run_id="r", out_dir="r", target={}, scenarios=[sc])


def test_exit_codes_tell_a_broken_harness_from_a_broken_pbx() -> None:
    ok = CheckResult.compare("a", 1.0, "<=", 2.0)
    pbx = CheckResult.compare("b", 3.0, "<=", 2.0)
    harness = CheckResult.error("c", "party caller crashed", blame="harness")
    assert run_exit_code(_run(ok)) is ExitCode.OK
    assert run_exit_code(_run(ok, pbx)) is ExitCode.FAILED
    assert run_exit_code(_run(ok, harness)) is ExitCode.HARNESS
    assert run_exit_code(_run(pbx, harness)) is ExitCode.FAILED  # the PBX's FAIL wins: CI must look at it
    assert int(ExitCode.HARNESS) == 3


def test_which_errors_are_the_harnesss_own() -> None:
    assert is_harness_side(PartyCrashed("caller", "died"))
    assert is_harness_side(LabError("kamailio did not start"))
    assert is_harness_side(PartyTimeout("caller", "no reply to 'call'", harness_side=True))
    assert not is_harness_side(PartyTimeout("caller", "timed out waiting for the answer"))
    assert not is_harness_side(ScenarioError("bad", "x.yaml", 3))
    assert LabError("x").exit_code is ExitCode.HARNESS


# ---- the lab's processes ----------------------------------------------------------------------------
def _fake_proc(root: Path, pid: int, ppid: int, waits: dict[int, int]) -> None:
    d = root / str(pid)
    (d / "task").mkdir(parents=True, exist_ok=True)
    (d / "stat").write_text(f"{pid} (x y) S {ppid} 1 1 0\n")  # a name with a space, as /proc allows
    for tid, ns in waits.items():
        (d / "task" / str(tid)).mkdir(exist_ok=True)
        (d / "task" / str(tid) / "schedstat").write_text(f"1000 {ns} 3\n")


def test_lab_processes_run_queue_wait_per_interval(tmp_path: Path) -> None:
    from harness.health.procs import ProcessWatch, descendants

    _fake_proc(tmp_path, 10, 1, {10: 0, 11: 1_000_000})
    _fake_proc(tmp_path, 20, 10, {20: 0})  # a forked worker of 10
    assert descendants([10], tmp_path) == [10, 20]
    watch = ProcessWatch(lambda: {"rtpengine": [10]}, proc=tmp_path)
    watch.sample()
    _fake_proc(tmp_path, 10, 1, {10: 2_000_000, 11: 1_000_000})
    _fake_proc(tmp_path, 20, 10, {20: 85_000_000})  # the worker waited 85 ms
    watch.sample()
    t = watch.samples[-1][0]
    assert watch.over(t - 1, t) == {"rtpengine": 85.0}
    wh = assess(10.0, 10.3, [series("caller", 1.0, 1.0)], {**QUIET_HOST, "lab_wait_ms": {"rtpengine": 85.0}},
                HealthLimits())
    assert wh.overloaded and "the lab's rtpengine waited 85 ms for a CPU within 100 ms (limit 40 ms)" in wh.reasons


def test_the_lab_services_parties_report_their_own_health(tmp_path: Path) -> None:
    import json

    from harness.lab.config import LabConfig
    from harness.lab.services import HEALTH_FILE
    from harness.lab.stack import LabStack
    from harness.scenarios.run_health import lab_service_series

    lab = LabStack(tmp_path / "lab", LabConfig())
    assert lab_service_series(lab) == []  # no file yet: nothing, not a crash
    (tmp_path / "lab").mkdir()
    reply = {"t": [5.0], "wake_max_ms": [1.0], "wake_n": [100], "clock_max_ms": [55.0], "clock_n": [50],
             "priority": {"policy": "SCHED_RR", "priority": 20}}
    (tmp_path / "lab" / HEALTH_FILE).write_text(json.dumps({"lab queue": reply}))
    (series,) = lab_service_series(lab)
    assert series.name == "lab queue" and series.window(5.0, 5.1)["media_late_max_ms"] == 55.0
    (tmp_path / "lab" / HEALTH_FILE).write_text("{not json")
    assert lab_service_series(lab) == []


def test_the_lab_services_health_is_awaited_until_it_reaches_the_window_end(tmp_path: Path,
                                                                           monkeypatch: Any) -> None:
    """The services rewrite their health file once a second: the runner waits for one that reaches the
    end of the scenario, or a window's last second would be judged without the lab's parties."""
    import json
    import threading
    import time

    import harness.scenarios.run_health as runner
    from harness.lab.config import LabConfig
    from harness.lab.services import HEALTH_FILE
    from harness.lab.stack import LabStack

    lab = LabStack(tmp_path / "lab", LabConfig())
    (tmp_path / "lab").mkdir()
    path = tmp_path / "lab" / HEALTH_FILE

    def reply(t_last: float) -> dict[str, Any]:
        ts = [round(t_last - 0.1 * i, 1) for i in range(3)][::-1]
        return {"t": ts, "wake_max_ms": [1.0] * 3, "clock_max_ms": [1.0] * 3, "clock_n": [5] * 3}

    now = time.monotonic()
    path.write_text(json.dumps({"lab ivr": reply(now - 0.9)}))
    later = threading.Timer(0.3, lambda: path.write_text(json.dumps({"lab ivr": reply(now + 0.3)})))
    later.start()
    (series,) = runner.lab_service_series(lab, until=now)
    later.join()
    assert series.t[-1] >= now  # the rewritten file, not the stale one
    # a file that never catches up is returned as it is once the wait is over (two rewrite periods)
    monkeypatch.setattr(runner, "HEALTH_EVERY_S", 0.1)
    path.write_text(json.dumps({"lab ivr": reply(now - 0.9)}))
    t0 = time.monotonic()
    (series,) = runner.lab_service_series(lab, until=now)
    assert series.t[-1] < now and time.monotonic() - t0 < 1.5
