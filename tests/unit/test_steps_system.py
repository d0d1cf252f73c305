"""System steps at load time (typed parameters, errors naming file/line/field) and their threshold
lookup: step parameter > scenario thresholds > profile thresholds > defaults."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.contracts.errors import ScenarioError
from harness.contracts.target import Target
from harness.contracts.thresholds import DEFAULT_THRESHOLDS
from harness.scenarios import load_scenario
from harness.scenarios.context import RunContext
from harness.scenarios.steps_probe import limit
from harness.scenarios.steps_system import Reachability

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, steps: str, extra: str = "") -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(f"name: s\n{extra}steps:\n" + textwrap.indent(textwrap.dedent(steps).strip(), "  ") + "\n")
    return p


def test_shipped_system_suite_loads() -> None:
    sc = load_scenario(REPO / "scenarios" / "system.yaml")
    kinds = [e.keyword for e in sc.steps]
    for k in ("dns", "reachability", "options_rtt", "register_time", "clock", "tls_certificate", "expect_rtp"):
        assert k in kinds
    reach = next(e.step for e in sc.steps if e.keyword == "reachability")
    assert isinstance(reach, Reachability) and reach.transports == ("udp", "tcp", "tls")


def test_probe_only_scenario_with_defaults(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, """
        - reachability: {}
        - options_rtt: {count: 5, max_p95_ms: 80}
        - tls_certificate: {port: 5061, min_days: 30}
        """))
    assert sc.parties == {}
    reach, rtt, tls = (e.step for e in sc.steps)
    assert reach.transports == ("udp", "tcp", "tls") and reach.ports == () and reach.timeout_s == 2.0
    assert rtt.count == 5 and rtt.max_p95_ms == 80.0 and rtt.max_p50_ms is None
    assert tls.port == 5061 and tls.min_days == 30.0


@pytest.mark.parametrize(("steps", "message"), [
    ("- reachability: {transports: [udp, sctp]}",
     "s.yaml:3: steps[0].reachability.transports: unknown transport 'sctp'"),
    ("- reachability: {ports: {tls: 70000}}", "steps[0].reachability.ports.tls: 70000 is out of range"),
    ("- options_rtt: {count: 100000}", "steps[0].options_rtt.count: 100000 is out of range"),
    ("- options_rtt: {transport: sctp}", "steps[0].options_rtt.transport: must be one of udp, tcp, tls"),
    ("- tls_certificate: {ca_file: missing.pem}", "steps[0].tls_certificate.ca_file: CA file 'missing.pem' not found"),
    ("- register_time: {max_ms: fast}", "steps[0].register_time.max_ms: must be a number"),
    ("- expect_rtp: {call: main}", "steps[0].expect_rtp.call: unknown call 'main'"),
    ("- clock: {skew: 3}", "steps[0].clock.skew: unknown field 'skew'"),
])
def test_bad_parameters_name_file_line_and_field(tmp_path: Path, steps: str, message: str) -> None:
    with pytest.raises(ScenarioError) as err:
        load_scenario(write(tmp_path, steps))
    assert message in str(err.value)


def test_thresholds_come_from_the_step_then_scenario_then_profile(tmp_path: Path) -> None:
    sc = load_scenario(write(tmp_path, "- options_rtt: {}", "thresholds: {register_time_ms: 300}\n"))
    target = Target.from_mapping({"name": "t", "pbx": {"host": "127.0.0.1"},
                                  "thresholds": {"register_time_ms": 700}}, "<test>")
    ctx = RunContext(sc, target, tmp_path)
    assert limit(ctx, "register_time_ms", 50.0) == 50.0
    assert limit(ctx, "register_time_ms", None) == 300.0
    assert limit(ctx, "options_rtt_p95_ms", None) == DEFAULT_THRESHOLDS["options_rtt_p95_ms"]
    ctx2 = RunContext(load_scenario(write(tmp_path, "- options_rtt: {}")), target, tmp_path)
    assert limit(ctx2, "register_time_ms", None) == 700.0
