"""False alarms: the nightly suite run again and again on a clean lab, then under background load.

    .venv/bin/python benchmarks/false_alarms.py --clean 23 --loaded 8          # >= 200 clean scenario runs
    .venv/bin/python benchmarks/false_alarms.py --clean 2 --loaded 1           # a quick look (~7 min)
    .venv/bin/python benchmarks/false_alarms.py --clean 0 --loaded 4 --load audio,browser

Every run is ``harness run SUITE --out DIR -q`` through the CLI, as a user runs it, against one lab the
benchmark starts on its own loopback ports (``--port-base`` .. +999) and stops at the end. The lab and
its PBX are clean: nothing in them is impaired, so every FAIL is a false alarm, and so is every ERROR
that blames the PBX. Under load, an ERROR blamed on the harness (its host was overloaded, see
harness.health) is the harness being honest, not a false alarm.

Background load (``--load``, comma-separated; default ``tests,audio,browser``), started before the loaded
runs and stopped after them, each a bounded loop of real work of the kinds that share a CI box:

- ``tests``: the project's unit tests (``pytest tests/unit``), again and again;
- ``audio``: the audio accuracy benchmark (``benchmarks/audio_accuracy.py --quick``), numpy/scipy on
  every core;
- ``browser``: headless Chromium rendering the previous run's HTML report to a PDF, again and again
  (memory, threads, GPU-less rasterising), when Chromium is installed.

It prints, per condition, the FAIL and ERROR rate per scenario and per check (only checks that were not
always PASS), who was blamed, and the worst media-clock lateness the parties reported. ``--json FILE``
writes the figures. The exit code is 0 when the clean runs had no FAIL and the loaded runs no FAIL or
ERROR blamed on the PBX, else 1.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HARNESS = [sys.executable, "-m", "harness"]
LOADS = ("tests", "audio", "browser")
MAX_RUN_S = 900  #: one suite run may take this long at most


@dataclass
class Tally:
    """Verdicts of one condition (clean or loaded)."""

    runs: int = 0
    exit_codes: collections.Counter[int] = field(default_factory=collections.Counter)
    scenarios: dict[str, collections.Counter[str]] = field(default_factory=dict)
    checks: dict[tuple[str, str], collections.Counter[str]] = field(default_factory=dict)
    examples: dict[tuple[str, str], str] = field(default_factory=dict)
    media_late_ms: list[float] = field(default_factory=list)
    wake_late_ms: list[float] = field(default_factory=list)
    delay_jumps_ms: list[float] = field(default_factory=list)  #: delay_variation of every judged direction
    mos: list[float] = field(default_factory=list)
    #: per RTP stream of every call: frames its jitter buffer played out concealed (jb_lost), and discarded
    jb_lost: list[int] = field(default_factory=list)
    jb_discard: list[int] = field(default_factory=list)
    #: scenarios run again because their starved host left an attempt unjudged: final verdicts
    reruns: collections.Counter[str] = field(default_factory=collections.Counter)
    seconds: float = 0.0

    def add(self, results: dict[str, Any], code: int) -> None:
        self.runs += 1
        self.exit_codes[code] += 1
        for sc in results.get("scenarios", []):
            name = str(sc.get("name"))
            count = self.scenarios.setdefault(name, collections.Counter())
            count["runs"] += 1
            if sc.get("attempts"):
                self.reruns[str(sc.get("verdict"))] += 1
                count["attempts set aside"] += len(sc["attempts"])
            blames = {c.get("blame") or "pbx" for c in sc.get("checks", []) if c.get("verdict") != "PASS"}
            if sc.get("verdict") == "PASS":
                count["PASS"] += 1
            else:
                count[sc.get("verdict", "ERROR")] += 1
                count["pbx-blamed" if "pbx" in blames or not blames else "harness-blamed"] += 1
            for c in sc.get("checks", []):
                key = (name, str(c.get("name")))
                cc = self.checks.setdefault(key, collections.Counter())
                cc["n"] += 1
                value = c.get("value")
                if isinstance(value, int | float) and not isinstance(value, bool):
                    if str(c.get("name")).endswith(":delay_variation"):
                        self.delay_jumps_ms.append(float(value))
                    elif str(c.get("name")).endswith(":mos") and str(c.get("name")).startswith("audio:"):
                        self.mos.append(float(value))
                if c.get("verdict") != "PASS":
                    who = "harness" if c.get("blame") == "harness" else "pbx"
                    cc[f"{c.get('verdict')}:{who}"] += 1
                    self.examples.setdefault(key, f"{c.get('value')} {c.get('unit') or ''} "
                                                  f"{c.get('op') or ''} {c.get('threshold')}: "
                                                  f"{str(c.get('detail') or '')[:160]}")
            for parties in (sc.get("rtp") or {}).values():
                for st in parties.values():
                    if isinstance(st, dict) and st.get("codec"):
                        self.jb_lost.append(int(st.get("jb_lost") or 0))
                        self.jb_discard.append(int(st.get("jb_discard") or 0))
            for p in ((sc.get("health") or {}).get("parties") or {}).values():
                if isinstance(p.get("media_late_max_ms"), int | float):
                    self.media_late_ms.append(float(p["media_late_max_ms"]))
                if isinstance(p.get("wake_late_max_ms"), int | float):
                    self.wake_late_ms.append(float(p["wake_late_max_ms"]))

    def scenario_runs(self) -> int:
        return sum(c["runs"] for c in self.scenarios.values())

    def count(self, verdict: str, who: str) -> int:
        return sum(c[f"{verdict}:{who}"] for c in self.checks.values())

    def scenario_fails(self, who: str) -> int:
        return sum(c[f"{who}-blamed"] for c in self.scenarios.values())


# ---- the lab and the runs ----------------------------------------------------------------------------
def _env(home: Path, base: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HARNESS_HOME": str(home), "HARNESS_LAB_SIP_PORT": str(base + 60),
                "HARNESS_LAB_NG_PORT": str(base + 222), "HARNESS_LAB_RTP_MIN": str(base + 300),
                "HARNESS_LAB_RTP_MAX": str(base + 899), "HARNESS_DB": str(home / "findings.db")})
    return env


def _harness(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout,
                          check=False)


def run_suite(env: dict[str, str], suite: str, out: Path) -> tuple[dict[str, Any], int, float]:
    t0 = time.monotonic()
    proc = _harness(env, "run", suite, "--out", str(out), "-q", timeout=MAX_RUN_S)
    seconds = time.monotonic() - t0
    try:
        results = json.loads((out / "results.json").read_text())
    except (OSError, ValueError):
        results = {"scenarios": [], "error": proc.stderr[-500:]}
    return results, proc.returncode, seconds


# ---- background load -----------------------------------------------------------------------------------
def _loop(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``argv`` again and again until stopped, in its own process group."""
    script = "while :; do " + " ".join(_quote(a) for a in argv) + " >/dev/null 2>&1; done"
    with log.open("ab") as fh:
        return subprocess.Popen(["bash", "-c", script], stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT,
                                start_new_session=True)


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def start_load(kinds: list[str], work: Path, report: Path | None) -> list[subprocess.Popen[bytes]]:
    procs = []
    if "tests" in kinds:
        procs.append(_loop([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/unit"],
                           work / "load-tests.log"))
    if "audio" in kinds:
        procs.append(_loop([sys.executable, "benchmarks/audio_accuracy.py", "--quick"], work / "load-audio.log"))
    if "browser" in kinds:
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            print("  (no Chromium: browser load left out)")
        elif report is None:
            print("  (browser load starts after the first run has written a report to render)")
        else:
            procs.append(_loop([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                                f"--user-data-dir={work / 'chromium'}", f"--print-to-pdf={work / 'load.pdf'}",
                                report.as_uri()], work / "load-browser.log"))
    return procs


def stop_load(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
        p.wait()


# ---- report ------------------------------------------------------------------------------------------------
def _pct(n: int, d: int) -> str:
    return f"{100.0 * n / d:.1f} %" if d else "—"


def _p(values: list[float], q: float) -> str:
    if not values:
        return "—"
    v = sorted(values)
    return f"{v[min(len(v) - 1, int(q * len(v)))]:.1f}"


def print_tally(title: str, t: Tally) -> None:
    n = t.scenario_runs()
    print(f"\n## {title}: {t.runs} suite runs, {n} scenario runs, {t.seconds / 60:.1f} min")
    print(f"exit codes: {dict(sorted(t.exit_codes.items()))}")
    print(f"parties' media clock lateness, max per scenario and party (ms): p50 {_p(t.media_late_ms, 0.5)}, "
          f"p99 {_p(t.media_late_ms, 0.99)}, max {_p(t.media_late_ms, 1.0)}; wake-ups: p50 {_p(t.wake_late_ms, 0.5)}, "
          f"max {_p(t.wake_late_ms, 1.0)}")
    jumps = [v for v in t.delay_jumps_ms if v > 0]
    print(f"audio directions judged: {len(t.delay_jumps_ms)}; with a delay jump: {len(jumps)} "
          f"({_pct(len(jumps), len(t.delay_jumps_ms))}), largest {_p(jumps, 1.0)} ms; MOS p1 {_p(t.mos, 0.01)}, "
          f"min {_p(t.mos, 0.0)}")
    holes = [n for n in t.jb_lost if n]
    print(f"RTP streams: {len(t.jb_lost)}; with frames the jitter buffer played concealed (jb_lost): {len(holes)} "
          f"({sum(holes)} frames); frames it discarded: {sum(t.jb_discard)}")
    print(f"scenario runs run again after an attempt the starved host left unjudged (harness run --reruns): "
          f"{sum(t.reruns.values())}, ending {dict(sorted(t.reruns.items()))}; the verdicts below are the last "
          "attempts'")
    print("\n| scenario | runs | PASS | FAIL | ERROR | blamed on the PBX | blamed on the harness |")
    print("|---|---|---|---|---|---|---|")
    for name, c in t.scenarios.items():
        pbx, own = c["pbx-blamed"], c["harness-blamed"]
        print(f"| {name} | {c['runs']} | {c['PASS']} | {c['FAIL']} | {c['ERROR']} | {pbx} ({_pct(pbx, c['runs'])}) "
              f"| {own} ({_pct(own, c['runs'])}) |")
    print(f"| **all** | {n} | {sum(c['PASS'] for c in t.scenarios.values())} | "
          f"{sum(c['FAIL'] for c in t.scenarios.values())} | {sum(c['ERROR'] for c in t.scenarios.values())} | "
          f"{t.scenario_fails('pbx')} ({_pct(t.scenario_fails('pbx'), n)}) | {t.scenario_fails('harness')} "
          f"({_pct(t.scenario_fails('harness'), n)}) |")
    bad = {k: c for k, c in t.checks.items() if set(c) != {"n"}}
    checks_n = sum(c["n"] for c in t.checks.values())
    print(f"\nchecks judged: {checks_n}; FAIL (PBX blamed) {t.count('FAIL', 'pbx')}, ERROR (PBX blamed) "
          f"{t.count('ERROR', 'pbx')}, ERROR (harness blamed) {t.count('ERROR', 'harness')}")
    if bad:
        print("\n| scenario | check | judged | FAIL | ERROR, PBX | ERROR, harness | first example |")
        print("|---|---|---|---|---|---|---|")
        for (sc, name), c in sorted(bad.items()):
            fails = c["FAIL:pbx"] + c["FAIL:harness"]
            print(f"| {sc} | {name} | {c['n']} | {fails} ({_pct(fails, c['n'])}) | {c['ERROR:pbx']} | "
                  f"{c['ERROR:harness']} | {t.examples.get((sc, name), '')} |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clean", type=int, default=23, help="suite runs on a clean lab (0..200) [23]")
    ap.add_argument("--loaded", type=int, default=8, help="suite runs under background load (0..100) [8]")
    ap.add_argument("--load", default=",".join(LOADS), help=f"background load kinds, from {', '.join(LOADS)}")
    ap.add_argument("--suite", default="scenarios/nightly.yaml")
    ap.add_argument("--port-base", type=int, default=44000, help="lab ports base .. base+999 [44000]")
    ap.add_argument("--keep", type=Path, help="keep the run directories here (default: a temporary directory)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if not (0 <= args.clean <= 200 and 0 <= args.loaded <= 100):
        ap.error("--clean 0..200, --loaded 0..100")
    kinds = [k.strip() for k in args.load.split(",") if k.strip()]
    if set(kinds) - set(LOADS):
        ap.error(f"--load: unknown kind(s) {', '.join(sorted(set(kinds) - set(LOADS)))}")
    work = args.keep or Path(tempfile.mkdtemp(prefix="false-alarms-"))
    work.mkdir(parents=True, exist_ok=True)
    home = work / "home"
    env = _env(home, args.port_base)
    # SIGTERM unwinds like Ctrl-C: the run in flight is killed and the lab taken down (the finally below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    up = _harness(env, "lab", "up")
    if up.returncode != 0:
        print(f"lab did not start: {up.stdout}{up.stderr}", file=sys.stderr)
        return 3
    tallies = {"clean": Tally(), "loaded": Tally()}
    load: list[subprocess.Popen[bytes]] = []
    last_report: Path | None = None
    try:
        for cond, count in (("clean", args.clean), ("loaded", args.loaded)):
            if count and cond == "loaded":
                load = start_load(kinds, work, last_report)
                time.sleep(5)  # let the load get going
            for i in range(count):
                out = work / f"{cond}-{i + 1:03d}"
                results, code, seconds = run_suite(env, args.suite, out)
                tallies[cond].add(results, code)
                tallies[cond].seconds += seconds
                if (out / "report.html").exists():
                    if cond == "loaded" and last_report is None and "browser" in kinds:
                        load += start_load(["browser"], work, out / "report.html")  # now there is a page
                    last_report = out / "report.html"
                bad = [(s["name"], c["name"], c["verdict"], c.get("blame") or "pbx")
                       for s in results.get("scenarios", []) for c in s.get("checks", []) if c["verdict"] != "PASS"]
                print(f"{cond} {i + 1}/{count}: exit {code} in {seconds:.0f} s"
                      + (f"; not PASS: {bad[:6]}" if bad else ""), flush=True)
            stop_load(load)
            load = []
    finally:
        stop_load(load)
        _harness(env, "lab", "down")
    print(f"\n# false alarms: {args.suite}, background load: {', '.join(kinds)}")
    for cond, t in tallies.items():
        if t.runs:
            print_tally("clean lab" if cond == "clean" else f"under background load ({', '.join(kinds)})", t)
    clean, loaded = tallies["clean"], tallies["loaded"]
    print(f"\nclean: {clean.count('FAIL', 'pbx') + clean.count('FAIL', 'harness')} FAIL checks in "
          f"{clean.scenario_runs()} scenario runs (goal 0 in >= 200); loaded: {loaded.count('FAIL', 'pbx')} FAIL and "
          f"{loaded.count('ERROR', 'pbx')} ERROR blamed on the PBX in {loaded.scenario_runs()} scenario runs (goal 0), "
          f"{loaded.count('ERROR', 'harness')} ERROR blamed on the harness")
    print(f"run directories: {work}")
    if args.json:
        args.json.write_text(json.dumps({cond: {"runs": t.runs, "scenario_runs": t.scenario_runs(),
                                                "exit_codes": dict(t.exit_codes),
                                                "scenarios": {k: dict(v) for k, v in t.scenarios.items()},
                                                "checks": {f"{k[0]}/{k[1]}": dict(v) for k, v in t.checks.items()
                                                           if set(v) != {"n"}},
                                                "media_late_ms": t.media_late_ms, "delay_jumps_ms": t.delay_jumps_ms,
                                                "mos": t.mos, "jb_lost": t.jb_lost, "jb_discard": t.jb_discard,
                                                "reruns": dict(t.reruns)}
                                         for cond, t in tallies.items()},
                                        indent=2))
    ok = clean.count("FAIL", "pbx") + clean.count("FAIL", "harness") == 0 and \
        loaded.count("FAIL", "pbx") + loaded.count("ERROR", "pbx") == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
