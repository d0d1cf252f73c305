"""The security suite against the default lab, the way `harness run scenarios/security.yaml` runs it:
bounded, quick, every check judged with a severity, evidence kept with credentials masked."""

from __future__ import annotations

import json
import re
import socket
import ssl
import time
from pathlib import Path

from harness.contracts.settings import Settings
from harness.lab import LabStack
from harness.lab.config import LAB_ACCOUNTS
from harness.scenarios.session import run_session
from harness.scenarios.steps_security_base import SEVERITIES

from .conftest import REPO

ALWAYS_PASS = ("security:passwords:profile", "security:auth:register_without_credentials",
               "security:auth:register_wrong_password", "security:auth:invite_without_credentials",
               "security:auth:invite_wrong_password", "security:toll_fraud:unauthenticated",
               "security:toll_fraud:open_relay", "security:toll_fraud:authenticated",
               "security:enumeration:REGISTER", "security:enumeration:REGISTER_AUTH", "security:enumeration:INVITE",
               "security:header_leakage", "security:transport:plaintext_sip")


def tls_listens(port: int) -> bool:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s, ctx.wrap_socket(s):
            return True
    except OSError:
        return False


def test_security_suite_against_the_lab(lab: LabStack, lab_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    lines: list[str] = []
    t0 = time.monotonic()
    result = run_session(Settings.load(lab_home), [REPO / "scenarios" / "security.yaml"], target_file=None, out=out,
                         log=lines.append)
    elapsed = time.monotonic() - t0
    (sc,) = result.scenarios
    checks = {c.name: c for c in sc.checks}
    assert elapsed < 60, elapsed
    assert lab.is_running()  # the session found the lab running and left it so

    security = [c for c in sc.checks if c.name.startswith("security:")]
    assert len(security) >= 25
    for c in security:
        assert c.metrics["category"] == "security" and c.metrics["severity"] in SEVERITIES, c
        assert c.verdict.value in ("PASS", "FAIL"), (c.name, c.detail)  # every question got an answer
        assert c.value is not None and c.threshold is not None
    for name in ALWAYS_PASS:
        assert checks[name].verdict.value == "PASS", (name, checks[name].detail)
    robustness = [c for c in security if c.name.startswith("security:robustness:")]
    assert len(robustness) == 12 and all(c.verdict.value == "PASS" for c in robustness)
    assert "400" in checks["security:robustness:bad_uri"].value  # each probe's own answer is recorded

    # what depends on the lab's configuration is reported as it is
    tls = checks["security:transport:tls_offered"]
    assert (tls.verdict.value == "PASS") == tls_listens(lab.config.sip_port + 1)
    # the default lab has no brute-force ban: the right password works before and right after the wrong ones
    brute = checks["security:brute_force:protection"]
    assert brute.verdict.value == "FAIL" and brute.value == "none", brute.detail
    assert brute.metrics["right_before"]["code"] == 200 and brute.metrics["right_after"][0]["code"] == 200
    assert brute.metrics["wrong_codes"] == [401] * 10 and "every guess was answered and checked" in brute.detail
    # toll fraud: every dial format was probed and refused with a final answer of the PBX's own
    toll = checks["security:toll_fraud:authenticated"]
    assert {f["format"] for f in toll.metrics["formats"]} == {"00", "+", "011", "9"}
    assert all(f["outcome"] == "refused" for f in toll.metrics["formats"]) and "404 Not Found" in toll.detail

    # evidence: raw SIP with numbered exchanges, no password, no digest response; a bounded number of packets
    evidence = out / sc.out_dir / "probes-evidence.txt"
    text = evidence.read_text()
    assert sc.artifacts["evidence:probes"] == "probes-evidence.txt"
    for _, password in LAB_ACCOUNTS.values():
        assert password not in text
    assert "a=crypto:" in text and not re.search(r"inline:(?!\*\*\*)", text)  # SRTP keys masked too
    log = "\n".join(lines)
    assert not any(password in log for _, password in LAB_ACCOUNTS.values())
    assert 'response="***"' in text and "Proxy-Authorization: Digest" in text
    sent = text.count("\n=== #")
    assert 100 < sent < 600, sent
    cited = checks["security:auth:register_wrong_password"].metrics["evidence"]["exchanges"]
    assert all(f"=== #{n} TX" in text for n in cited)
    stored = json.loads((out / "results.json").read_text())
    assert stored["scenarios"][0]["checks"][0]["name"] == "register:agent"
