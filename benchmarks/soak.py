"""Soak: calls at a steady rate through the lab for a bounded time, watching the harness for leaks.

    .venv/bin/python benchmarks/soak.py --minutes 30 --rate 1        # 30 min, one new call a second
    .venv/bin/python benchmarks/soak.py --minutes 2 --rate 2 --sample-s 10   # a quick look

It starts its own lab on loopback (``--port-base`` .. +99, default 46900; recording off) and drives calls
with the party layer the scenarios use (:class:`harness.sip.Party`, one pjsua2 child per party, at most
4 calls per process): callers dial agents who answer and play speech back, each call is held
``--hold-s`` seconds and hung up by the caller. Like scenarios, parties come in sets that are replaced
every ``--rotate-s`` seconds (two account sets take turns, so a new set is up before the old one is
closed and the call rate does not dip); ``--rotate-s 0`` keeps one set for the whole run.

Every ``--sample-s`` seconds it samples this process (RSS, open file descriptors, threads), its child
processes (count, zombies, their summed RSS) and the call counters, prints a table and a verdict: the
last third of the samples against the first third, beyond noise (RSS: 1 MiB or 2 %, whichever is
larger, and only when the RSS trend keeps rising, r^2 >= 0.6; fds: 2; children and threads: none;
zombies: none). Exit 0 when no leak is seen, 1 otherwise.
Not part of CI: it runs on demand and stops by itself (time bound, every wait bounded, lab and parties
stopped by their pids at the end, also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.contracts.errors import HarnessError  # noqa: E402
from harness.contracts.target import Target  # noqa: E402
from harness.lab.config import LabConfig  # noqa: E402
from harness.lab.stack import LabStack  # noqa: E402
from harness.scenarios.steps_call import call_state_is  # noqa: E402
from harness.sip import AutoPolicy, Party  # noqa: E402
from harness.sip.protocol import LIMITS  # noqa: E402

SPEECH = ROOT / "audio_fixtures" / "speech"
#: two account sets that take turns: (caller accounts, agent accounts)
SETS = ((("caller",), ("agent1", "agent2")), (("caller2",), ("agent3", "supervisor")))


# ---- process figures -----------------------------------------------------------------------------------
def _status(pid: int | str) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


def _kib(status: dict[str, str], key: str) -> int:
    return int(status.get(key, "0 kB").split()[0])


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, state) of every direct child of ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if int(fields[1]) == pid:
            out.append((int(entry), fields[0]))
    return out


@dataclass
class Sample:
    t_s: float
    rss_mib: float
    fds: int
    threads: int
    children: int
    zombies: int
    children_rss_mib: float
    placed: int
    answered: int
    failed: int
    active: int


def sample(t0: float, counters: dict[str, int]) -> Sample:
    me = os.getpid()
    st = _status(me)
    kids = children(me)
    return Sample(t_s=round(time.monotonic() - t0, 1), rss_mib=_kib(st, "VmRSS") / 1024.0,
                  fds=len(os.listdir("/proc/self/fd")), threads=int(st.get("Threads", "0")),
                  children=sum(1 for _, s in kids if s != "Z"), zombies=sum(1 for _, s in kids if s == "Z"),
                  children_rss_mib=sum(_kib(_status(p), "VmRSS") for p, s in kids if s != "Z") / 1024.0,
                  placed=counters["placed"], answered=counters["answered"], failed=counters["failed"],
                  active=counters["active"])


# ---- the call load -------------------------------------------------------------------------------------
@dataclass
class ActiveCall:
    caller: Party
    cid: str
    agent: str
    t_end: float
    confirmed: bool = False


@dataclass
class PartySet:
    """One set of parties, like one scenario's: started together, closed together."""

    callers: list[Party]
    agents: dict[str, Party]  #: agent account name -> its party
    started: float = field(default_factory=time.monotonic)

    def close(self) -> None:
        threads = [threading.Thread(target=p.close) for p in [*self.callers, *self.agents.values()]]
        for t in threads:
            t.start()
        for t in threads:
            t.join(15.0)


