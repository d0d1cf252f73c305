"""The system suite against the default lab: reachability per transport as the lab really offers
it, OPTIONS and REGISTER response times, RTP both ways through the PBX; DNS checks for a target
given by name."""

from __future__ import annotations

import socket
from pathlib import Path

from harness.contracts.target import Target
from harness.lab import LabStack
from harness.lab.config import lab_profile_mapping
from harness.scenarios import load_paths
from harness.scenarios.context import RunContext
from harness.scenarios.runner import Runner

from .conftest import REPO, write_scenario


def tcp_listens(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_system_suite_against_the_lab(lab: LabStack, tmp_path: Path) -> None:
    lines: list[str] = []
    result = Runner(lab.target, tmp_path / "run", lab=lab, log=lines.append).run_all(
        load_paths([REPO / "scenarios" / "system.yaml"]))
    (sc,) = result.scenarios
    checks = {c.name: c for c in sc.checks}
    log = "\n".join(lines)
    for name in ("reachability:udp", "options_rtt:p50", "options_rtt:p95", "options_rtt:loss", "register_time",
                 "rtp:caller->agent", "rtp:agent->caller", "call:media", "hangup:media"):
        assert checks[name].verdict.value == "PASS", (name, log)
    assert checks["options_rtt:p95"].metrics["n"] == 20 and checks["options_rtt:p95"].unit == "ms"
    assert checks["register_time"].metrics["challenged"] is True
    rtp = checks["rtp:caller->agent"]
    assert rtp.value >= 95 and rtp.unit == "%" and rtp.metrics["tx_packets"] >= 100  # 3 s of 20 ms packets
    # TCP and TLS each get a verdict that matches what the lab offers: not offered is a FAIL, never a pass
    for tp, port in (("tcp", lab.config.sip_port), ("tls", lab.config.sip_port + 1)):
        c = checks[f"reachability:{tp}"]
        if not tcp_listens(port):
            assert c.verdict.value == "FAIL" and c.value == "refused", c
    if not tcp_listens(lab.config.sip_port + 1):
        assert [n for n in checks if n.startswith("tls:")] == ["tls:handshake"]
        assert checks["tls:handshake"].verdict.value == "FAIL"
    assert not any(n.startswith("dns:") for n in checks) and "dns: not applicable" in log
    evidence = (tmp_path / "run" / sc.out_dir / "probes-evidence.txt").read_text()
    assert "OPTIONS sip:127.0.0.1" in evidence and "lab-caller-pw" not in evidence


def test_dns_checks_for_a_target_given_by_name(lab: LabStack, tmp_path: Path) -> None:
    mapping = lab_profile_mapping(lab.config, lab.dir / "rec")
    mapping["pbx"]["host"] = "localhost"  # resolved from /etc/hosts: no DNS server is asked
    target = Target.from_mapping(mapping, "<by-name>")
    sc = write_scenario(tmp_path, """
        name: dns-only
        steps:
          - dns: {lookups: 3, max_ms: 500}
        """)
    scenario = load_paths([sc])[0]
    ctx = RunContext(scenario, target, tmp_path)  # probe-only: the step runs without the runner's party setup
    for entry in scenario.steps:
        entry.step.run(ctx)
    checks = {c.name: c for c in ctx.checks}
    assert set(checks) == {"dns:resolves", "dns:time", "dns:stable"}
    assert all(c.verdict.value == "PASS" for c in checks.values()), checks
    assert "127.0.0.1" in checks["dns:resolves"].value or "::1" in checks["dns:resolves"].value
