"""Lab fault steps: line faults on the lab's network path and lab components failing mid-call.

They act on the embedded lab (``ctx.lab``): ``impair``, ``clear_impairment`` and ``outage`` need it in
network-namespace mode (``harness lab up --netns``, ``HARNESS_LAB_NETNS=1``), where every packet between
the parties and the lab crosses the line of :mod:`harness.lab.netns`; ``lab_fault`` needs the lab in any
mode. Against a user's PBX they stop the run before it starts (``preflight``) and, if reached anyway, end
their scenario with an ERROR saying what they need. What they take down, the lab brings back after the
scenario (:meth:`harness.lab.stack.LabStack.check`).

The steps that judge a call through a fault are in ``steps_connected.py`` (``expect_connected``) and
``steps_rawsip.py`` (``forge_bye``, ``register_once``). Check names follow the diagnosis rules' kinds:
``line:<direction>``, ``line:outage``, ``fault:<component>``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from harness.contracts.checkname import CheckName
from harness.contracts.errors import InputError, StepFailed
from harness.contracts.target import Target
from harness.contracts.verdict import CheckResult, Verdict
from harness.contracts.yamlsrc import Fields
from harness.lab.netem import Impairment
from harness.lab.netns import is_netns_address
from harness.lab.stack import LabStack
from harness.scenarios.context import RunContext
from harness.scenarios.registry import ParseScope, step

__all__ = ["ClearImpairment", "Impair", "LabFault", "Outage"]

LINE_DIRECTIONS = ("both", "to_lab", "from_lab")
COMPONENTS = ("kamailio", "rtpengine", "services")
FAULT_ACTIONS = ("kill", "stop", "start", "restart")
NETNS_HINT = ("the lab in network-namespace mode ('harness lab up --netns', or HARNESS_LAB_NETNS=1 for a lab "
              "that 'harness run' starts)")


# ---- lab access --------------------------------------------------------------------------------------
def _need_lab(ctx: RunContext, check: CheckName, netns: bool) -> LabStack:
    """The lab this step acts on; an ERROR check and the end of the scenario when there is none."""
    lab = ctx.lab
    if lab is None or (netns and lab.netns is None):
        need = NETNS_HINT if netns else "the embedded lab"
        what = "a user's PBX" if lab is None else "a lab without its network namespace"
        ctx.check(CheckResult.error(check, f"this step needs {need}; the target is {what}"))
        raise StepFailed(f"{check}: needs {need}")
    return lab


def _preflight(target: Target, keyword: str, netns: bool) -> None:
    if not target.is_lab:
        raise InputError(f"step '{keyword}' acts on the embedded lab and cannot run against {target.source}: "
                         f"run it without --target{' in namespace mode' if netns else ''}")
    if netns and not is_netns_address(target.host):
        raise InputError(f"step '{keyword}' needs {NETNS_HINT}; the lab at {target.host} runs on loopback "
                         "('harness lab down' first if it is running)")


# ---- line impairments --------------------------------------------------------------------------------
@step("impair")
@dataclass(frozen=True)
class Impair:
    """Impair the line between the parties and the lab from now on (until ``clear_impairment`` or the end
    of the scenario): ``loss_pct`` (with ``burst`` > 1 in Gilbert-Elliott bursts of that mean length),
    ``delay_ms``, ``jitter_ms``, ``reorder_pct``, ``rate_kbit``; ``direction`` ``both`` (default),
    ``to_lab`` or ``from_lab``; ``media_only`` (default true) leaves SIP untouched."""

    impairment: Impairment
    direction: str
    seed: int | None

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Impair:
        values: dict[str, Any] = {}
        for name, (low, high) in Impairment.LIMITS.items():
            value = f.number(name, None, low=low, high=high)
            if value is not None:
                values[name] = value
        values["media_only"] = f.opt("media_only", bool, True)
        imp = Impairment(**values)
        for name, message in imp.problems():
            raise f.fail(name, message)
        if imp.clean:
            raise f.fail(None, "names no impairment: give loss_pct, delay_ms, jitter_ms, reorder_pct or rate_kbit "
                               "(clear_impairment removes one)")
        return cls(imp, f.choice("direction", LINE_DIRECTIONS, "both"), f.integer("seed", None, low=0))

    def preflight(self, target: Target) -> None:
        _preflight(target, "impair", netns=True)

    def run(self, ctx: RunContext) -> None:
        name = CheckName("line", subject=self.direction)
        lab = _need_lab(ctx, name, netns=True)
        assert lab.netns is not None
        lab.netns.control.set(self.impairment, self.direction, self.seed)
        ctx.log(f"  line {self.direction}: {self.impairment.describe()}")
        ctx.check(CheckResult.of(name, Verdict.PASS, self.impairment.describe(), "applied",
                                 metrics=self.impairment.to_dict(), detail="impairment injected on the lab's line"))


@step("clear_impairment")
@dataclass(frozen=True)
class ClearImpairment:
    """Make the line clean again (both directions, outages included)."""

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> ClearImpairment:
        return cls()

    def preflight(self, target: Target) -> None:
        _preflight(target, "clear_impairment", netns=True)

    def run(self, ctx: RunContext) -> None:
        lab = _need_lab(ctx, CheckName("line", subject="both"), netns=True)
        assert lab.netns is not None
        counters = lab.netns.control.clear()
        ctx.extra.setdefault("line", []).append(counters.get("lines"))
        ctx.log("  line: clean")


@step("outage")
@dataclass(frozen=True)
class Outage:
    """Cut the line for ``seconds`` (every packet lost), then restore what it did before.

    ``media_only`` (default true) keeps SIP flowing, ``direction`` as for ``impair``; ``wait`` (default
    true) holds the scenario until the line is back, ``wait: false`` goes on while it is cut.
    """

    seconds: float
    media_only: bool
    direction: str
    wait: bool
    shorthand = "seconds"

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> Outage:
        return cls(f.number("seconds", None, low=0.05, high=600, required=True), f.opt("media_only", bool, True),
                   f.choice("direction", LINE_DIRECTIONS, "both"), f.opt("wait", bool, True))

    def preflight(self, target: Target) -> None:
        _preflight(target, "outage", netns=True)

    def run(self, ctx: RunContext) -> None:
        name = CheckName("line", subject="outage")
        lab = _need_lab(ctx, name, netns=True)
        assert lab.netns is not None
        lab.netns.control.outage(self.seconds, self.direction, self.media_only)
        what = "media" if self.media_only else "all traffic"
        ctx.log(f"  line {self.direction}: outage of {self.seconds:g} s ({what})")
        ctx.check(CheckResult.of(name, Verdict.PASS, self.seconds, "applied", unit="s",
                                 detail=f"{what} cut {self.direction} for {self.seconds:g} s"))
        if self.wait:
            time.sleep(min(self.seconds, max(0.0, ctx.deadline - time.monotonic())))


# ---- lab components ----------------------------------------------------------------------------------
@step("lab_fault")
@dataclass(frozen=True)
class LabFault:
    """A lab component fails: ``component`` kamailio | rtpengine | services; ``action`` kill (SIGKILL),
    stop (SIGTERM), start, or restart (SIGKILL, then started again with the same configuration and
    awaited until its readiness probe answers)."""

    component: str
    action: str

    @classmethod
    def parse(cls, f: Fields, scope: ParseScope) -> LabFault:
        return cls(_required_choice(f, "component", COMPONENTS), _required_choice(f, "action", FAULT_ACTIONS))

    def preflight(self, target: Target) -> None:
        _preflight(target, "lab_fault", netns=False)

    def run(self, ctx: RunContext) -> None:
        name = CheckName("fault", subject=self.component)
        lab = _need_lab(ctx, name, netns=False)
        pid = lab.pids.get(self.component)
        t0 = time.monotonic()
        detail = ""
        if self.action in ("kill", "stop", "restart"):
            lab.stop_component(self.component, kill=self.action != "stop")
            detail = f"{'stopped' if self.action == 'stop' else 'killed'} {self.component} (pid {pid})"
        if self.action in ("start", "restart"):
            ready_s = lab.start_component(self.component)
            detail += ("; " if detail else "") + f"started again (pid {lab.pids.get(self.component)}), " \
                                                 f"ready after {ready_s:.2f} s"
        ctx.log(f"  lab fault: {detail}")
        ctx.check(CheckResult.of(name, Verdict.PASS, self.action, self.action, detail=detail,
                                 metrics={"elapsed_s": round(time.monotonic() - t0, 3)}))


def _required_choice(f: Fields, key: str, choices: tuple[str, ...]) -> str:
    f.req(key, str)
    return str(f.choice(key, choices, None))
