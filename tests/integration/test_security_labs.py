"""The system and security suites against two variants of the lab PBX: a deliberately weak one
(the security suite must FAIL on the right checks) and a hardened one (both suites must PASS).

The variants are the lab's own kamailio.cfg with a few edits (below), started on ports of their
own. The hardened edits are the ones proposed for the lab's default configuration.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.lab import LabConfig, LabStack
from harness.lab.config import lab_profile_mapping
from harness.results import ScenarioResult
from harness.scenarios import load_paths
from harness.scenarios.runner import Runner
from harness.target import Target

from .conftest import _BASE, REPO

WEAK = LabConfig(ip="127.0.0.1", sip_port=_BASE + 10, ng_port=_BASE + 12, rtp_min=_BASE + 100, rtp_max=_BASE + 150)
HARD = LabConfig(ip="127.0.0.1", sip_port=_BASE + 20, ng_port=_BASE + 22, rtp_min=_BASE + 160, rtp_max=_BASE + 210)
HARD_TLS_PORT = HARD.sip_port + 1

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


def hardened_patches(lab_dir: Path) -> list[tuple[str, str]]:
    """TCP and TLS listeners, a ban on sources with repeated failed logins, no calls from unknown
    domains to lab users, SRTP (SDES) offered through rtpengine, and a Date header."""
    return [
        ("disable_tcp=yes\n",
         "disable_tcp=no\nenable_tls=yes\n"
         f"listen=tcp:SIP_IP:SIP_PORT\nlisten=tls:SIP_IP:{HARD_TLS_PORT}\nalias=SIP_IP:{HARD_TLS_PORT}\n"),
        ('loadmodule "rtpengine.so"\n',
         f'loadmodule "rtpengine.so"\nloadmodule "tls.so"\nmodparam("tls", "config", "{lab_dir / "tls.cfg"}")\n'),
        ('modparam("htable", "htable", "users=>size=8;")\n',
         'modparam("htable", "htable", "users=>size=8;")\n'
         'modparam("htable", "htable", "authfail=>size=8;autoexpire=120;")\n'),
        ('\tif (is_method("OPTIONS") && uri==myself && $rU==$null) {',
         '\tif (is_method("REGISTER|OPTIONS")) { append_to_reply("Date: $utimef(%a, %d %b %Y %H:%M:%S GMT)\\r\\n"); }\n'
         '\tif (is_method("OPTIONS") && uri==myself && $rU==$null) {'),
        ('route[AUTH] {\n\tif (is_method("REGISTER") || from_uri == myself) {\n'
         '\t\tif (!pv_auth_check("$fd", "$sht(users=>$fU)", "0", "1")) {\n',
         'route[AUTH] {\n'
         '\t$var(fails) = $sht(authfail=>$si);\n'
         '\tif ($var(fails) >= 5) {\n'
         '\t\txlog("L_WARN", "auth: ignoring $si after repeated failed logins\\n"); exit;\n\t}\n'
         '\tif (!is_method("REGISTER") && from_uri != myself && $rU != $null && $sht(users=>$rU) != $null) {\n'
         '\t\tsl_send_reply("403", "Forbidden"); exit;\n\t}\n'
         '\tif (is_method("REGISTER") || from_uri == myself) {\n'
         '\t\tif (!pv_auth_check("$fd", "$sht(users=>$fU)", "0", "1")) {\n'
         '\t\t\t$var(rc) = $rc;\n'
         '\t\t\tif (($var(rc) == -1 || $var(rc) == -2 || $var(rc) == -3)\n'
         '\t\t\t\t\t&& (is_present_hf("Authorization") || is_present_hf("Proxy-Authorization"))) {\n'
         '\t\t\t\t$sht(authfail=>$si) = $var(fails) + 1;  # a wrong answer to a challenge\n'
         '\t\t\t}\n'),
        ('\t\trtpengine_manage(RTPENGINE_FLAGS);\n\t}\n\treturn;\n}',
         '\t\tif (is_method("INVITE") && search_body("RTP/SAVP")) { setflag(7); }\n'
         '\t\tif (isflagset(7)) { $var(rf) = RTPENGINE_FLAGS + " RTP/AVP"; rtpengine_manage("$var(rf)"); }\n'
         '\t\telse { rtpengine_manage(RTPENGINE_FLAGS); }\n\t}\n\treturn;\n}'),
        ('onreply_route[MANAGE_REPLY] {\n\tif (has_body("application/sdp")) { rtpengine_manage(RTPENGINE_FLAGS); }\n}',
         'onreply_route[MANAGE_REPLY] {\n\tif (has_body("application/sdp")) {\n'
         '\t\tif (isflagset(7)) { $var(rf) = RTPENGINE_FLAGS + " RTP/SAVP"; rtpengine_manage("$var(rf)"); }\n'
         '\t\telse { rtpengine_manage(RTPENGINE_FLAGS); }\n\t}\n}'),
    ]


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


def make_certificate(dest: Path, names: str = "DNS:lab.local,IP:127.0.0.1", days: int = 30) -> tuple[Path, Path]:
    """A self-signed certificate for the hardened lab (test-only key, made fresh each session)."""
    cert, key = dest / "cert.pem", dest / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", str(days),
                    "-subj", "/CN=lab.local", "-addext", f"subjectAltName={names}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture(scope="module")
def weak_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VariantLab]:
    stack = VariantLab(tmp_path_factory.mktemp("weak") / "lab", WEAK, WEAK_PATCHES, WEAK_ACCOUNTS)
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def hardened_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VariantLab]:
    if not Path(_modules_dir(), "tls.so").exists():
        pytest.fail("kamailio's TLS module is not installed: apt-get install kamailio-tls-modules")
    if shutil.which("openssl") is None:
        pytest.fail("openssl is not installed")
    lab_dir = tmp_path_factory.mktemp("hardened") / "lab"
    lab_dir.mkdir(parents=True)
    cert, key = make_certificate(lab_dir)
    (lab_dir / "tls.cfg").write_text(
        "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
        f"private_key = {key}\ncertificate = {cert}\n\n"
        "[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n")
    stack = VariantLab(lab_dir, HARD, hardened_patches(lab_dir))
    stack.start()
    yield stack
    stack.stop()


def _modules_dir() -> str:
    from harness.lab.stack import _kamailio_modules_dir

    return _kamailio_modules_dir()


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
    text = (tmp_path / "run" / sc.out_dir / "probes-evidence.txt").read_text()
    assert "BYE sip:" in text  # the toll-fraud call that got through was hung up


def test_security_suite_passes_the_hardened_lab(hardened_lab: VariantLab, tmp_path: Path) -> None:
    (sc,), elapsed, lines = run_suite(hardened_lab, tmp_path / "run", "security.yaml")
    bad = [(c.name, c.verdict.value, c.value, c.detail) for c in sc.checks if c.verdict.value != "PASS"]
    assert not bad, "\n".join(lines)
    checks = checks_of(sc)
    assert checks["security:brute_force:protection"].value == "blocked after 5 wrong passwords"
    assert checks["security:transport:srtp_offered"].value == "accepted"
    assert "over TLS" in checks["security:transport:srtp_offered"].detail
    assert elapsed < 45


def test_system_suite_passes_the_hardened_lab(hardened_lab: VariantLab, tmp_path: Path) -> None:
    # the lab's certificate is self-signed: the profile's CA file makes the chain verifiable
    text = (REPO / "scenarios" / "system.yaml").read_text()
    cert = hardened_lab.dir / "cert.pem"
    assert "  - tls_certificate: {}\n" in text
    scenario = tmp_path / "system.yaml"
    scenario.write_text(text.replace("  - tls_certificate: {}\n", f"  - tls_certificate: {{ca_file: {cert}}}\n"))
    lines: list[str] = []
    result = Runner(hardened_lab.target, tmp_path / "run", lab=hardened_lab, log=lines.append).run_all(
        load_paths([scenario]))
    (sc,) = result.scenarios
    bad = [(c.name, c.verdict.value, c.value, c.detail) for c in sc.checks if c.verdict.value != "PASS"]
    assert not bad, "\n".join(lines)
    names = {c.name for c in sc.checks}
    assert {"reachability:udp", "reachability:tcp", "reachability:tls", "tls:chain", "tls:expiry", "tls:hostname",
            "tls:protocols", "clock:skew", "options_rtt:p95", "register_time", "rtp:caller->agent",
            "rtp:agent->caller"} <= names
    assert checks_of(sc)["tls:protocols"].value == "TLSv1.2, TLSv1.3"