def start_set(index: int, target: Target, workdir: Path, serial: int) -> PartySet:
    caller_accounts, agent_accounts = SETS[index]
    d = workdir / f"set-{serial:04d}"
    callers = []
    for acc in caller_accounts:
        p = Party(f"{acc}", d)
        p.start()
        p.add_account(target.account(acc), target, auto=AutoPolicy(mode="reject", code=486))  # it only calls
        callers.append(p)
    agents = {}
    for acc in agent_accounts:
        p = Party(f"{acc}", d)
        p.start()
        p.add_account(target.account(acc), target, auto=AutoPolicy(
            mode="answer", play=str(SPEECH / "agent.wav"), loop=True))
        agents[acc] = p
    for p in [*callers, *agents.values()]:
        acc = next(iter(p.accounts))
        reg = p.wait_registered(acc, 8.0)
        if not reg.ok:
            raise HarnessError(f"{acc} could not register: {reg.code} {reg.reason}")
    return PartySet(callers, agents)


class Soak:
    def __init__(self, target: Target, workdir: Path, rate: float, hold_s: float, rotate_s: float):
        self.target, self.workdir, self.rate, self.hold_s, self.rotate_s = target, workdir, rate, hold_s, rotate_s
        self.counters = {"placed": 0, "answered": 0, "failed": 0, "active": 0, "skipped": 0}
        self.calls: list[ActiveCall] = []
        self.sets: list[PartySet] = []
        self.serial = 0
        self.next_set: PartySet | None = None
        self.starter: threading.Thread | None = None
        self.errors: list[str] = []
        self.closers: list[threading.Thread] = []

    def live(self, party: Party) -> int:
        return sum(1 for c in self.calls if c.caller is party)

    def agent_load(self, s: PartySet, agent: str) -> int:
        return sum(1 for c in self.calls if c.agent == agent and c.caller in s.callers)

    def place(self) -> None:
        current = self.sets[-1]
        for caller in current.callers:
            if self.live(caller) >= LIMITS["max_calls"]:
                continue
            agent = min(current.agents, key=lambda a: self.agent_load(current, a))
            if self.agent_load(current, agent) >= LIMITS["max_calls"]:
                break
            try:
                res = caller.call(next(iter(caller.accounts)), self.target.aor(
                    self.target.account(agent).username), play=str(SPEECH / "caller.wav"), loop=True)
            except HarnessError as exc:
                self.errors.append(str(exc))
                self.counters["failed"] += 1
                return
            self.counters["placed"] += 1
            self.calls.append(ActiveCall(caller, res["call"], agent, time.monotonic() + self.hold_s))
            return
        self.counters["skipped"] += 1  # every slot busy: the offered rate exceeds what the set holds

    def tick(self, now: float) -> None:
        keep = []
        for c in self.calls:
            ended = c.caller.find(call_state_is(c.cid, "DISCONNECTED"))
            if not c.confirmed and c.caller.find(call_state_is(c.cid, "CONFIRMED")):
                c.confirmed = True
                self.counters["answered"] += 1
            if ended is not None:
                if not c.confirmed:
                    self.counters["failed"] += 1
                continue
            if now >= c.t_end:
                with contextlib.suppress(HarnessError):
                    c.caller.hangup(c.cid)
                c.t_end = now + 10.0  # wait for DISCONNECTED; a second hangup only after 10 s
            keep.append(c)
        self.calls = keep
        self.counters["active"] = len(keep)
        self.rotate(now)

    def rotate(self, now: float) -> None:
        if not self.rotate_s:
            return
        current = self.sets[-1]
        if self.starter is None and now - current.started >= self.rotate_s:
            self.serial += 1
            index = self.serial % len(SETS)

            def start() -> None:
                try:
                    self.next_set = start_set(index, self.target, self.workdir, self.serial)
                except HarnessError as exc:
                    self.errors.append(f"party set {self.serial}: {exc}")

            self.starter = threading.Thread(target=start, daemon=True)
            self.starter.start()
        if self.starter is not None and not self.starter.is_alive():
            self.starter = None
            if self.next_set is not None:
                self.sets.append(self.next_set)
                self.next_set = None
        for old in self.sets[:-1]:
            if not any(c.caller in old.callers for c in self.calls):
                self.sets.remove(old)
                closer = threading.Thread(target=old.close, daemon=True)  # ~1 s: not on the call clock
                closer.start()
                self.closers.append(closer)
        self.closers = [t for t in self.closers if t.is_alive()]

    def run(self, minutes: float, sample_s: float, on_sample: Any) -> None:
        self.sets.append(start_set(0, self.target, self.workdir, 0))
        t0 = time.monotonic()
        end = t0 + minutes * 60.0
        next_call, next_sample = t0, t0
        while time.monotonic() < end:
            now = time.monotonic()
            if now >= next_call:
                self.place()
                next_call += 1.0 / self.rate
            if now >= next_sample and self.steady():
                on_sample(sample(t0, self.counters))
                next_sample += sample_s
            self.tick(now)
            time.sleep(0.02)
        self.drain()
        on_sample(sample(t0, self.counters))

    def steady(self) -> bool:
        """No party set being started or closed: child process, thread and fd counts are comparable."""
        return self.starter is None and len(self.sets) == 1 and not self.closers

    def drain(self) -> None:
        deadline = time.monotonic() + self.hold_s + 15.0
        for c in self.calls:
            c.t_end = 0.0
        while self.calls and time.monotonic() < deadline:
            self.tick(time.monotonic())
            time.sleep(0.05)
        if self.starter is not None:
            self.starter.join(20.0)
        for t in self.closers:
            t.join(20.0)
        self.closers = []
        for s in [*self.sets, *([self.next_set] if self.next_set else [])]:
            s.close()
        self.sets, self.next_set = [], None


