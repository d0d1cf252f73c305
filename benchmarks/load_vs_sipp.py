"""The load engine against SIPp: one command, same run, same machine, same UAS; prints a table.

    .venv/bin/python benchmarks/load_vs_sipp.py             # full run, about 5-7 minutes
    .venv/bin/python benchmarks/load_vs_sipp.py --quick     # fewer, shorter steps, about 3 minutes

One SIPp UAS (``sipp -sn uas``) answers on loopback; against it:

1. the highest call rate (INVITE, 180, 200, ACK, BYE, no hold) sustained with zero failed calls, zero
   retransmissions (a response later than T1 = 500 ms: the generator or the UAS is saturated) and at
   least 97 % of the offered rate: ``harness load`` with one Locust process, with ``--workers 2``, and
   SIPp's own UAC (``sipp -sn uac -r R``), in steps;
2. the setup time (INVITE -> 200) p50 of the harness and of SIPp at the same moderate rate (SIPp
   measures in whole milliseconds, the harness in microseconds);
3. the calls one harness process holds at once with a 10 s hold (concurrent mode).

Needs Debian ``sip-tester``. Ports: ``--port-base`` .. +199 on 127.0.0.1 (default 41100). The UAS is
restarted between phases so that one phase's leftovers cannot slow the next. Every child is stopped
by its pid at the end, also on errors and Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STEP_S = 5.0
SUSTAINED = 0.97  # share of the offered rate a step must achieve to count (and no failure, no retransmission)


@dataclass
class Ports:
    base: int

    @property
    def uas(self) -> int:
        return self.base

    @property
    def uas_ctrl(self) -> int:
        return self.base + 1

    @property
    def uac(self) -> int:
        return self.base + 2

    @property
    def uac_ctrl(self) -> int:
        return self.base + 3

    @property
    def master(self) -> int:
        return self.base + 50

    @property
    def uas_media(self) -> int:
        return self.base + 100

    @property
    def uac_media(self) -> int:
        return self.base + 150


@dataclass
class Bench:
    ports: Ports
    work: Path
    quick: bool
    uas: subprocess.Popen[bytes] | None = None
    results: dict[str, Any] = field(default_factory=dict)

    # ---- the UAS ----------------------------------------------------------------------------------
    def start_uas(self) -> None:
        self.stop_uas()
        p = self.ports
        self.uas = subprocess.Popen(
            ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(p.uas), "-mp", str(p.uas_media), "-cp",
             str(p.uas_ctrl), "-buff_size", str(16 << 20), "-max_socket", "100000", "-nostdin"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=self.work, start_new_session=True)
        time.sleep(0.5)
        if self.uas.poll() is not None:
            raise SystemExit(f"the SIPp UAS did not start (exit {self.uas.returncode}); is port {p.uas} free?")

    def stop_uas(self) -> None:
        if self.uas is not None and self.uas.poll() is None:
            os.killpg(self.uas.pid, signal.SIGTERM)
            try:
                self.uas.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(self.uas.pid, signal.SIGKILL)
                self.uas.wait()
        self.uas = None

    # ---- the harness ------------------------------------------------------------------------------
    def target(self) -> Path:
        t = self.work / "sipp-uas.yaml"
        t.write_text(f"name: sipp-uas\npbx: {{host: 127.0.0.1, port: {self.ports.uas}}}\n")
        return t

    def harness(self, name: str, profile_text: str, workers: int = 0) -> dict[str, Any]:
        profile = self.work / f"{name}.yaml"
        profile.write_text(textwrap.dedent(profile_text))
        out = self.work / name
        argv = [sys.executable, "-m", "harness", "--home", str(self.work / "home"), "load", str(profile),
                "--target", str(self.target()), "--out", str(out), "-q"]
        if workers:
            argv += ["--workers", str(workers), "--master-port", str(self.ports.master)]
        t0 = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=600)
        if proc.returncode not in (0, 1):
            raise SystemExit(f"harness load {name} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        data: dict[str, Any] = json.loads((out / "load.json").read_text())
        data["wall_s"] = round(time.monotonic() - t0, 1)
        return data

    def harness_max_rate(self, levels: list[int], workers: int) -> dict[str, Any]:
        self.start_uas()
        name = f"rate-{workers or 1}w"
        data = self.harness(name, f"""
            name: {name}
            mode: rate
            shape:
              - step: {{levels: {levels}, duration_s: {STEP_S}}}
            call: {{to: "sip:service@127.0.0.1:{self.ports.uas}", hold_s: 0, hold_jitter_pct: 0}}
            sla: {{success_rate_pct: 100}}
            limits: {{max_calls: 10000000, max_duration_s: 600, max_in_flight: 60000}}
        """, workers)
        best, rows = None, []
        for s in data["steps"]:
            failed = sum(f["failed"] for f in s["requests"].values())
            shortfall = s["counters"].get("skipped_in_flight", 0) + s["counters"].get("skipped_bound", 0)
            retransmits = s["counters"].get("retransmits", 0)
            ok = (failed == 0 and shortfall == 0 and retransmits == 0
                  and (s["rate_achieved_pct"] or 0) >= 100 * SUSTAINED)
            setup = s["requests"].get("call:setup", {})
            rows.append({"target": s["target"], "achieved": s["achieved"], "failed": failed, "ok": ok,
                         "p50_ms": setup.get("p50_ms"), "p95_ms": setup.get("p95_ms"),
                         "cpu_pct": s["generator_cpu_pct"]["mean"],
                         "retransmits": retransmits})
            if not ok:
                break
            best = rows[-1]
        self.stop_uas()
        return {"best": best, "steps": rows, "wall_s": data["wall_s"]}

    # ---- SIPp's UAC -------------------------------------------------------------------------------
    def sipp_uac(self, rate: int, seconds: float, rtt: bool = False) -> dict[str, Any]:
        p = self.ports
        run_dir = self.work / f"sipp-{rate}-{int(time.time() * 1000)}"
        run_dir.mkdir()
        calls = int(rate * seconds)
        argv = ["sipp", f"127.0.0.1:{p.uas}", "-sn", "uac", "-s", "service", "-i", "127.0.0.1", "-p", str(p.uac),
                "-mp", str(p.uac_media), "-cp", str(p.uac_ctrl), "-r", str(rate), "-m", str(calls), "-d", "0",
                "-l", str(max(1000, rate * 4)), "-buff_size", str(16 << 20), "-max_socket", "100000", "-nostdin",
                "-timeout", f"{int(seconds + 30)}s", "-trace_stat", "-stf", "stat.csv", "-fd", "1"]
        if rtt:
            argv += ["-trace_rtt", "-rtt_freq", "1"]
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=run_dir,
                                start_new_session=True)
        _pid, _status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(_status)
        wall = time.monotonic() - t0
        stat = _last_stat(run_dir / "stat.csv")
        ok_calls, failed = int(stat.get("SuccessfulCall(C)", 0)), int(stat.get("FailedCall(C)", 0))
        out = {"rate": rate, "calls": calls, "ok": ok_calls, "failed": failed, "wall_s": round(wall, 2),
               "retransmits": int(stat.get("Retransmissions(C)", 0) or 0),
               "achieved": round(calls / wall, 1) if wall > 0 else None,
               "cpu_pct": round(100.0 * (usage.ru_utime + usage.ru_stime) / wall, 1) if wall > 0 else None}
        if rtt:
            samples = sorted(float(line.split(";")[1]) for f in run_dir.glob("*_rtt.csv")
                             for line in f.read_text().splitlines()[1:] if line.count(";") >= 2)
            out["p50_ms"] = samples[len(samples) // 2] if samples else None
            out["mean_ms"] = round(sum(samples) / len(samples), 3) if samples else None
        return out

    def sipp_max_rate(self, levels: list[int]) -> dict[str, Any]:
        self.start_uas()
        best, rows = None, []
        for rate in levels:
            r = self.sipp_uac(rate, STEP_S)
            # SIPp cannot always keep the rate: the offered rate is what it managed, over its whole run
            r["ok_step"] = (r["failed"] == 0 and r["ok"] == r["calls"] and r["retransmits"] == 0
                            and (r["achieved"] or 0) >= SUSTAINED * rate)
            rows.append(r)
            if not r["ok_step"]:
                break
            best = r
            self.start_uas()  # a fresh UAS per step: no leftovers from the previous one
        self.stop_uas()
        return {"best": best, "steps": rows}

    # ---- phases -----------------------------------------------------------------------------------
    def p50_same_rate(self, rate: int) -> dict[str, Any]:
        seconds = 6.0 if self.quick else 10.0
        self.start_uas()
        data = self.harness("p50", f"""
            name: p50
            shape:
              - hold: {{value: {rate}, duration_s: {seconds}}}
            call: {{to: "sip:service@127.0.0.1:{self.ports.uas}", hold_s: 0, hold_jitter_pct: 0}}
            limits: {{max_calls: 10000000, max_duration_s: 120}}
        """)
        setup = data["totals"]["requests"].get("call:setup", {})
        self.start_uas()
        sipp = self.sipp_uac(rate, seconds, rtt=True)
        self.stop_uas()
        return {"rate": rate, "harness": {"p50_ms": setup.get("p50_ms"), "p95_ms": setup.get("p95_ms"),
                                          "mean_ms": setup.get("mean_ms"), "failed": setup.get("failed")},
                "sipp": {"p50_ms": sipp.get("p50_ms"), "mean_ms": sipp.get("mean_ms"), "failed": sipp["failed"]}}

    def concurrent(self, calls: int) -> dict[str, Any]:
        self.start_uas()
        ramp, hold = (8, 12) if self.quick else (10, 15)
        data = self.harness("concurrent", f"""
            name: concurrent
            mode: concurrent
            shape:
              - ramp: {{from: 0, to: {calls}, duration_s: {ramp}}}
              - hold: {{value: {calls}, duration_s: {hold}}}
            call: {{to: "sip:service@127.0.0.1:{self.ports.uas}", hold_s: 10, hold_jitter_pct: 0}}
            start_jitter_s: 2
            limits: {{max_calls: 10000000, max_duration_s: 120}}
        """)
        last = data["steps"][-1]
        failed = sum(f["failed"] for f in data["totals"]["requests"].values())
        self.stop_uas()
        return {"target": calls, "held_max": last["calls_up_max"], "held_mean": last["calls_up_mean"],
                "failed": failed, "cpu_pct": last["generator_cpu_pct"]["mean"],
                "setup_p95_ms": last["requests"].get("call:setup", {}).get("p95_ms")}


def _last_stat(path: Path) -> dict[str, str]:
    try:
        lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    return dict(zip(lines[0].split(";"), lines[-1].split(";"), strict=False))


def _why(step: dict[str, Any]) -> str:
    """Why a step did not count: ' (3 failed, 120 retransmissions)', or the shortfall alone."""
    parts = [f"{step['failed']} failed"]
    if step.get("retransmits"):
        parts.append(f"{step['retransmits']} retransmissions")
    return " (" + ", ".join(parts) + ")"


def _fmt(v: Any, unit: str = "") -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        v = f"{v:.3f}" if v < 10 else f"{v:.0f}"
    return f"{v}{unit}"


def print_table(r: dict[str, Any], port_base: int) -> None:
    """The benchmark's table, from its figures (``--json`` writes the same figures)."""
    h1, h2, sp = (r[k]["best"] or {} for k in ("harness_1", "harness_2", "sipp"))
    sipp_rate = sp.get("rate")
    print()
    m = r["machine"]
    print(f"load engine vs SIPp 3.6 (same SIPp UAS on 127.0.0.1:{port_base}); {m['cpus']} cores, load average "
          f"{m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at the end; {m['wall_s']:.0f} s")
    print(f"{'measure':46} {'harness 1 proc':>15} {'harness -w 2':>13} {'SIPp uac':>10}")
    print(f"{'max calls/s, 0 failures, >= 97 % of offered':46} {_fmt(h1.get('target')):>15} "
          f"{_fmt(h2.get('target')):>13} {_fmt(sipp_rate):>10}")
    ratio1 = h1.get("target", 0) / sipp_rate if sipp_rate else None
    ratio2 = h2.get("target", 0) / sipp_rate if sipp_rate else None
    print(f"{'  ... relative to SIPp':46} {_fmt(ratio1, 'x'):>15} {_fmt(ratio2, 'x'):>13} {'1x':>10}")
    print(f"{'  generator CPU % at that rate':46} {_fmt(h1.get('cpu_pct')):>15} {_fmt(h2.get('cpu_pct')):>13} "
          f"{_fmt(sp.get('cpu_pct')):>10}")
    def per_call(row: dict[str, Any], rate_key: str) -> float | None:
        rate, cpu = row.get(rate_key), row.get("cpu_pct")
        return round(cpu / 100.0 / rate * 1e6) if rate and cpu else None

    w2 = per_call(h2, "target")  # -w 2: the busiest worker's CPU, which carries half the calls
    print(f"{'  generator CPU time per call (us)':46} {_fmt(per_call(h1, 'target')):>15} "
          f"{_fmt(w2 * 2 if w2 else None):>13} {_fmt(per_call(sp, 'rate')):>10}")
    print(f"{'  setup p50 / p95 at that rate (ms)':46} "
          f"{_fmt(h1.get('p50_ms')) + ' / ' + _fmt(h1.get('p95_ms')):>15} "
          f" {_fmt(h2.get('p50_ms')) + ' / ' + _fmt(h2.get('p95_ms')):>13} {'':>10}")
    p = r["p50"]
    print(f"{'setup p50 at ' + str(p['rate']) + ' calls/s (ms)':46} {_fmt(p['harness']['p50_ms']):>15} "
          f"{'':>13} {_fmt(p['sipp']['p50_ms']):>10}")
    print(f"{'setup mean at ' + str(p['rate']) + ' calls/s (ms)':46} {_fmt(p['harness']['mean_ms']):>15} "
          f"{'':>13} {_fmt(p['sipp']['mean_ms']):>10}")
    c = r["concurrent"]
    print(f"{'calls held at once, 10 s hold (max / mean)':46} "
          f"{_fmt(c['held_max']) + ' / ' + _fmt(c['held_mean']):>15} {'':>13} {'':>10}")
    print(f"{'  failures, CPU %':46} {str(c['failed']) + ', ' + _fmt(c['cpu_pct']):>15}")
    print("\nsteps (offered -> achieved calls/s, failures):")
    for key in ("harness_1", "harness_2"):
        print(f"  {key}: " + ", ".join(f"{s['target']:.0f}->{_fmt(s['achieved'])}"
                                       f"{'' if s['ok'] else _why(s)}"
                                       for s in r[key]["steps"]))
    print("  sipp: " + ", ".join(f"{s['rate']}->{_fmt(s['achieved'])}"
                                 f"{'' if s['ok_step'] else _why(s)}"
                                 for s in r["sipp"]["steps"]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer and shorter steps")
    ap.add_argument("--port-base", type=int, default=41100, help="first of 200 loopback ports to use")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--concurrent", type=int, default=2500, help="calls to hold in the concurrency phase")
    args = ap.parse_args(argv)
    if shutil.which("sipp") is None:
        print("sipp is not installed (Debian package sip-tester)", file=sys.stderr)
        return 2
    levels_h = [500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 11000, 12000, 13000,
                14000, 15000, 16000, 18000, 20000, 22000, 24000]
    levels_s = [1000, 2000, 3000, 4000, 6000, 8000, 10000, 12000, 14000, 16000, 18000, 20000, 22000, 24000, 26000,
                28000, 30000]
    if args.quick:
        levels_h, levels_s = levels_h[1::2], levels_s[::2]
    load0 = os.getloadavg()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp:
        b = Bench(Ports(args.port_base), Path(tmp), args.quick)
        try:
            print("phase 1/5: harness, one process, stepped call rate ...", flush=True)
            b.results["harness_1"] = b.harness_max_rate(levels_h, 0)
            print("phase 2/5: harness, --workers 2 ...", flush=True)
            b.results["harness_2"] = b.harness_max_rate(levels_h, 2)
            print("phase 3/5: SIPp UAC, stepped call rate ...", flush=True)
            b.results["sipp"] = b.sipp_max_rate(levels_s)
            print("phase 4/5: setup time at the same rate ...", flush=True)
            b.results["p50"] = b.p50_same_rate(1000)
            print("phase 5/5: calls held at once, 10 s hold ...", flush=True)
            b.results["concurrent"] = b.concurrent(args.concurrent)
        finally:
            b.stop_uas()
    b.results["machine"] = {"cpus": os.cpu_count(), "loadavg_start": [round(x, 2) for x in load0],
                            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
                            "wall_s": round(time.monotonic() - t0, 1)}
    print_table(b.results, args.port_base)
    if args.json:
        args.json.write_text(json.dumps(b.results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
