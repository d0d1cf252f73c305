"""One run of scenarios against a target, with the lab managed around it.

``harness run``, ``harness retest`` and ``harness run --only-failed`` all come through here::

    result = run_session(settings, [Path("scenarios/nightly.yaml")], target_file=None, out=Path("reports/x"))

With no target file the embedded lab is used: started if it is not running, and stopped afterwards
only if this session started it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.contracts.errors import InputError, ScenarioError
from harness.contracts.results import DEFAULT_RERUNS, RunResult
from harness.contracts.settings import Settings
from harness.contracts.target import Target, load_target
from harness.lab.config import LabConfig
from harness.lab.stack import LabStack
from harness.scenarios.loader import load_paths
from harness.scenarios.runner import Runner, RunSink
from harness.scenarios.scenario_model import Scenario

__all__ = ["check_accounts", "default_run_dir", "lab_running", "preflight", "resolve_target",
           "run_session"]


def default_run_dir(base: Path = Path("reports")) -> Path:
    out = base / time.strftime("run-%Y%m%d-%H%M%S")
    n = 2
    while out.exists():
        out = base / (time.strftime("run-%Y%m%d-%H%M%S") + f"-{n}")
        n += 1
    return out


def check_accounts(scenarios: list[Scenario], target: Target) -> None:
    """Every party's account must exist in the target profile: a usage error before anything starts."""
    for sc in scenarios:
        for spec in sc.parties.values():
            if spec.account not in target.accounts:
                known = ", ".join(sorted(target.accounts)) or "none"
                raise ScenarioError(f"account '{spec.account}' is not in target profile {target.source} "
                                    f"(accounts: {known})", sc.path, spec.line, f"parties.{spec.name}.account")


def preflight(scenarios: list[Scenario], target: Target) -> None:
    """Steps that can tell before the run that the target is unusable for them (a probe target that
    does not resolve, or is out of scope) say so now, as an input error."""
    done: set[type] = set()
    for sc in scenarios:
        for entry in sc.steps:
            check = getattr(entry.step, "preflight", None)
            if check is not None and type(entry.step) not in done:
                done.add(type(entry.step))
                check(target)


def resolve_target(settings: Settings, target_file: Path | None) -> tuple[Target, LabStack | None]:
    """The target profile's PBX, or with no file the embedded lab (and its stack)."""
    if target_file is not None:
        return load_target(target_file), None
    stack = LabStack(settings.lab_dir)
    return stack.target, stack


@contextmanager
def lab_running(settings: Settings, stack: LabStack | None, log: Callable[[str], None]) -> Iterator[LabStack | None]:
    """The lab up for the duration (started if it is not running, then stopped again only if started here);
    ``None`` (a user's PBX) passes through."""
    started = False
    try:
        if stack is not None and not stack.is_running():
            if stack.pids:
                stack.stop()  # a lab that crashed earlier: clean up what is left
            stack = LabStack(settings.lab_dir, LabConfig.from_env(), media_priority=settings.media_priority)
            stack.start()
            started = True
            log(f"started the lab PBX at {stack.config.ip}:{stack.config.sip_port}")
        yield stack
    finally:
        if started and stack is not None:
            stack.stop()
            log("stopped the lab PBX")


def run_session(settings: Settings, paths: list[Path], *, target_file: Path | None, out: Path,
                log: Callable[[str], None] = print, sinks: list[RunSink] | None = None,
                scenarios: list[Scenario] | None = None, reruns: int = DEFAULT_RERUNS) -> RunResult:
    """Load (unless ``scenarios`` are given), validate, bring the lab up if needed, run, write results.

    ``reruns``: extra attempts for a scenario its starved host left unjudged (harness.scenarios.rerun).
    Input errors are raised before any process starts. KeyboardInterrupt propagates after the results
    so far are written.
    """
    scenarios = load_paths(paths) if scenarios is None else scenarios
    target = load_target(target_file) if target_file else None
    target, stack = resolve_target(settings, target_file)
    check_accounts(scenarios, target)
    preflight(scenarios, target)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"run directory {out} exists and is not empty; choose another with --out")
    with lab_running(settings, stack, log) as stack:
        target = stack.target if stack is not None else target
        return Runner(target, out.resolve(), lab=stack, log=log, sinks=sinks,
                      media_priority=settings.media_priority, reruns=reruns).run_all(scenarios)
