"""Scenarios: the model (frozen dataclasses), the loader (file -> model), the step registry and the runner.

::

    scenarios = load_paths([Path("scenarios/nightly.yaml")])
    result = Runner(target, Path("reports/run-1")).run_all(scenarios)
"""

from harness.scenarios.loader import load_paths, load_scenario, load_suite
from harness.scenarios.registry import REGISTRY
from harness.scenarios.scenario_model import Scenario, Suite

__all__ = ["REGISTRY", "Scenario", "Suite", "load_paths", "load_scenario", "load_suite"]
