"""The system and security suites against two variants of the lab PBX: a deliberately weak one
(the security suite must FAIL on the right checks) and the hardened one, ``harness lab up --hardened``
(both suites must PASS).

The weak variant is the lab's own kamailio.cfg with a few edits (below); each runs on ports of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.contracts.results import ScenarioResult
from harness.contracts.target import Target
from harness.lab import LabConfig, LabStack
from harness.lab.config import lab_profile_mapping
from harness.scenarios import load_paths
from harness.scenarios.runner import Runner

from .conftest import _BASE, REPO

WEAK = LabConfig(ip="127.0.0.1", sip_port=_BASE + 10, ng_port=_BASE + 12, rtp_min=_BASE + 100, rtp_max=_BASE + 150)
HARD = LabConfig(ip="127.0.0.1", sip_port=_BASE + 20, ng_port=_BASE + 22, rtp_min=_BASE + 160, rtp_max=_BASE + 210,
                 hardened=True)

# ---- the weak lab: what a careless PBX set-up looks like ---------------------------------------------
WEAK_PATCHES = [
    # the default Server header names kamailio and its version
    ('server_header="Server: harness-lab-pbx"\n', ""),
    # unknown users get a 404 before any challenge (extension enumeration by response code)
    ('route[AUTH] {\n',
     'route[AUTH] {\n\tif (is_method("REGISTER") && $sht(users=>$fU) == $null) '
     '{ sl_send_reply("404", "User Not Found"); exit; }\n'),
    # "external" numbers (00...) go to agent 2001, standing in for a PSTN trunk, with no check at all
    ('\tif (uri == myself) {\n\t\tif (!lookup("location")) {',
     '\tif ($rU =~ "^00") { $rU = "2001"; $rd = "lab.local"; }\n'
     '\tif (uri == myself) {\n\t\tif (!lookup("location")) {'),
    ('\troute(AUTH);\n\n\tif (is_method("REGISTER")) {',
     '\tif (!($rU =~ "^00")) { route(AUTH); }\n\n\tif (is_method("REGISTER")) {'),
]
WEAK_ACCOUNTS = {"weak": {"username": "1009", "password": "1234"}}


class VariantLab(LabStack):
    """The lab with its kamailio.cfg edited and, optionally, extra accounts in its profile."""

    def __init__(self, lab_dir: Path, config: LabConfig, patches: list[tuple[str, str]],
                 accounts: dict[str, Any] | None = None):
        super().__init__(lab_dir, config)
        self.patches, self.extra_accounts = patches, accounts or {}

    @property
    def target(self) -> Target:
        m = lab_profile_mapping(self.config, self.dir / "rec")
        m["accounts"].update(self.extra_accounts)
        return Target.from_mapping(m, "<variant lab>", is_lab=True)

    def _write_configs(self) -> None:
        super()._write_configs()
        cfg = self.dir / "kamailio.cfg"
        text = cfg.read_text()
        for old, new in self.patches:
            assert old in text, f"the lab's kamailio.cfg changed: cannot find {old[:60]!r}"
            text = text.replace(old, new, 1)
        cfg.write_text(text)


@pytest.fixture(scope="module")
def weak_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VariantLab]:
    stack = VariantLab(tmp_path_factory.mktemp("weak") / "lab", WEAK, WEAK_PATCHES, WEAK_ACCOUNTS)
    stack.start()
    yield stack
    stack.stop()



def run_suite(stack: LabStack, out: Path, *files: str) -> tuple[list[ScenarioResult], float, list[str]]:
    lines: list[str] = []
    t0 = time.monotonic()
    result = Runner(stack.target, out, lab=stack, log=lines.append).run_all(
        load_paths([REPO / "scenarios" / f for f in files]))
    return result.scenarios, time.monotonic() - t0, lines


def checks_of(sc: ScenarioResult) -> dict[str, Any]:
    return {c.name: c for c in sc.checks}


# ---- the tests -------------------------------------------------------------------------------------------
STABLE = ("security:auth:register_without_credentials", "security:auth:register_wrong_password",
          "security:auth:invite_without_credentials", "security:auth:invite_wrong_password")


def test_security_suite_fails_the_weak_lab_on_the_right_checks(weak_lab: VariantLab, tmp_path: Path) -> None:
    (sc,), elapsed, _ = run_suite(weak_lab, tmp_path / "run", "security.yaml")
    checks = checks_of(sc)
    assert sc.verdict.value == "FAIL" and elapsed < 60
    failed = {n for n, c in checks.items() if c.verdict.value == "FAIL"}
    expected = {"security:passwords:profile", "security:auth:invite_from_unknown_domain",
                "security:toll_fraud:unauthenticated", "security:toll_fraud:authenticated",
                "security:enumeration:REGISTER", "security:enumeration:REGISTER_AUTH", "security:header_leakage",
                "security:transport:tls_offered", "security:transport:srtp_offered", "security:brute_force:protection"}
    assert expected <= failed, sorted(failed)
    assert not [n for n, c in checks.items() if c.verdict.value == "ERROR"]
    for name in STABLE:  # the weak lab still challenges its own users: those checks must not cry wolf
        assert checks[name].verdict.value == "PASS", checks[name]
    assert "weak (1009)" in checks["security:passwords:profile"].detail
    assert "1234" not in checks["security:passwords:profile"].detail
    assert checks["security:enumeration:REGISTER"].metrics["leaks"][:2] == ["code", "reason"]
    assert "kamailio 5." in checks["security:header_leakage"].detail
    toll = checks["security:toll_fraud:unauthenticated"]
    assert toll.metrics["severity"] == "critical" and "torn down at once" in toll.detail
    # only the 00 format is routed by the weak lab; the other formats are probed and refused
    kinds = {f["format"]: f["outcome"] for f in checks["security:toll_fraud:authenticated"].metrics["formats"]}
    assert kinds == {"00": "routed", "+": "refused", "011": "refused", "9": "refused"}
    brute = checks["security:brute_force:protection"]
    assert brute.value == "none" and brute.metrics["right_after"][0]["code"] == 200, brute.detail
    text = (tmp_path / "run" / sc.out_dir / "probes-evidence.txt").read_text()
    assert "BYE sip:" in text  # the toll-fraud call that got through was hung up


# The hardened lab's security and system suites run through the CLI, as a user runs them:
# tests/integration/test_readme_lab.py::test_hardened_lab_keeps_its_profile_through_the_cli.