# ---- verdict -------------------------------------------------------------------------------------------
def trend(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares slope of ``ys`` over ``xs`` and its r^2 (0 when flat or too few points)."""
    if len(xs) < 3:
        return 0.0, 0.0
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    if sxx == 0 or syy == 0:
        return 0.0, 0.0
    return sxy / sxx, sxy * sxy / (sxx * syy)


def verdict(samples: list[Sample]) -> tuple[bool, list[str]]:
    """The last third of the samples against the first third, each beyond its noise allowance; RSS also
    by its trend: growth beyond noise that keeps going up (r^2 >= 0.6) is a leak."""
    steady = samples[1:-1] if len(samples) > 4 else samples  # the first is before any call, the last after
    n = max(1, len(steady) // 3)
    first, last = steady[:n], steady[-n:]
    lines, ok = [], True

    def judge(what: str, a: float, b: float, allowed: float, unit: str) -> None:
        nonlocal ok
        grew = b - a
        good = grew <= allowed
        ok = ok and good
        lines.append(f"{'ok  ' if good else 'LEAK'} {what}: {a:.1f} -> {b:.1f} {unit} "
                     f"(growth {grew:+.1f}, allowed {allowed:.1f})")

    rss_a, rss_b = statistics.median(s.rss_mib for s in first), statistics.median(s.rss_mib for s in last)
    slope, r2 = trend([s.t_s for s in steady], [s.rss_mib for s in steady])
    calls = steady[-1].placed - steady[0].placed
    per_call = (steady[-1].rss_mib - steady[0].rss_mib) * 1024.0 / calls if calls else 0.0
    allowed = max(1.0, 0.02 * rss_a)
    rss_ok = rss_b - rss_a <= allowed or r2 < 0.6
    ok = ok and rss_ok
    lines.append(f"{'ok  ' if rss_ok else 'LEAK'} harness RSS (median): {rss_a:.1f} -> {rss_b:.1f} MiB (growth "
                 f"{rss_b - rss_a:+.1f}, allowed {allowed:.1f} unless it keeps rising); trend {slope * 3600:+.1f} "
                 f"MiB/h (r^2 {r2:.2f}), {per_call:+.1f} KiB per call")
    judge("open fds (max)", max(s.fds for s in first), max(s.fds for s in last), 2, "")
    judge("threads (max)", max(s.threads for s in first), max(s.threads for s in last), 0, "")
    judge("child processes (max)", max(s.children for s in first), max(s.children for s in last), 0, "")
    judge("zombie children (max)", 0, max(s.zombies for s in last), 0, "")
    kid_a = statistics.median(s.children_rss_mib for s in first)
    lines.append(f"info children RSS (median): {kid_a:.1f} -> "
                 f"{statistics.median(s.children_rss_mib for s in last):.1f} MiB (lab daemons and pjsua children; "
                 "new party sets replace old ones)")
    return ok, lines


def print_table(samples: list[Sample]) -> None:
    head = (f"{'t_s':>7} {'rss_MiB':>8} {'fds':>5} {'thr':>4} {'kids':>5} {'zomb':>5} {'kids_MiB':>9} "
            f"{'placed':>7} {'answered':>8} {'failed':>6} {'active':>6}")
    print(head)
    for s in samples:
        print(f"{s.t_s:7.1f} {s.rss_mib:8.1f} {s.fds:5d} {s.threads:4d} {s.children:5d} {s.zombies:5d} "
              f"{s.children_rss_mib:9.1f} {s.placed:7d} {s.answered:8d} {s.failed:6d} {s.active:6d}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="duration (0.5 .. 240) [10]")
    ap.add_argument("--rate", type=float, default=1.0, help="new calls per second (0.05 .. 5) [1]")
    ap.add_argument("--hold-s", type=float, default=2.5, help="seconds each call is held [2.5]")
    ap.add_argument("--sample-s", type=float, default=30.0, help="seconds between samples [30]")
    ap.add_argument("--rotate-s", type=float, default=60.0, help="replace the party set this often; 0: never [60]")
    ap.add_argument("--port-base", type=int, default=46900, help="lab ports base .. base+99 [46900]")
    args = ap.parse_args()
    if not 0.5 <= args.minutes <= 240 or not 0.05 <= args.rate <= 5 or not 0.5 <= args.hold_s <= 60:
        ap.error("--minutes 0.5..240, --rate 0.05..5 and --hold-s 0.5..60")
    if args.rate * args.hold_s > 0.75 * LIMITS["max_calls"]:
        ap.error(f"--rate x --hold-s = {args.rate * args.hold_s:g} concurrent calls; a party set's caller process "
                 f"holds {LIMITS['max_calls']}: keep it at 75 % of that or less")
    base = args.port_base
    cfg = LabConfig(ip="127.0.0.1", sip_port=base, ng_port=base + 2, rtp_min=base + 10, rtp_max=base + 99,
                    record=False)
    samples: list[Sample] = []

    def on_sample(s: Sample) -> None:
        samples.append(s)
        print(f"  t={s.t_s:7.1f} s  rss {s.rss_mib:6.1f} MiB  fds {s.fds:3d}  threads {s.threads:3d}  children "
              f"{s.children:2d} ({s.zombies} zombie)  calls {s.placed} placed, {s.answered} answered, "
              f"{s.failed} failed, {s.active} up", flush=True)

    def on_term(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM cleans up like Ctrl-C: parties closed, lab stopped

    signal.signal(signal.SIGTERM, on_term)
    with tempfile.TemporaryDirectory(prefix="harness-soak-") as tmp:
        lab = LabStack(Path(tmp) / "lab", cfg)
        print(f"soak: {args.minutes:g} min, {args.rate:g} calls/s held {args.hold_s:g} s, party sets replaced every "
              f"{args.rotate_s:g} s; lab on 127.0.0.1:{base}; sampling every {args.sample_s:g} s", flush=True)
        soak = Soak(lab.target, Path(tmp) / "parties", args.rate, args.hold_s, args.rotate_s)
        try:
            lab.start()
            soak.run(args.minutes, args.sample_s, on_sample)
        except KeyboardInterrupt:
            print("interrupted: stopping", flush=True)
        finally:
            soak.drain()
            lab.stop()
    print()
    print_table(samples)
    ok, lines = verdict(samples)
    print()
    for line in lines:
        print(line)
    if soak.errors:
        print(f"{len(soak.errors)} call errors, first: {soak.errors[0]}")
    placed = samples[-1].placed if samples else 0
    answered = samples[-1].answered if samples else 0
    print(f"calls: {placed} placed, {answered} answered, {samples[-1].failed if samples else 0} failed, "
          f"{soak.counters['skipped']} not placed (no free slot)")
    print(f"verdict: {'PASS - no growth beyond noise' if ok else 'FAIL - growth beyond noise (see LEAK lines)'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
