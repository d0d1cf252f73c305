"""README.md's lab command lines, run as written: ``harness lab up``, ``harness lab status``,
``harness lab profile``, ``harness lab down``; ``harness lab up --hardened`` followed by
``harness run scenarios/system.yaml`` and ``harness run scenarios/security.yaml`` with no --target (the
running lab is the target: it must be the hardened one, with its CA, TLS port and SRTP policy);
``harness lab up --netns``.

Each test's lab has a home and ports of its own (apart from the session's lab)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from .cli_lines import BASE, Ports, sh, workdir

LAB_PORTS = Ports(BASE + 230, BASE + 232, BASE + 235, BASE + 289)  # TLS on BASE + 231
NETNS_PORTS = Ports(BASE + 224, BASE + 226, BASE + 930, BASE + 959)  # inside the lab's own namespace


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    """A harness home; whatever lab a test leaves in it is stopped afterwards."""
    yield tmp_path / "home"
    if (tmp_path / "home" / "lab" / "state.json").exists():  # a test that failed half-way
        sh("harness lab down", cwd=tmp_path, home=tmp_path / "home", ports=LAB_PORTS)


def run_dir_of(out: str, work: Path) -> Path:
    """The run directory ``harness run`` printed (``results: reports/run-.../results.json``)."""
    return work / Path(out.split("results: ", 1)[1].split()[0]).parent


def test_lab_up_status_profile_down_as_in_the_readme(home: Path, tmp_path: Path) -> None:
    def run(line: str) -> tuple[int, str]:
        proc = sh(line, cwd=tmp_path, home=home, ports=LAB_PORTS)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.returncode, proc.stdout + proc.stderr

    rc, out = run("harness lab up")
    assert rc == 0, out
    assert f"lab up: SIP 127.0.0.1:{LAB_PORTS.sip}/udp" in out and "hardened" not in out
    rc, out = run("harness lab status")
    assert rc == 0, out
    assert "lab: UP" in out and f"hardened: no: SIP over UDP 127.0.0.1:{LAB_PORTS.sip} only" in out
    assert "kamailio" in out and "ready" in out and "agent1      sip:2001@lab.local" in out
    rc, out = run("harness lab profile")
    assert rc == 0, out
    profile = yaml.safe_load(out)
    assert profile["pbx"] == {"host": "127.0.0.1", "port": LAB_PORTS.sip, "transport": "udp", "domain": "lab.local"}
    assert "media" not in profile
    rc, out = run("harness lab down")
    assert rc == 0 and "lab down" in out, out
    rc, out = run("harness lab status")
    assert rc == 1 and "lab: DOWN" in out


def test_hardened_lab_keeps_its_profile_through_the_cli(home: Path, tmp_path: Path) -> None:
    work = workdir(tmp_path / "work")

    def run(line: str, timeout: float = 120) -> tuple[int, str]:
        proc = sh(line, cwd=work, home=home, ports=LAB_PORTS, timeout=timeout)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.returncode, proc.stdout + proc.stderr

    ca, tls = home / "lab" / "cert.pem", LAB_PORTS.sip + 1
    rc, out = run("harness lab up --hardened")
    assert rc == 0, out
    assert f"hardened: yes: SIP over UDP and TCP 127.0.0.1:{LAB_PORTS.sip}, TLS 127.0.0.1:{tls} (CA {ca})" in out
    state = json.loads((home / "lab" / "state.json").read_text())
    assert state["config"]["hardened"] is True

    rc, out = run("harness lab status")
    assert rc == 0, out
    assert f"hardened: yes: SIP over UDP and TCP 127.0.0.1:{LAB_PORTS.sip}, TLS 127.0.0.1:{tls} (CA {ca}); " \
           "SRTP offered" in out
    rc, out = run("harness lab status --json")
    assert rc == 0, out
    status = json.loads(out)
    assert status["up"] is True and status["hardened"] is True and status["config"]["hardened"] is True
    assert status["security"] == {"hardened": True, "transports": ["udp", "tcp", "tls"], "tls_port": tls,
                                  "tls_ca_file": str(ca), "srtp": "offered"}
    rc, out = run("harness lab profile")
    assert rc == 0, out
    assert out.startswith("# the lab PBX, hardened (running;")
    profile = yaml.safe_load(out)
    assert profile["pbx"]["tls_ca_file"] == str(ca) and profile["pbx"]["tls_port"] == tls
    assert profile["media"] == {"srtp": "offered"}
    assert ca.is_file()
    rc, out = run("harness lab up")  # a plain lab asked for while the hardened one runs: it says so
    assert rc == 0 and "lab already running" in out and ", hardened" in out, out
    assert "note: it is hardened; 'harness lab down' first to start it plain" in out

    # no --target: the running lab, as it was started
    rc, out = run("harness run scenarios/system.yaml")
    assert rc == 0, out
    (system,) = json.loads((run_dir_of(out, work) / "results.json").read_text())["scenarios"]
    checks = {c["name"]: c for c in system["checks"]}
    assert all(c["verdict"] == "PASS" for c in checks.values()), [c for c in checks.values() if c["verdict"] != "PASS"]
    assert {"reachability:udp", "reachability:tcp", "reachability:tls", "tls:chain", "tls:expiry", "tls:hostname",
            "tls:protocols"} <= set(checks)
    assert checks["tls:chain"]["verdict"] == "PASS"  # verified against the lab's CA, not "self-signed certificate"
    assert checks["tls:protocols"]["value"] == "TLSv1.2, TLSv1.3"
    assert {"clock:skew", "options_rtt:p95", "register_time", "rtp:caller->agent", "rtp:agent->caller"} <= set(checks)

    t0 = time.monotonic()
    rc, out = run("harness run scenarios/security.yaml")
    assert rc == 0, out
    assert time.monotonic() - t0 < 60
    (security,) = json.loads((run_dir_of(out, work) / "results.json").read_text())["scenarios"]
    checks = {c["name"]: c for c in security["checks"]}
    assert all(c["verdict"] == "PASS" for c in checks.values()), [c for c in checks.values() if c["verdict"] != "PASS"]
    assert checks["security:transport:tls_offered"]["value"] == "offered"
    assert checks["security:transport:srtp_offered"]["value"] == "accepted"
    assert "over TLS" in checks["security:transport:srtp_offered"]["detail"]
    brute = checks["security:brute_force:protection"]
    assert brute["value"] == "blocked after 5 wrong passwords", brute["detail"]
    # the ban's evidence: the right password worked before, went unanswered 3 times after, and the control got in
    assert brute["metrics"]["right_before"]["code"] == 200 and brute["metrics"]["wrong_codes"][:5] == [401] * 5
    assert [a["code"] for a in brute["metrics"]["right_after"]] == [None] * 3
    assert brute["metrics"]["control"]["code"] == 200 and "the source is banned" in brute["detail"]

    rc, out = run("harness lab down")
    assert rc == 0 and "lab down" in out, out
    assert not (home / "lab" / "state.json").exists()


def test_lab_up_netns_as_in_the_readme(home: Path, tmp_path: Path) -> None:
    def run(line: str) -> tuple[int, str]:
        proc = sh(line, cwd=tmp_path, home=home, ports=NETNS_PORTS)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.returncode, proc.stdout + proc.stderr

    rc, out = run("harness lab up --netns")
    assert rc == 0, out
    assert "lab up: SIP 10.233." in out
    rc, out = run("harness lab status")
    assert rc == 0 and "netem" in out and "namespace" in out, out
    rc, out = run("harness lab down")
    assert rc == 0 and "netem_stop_s" in out, out
