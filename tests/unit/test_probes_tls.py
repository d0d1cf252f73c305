"""TLS checks: certificate facts from literal dicts, and the live checks against a loopback TLS server
with a throw-away self-signed certificate (chain, validity, hostname, protocol versions)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.contracts.target import Target
from harness.contracts.verdict import Verdict
from harness.probes import PacketBudget, ProbeScope, ProbeSession, tlscheck
from harness.scenarios.steps_system import tls_checks

CERT = {"subject": ((("commonName", "pbx.example.com"),),),
        "subjectAltName": (("DNS", "pbx.example.com"), ("DNS", "*.sip.example.com"), ("IP Address", "192.0.2.10")),
        "notBefore": "Jan  1 00:00:00 2024 GMT", "notAfter": "Jan 31 00:00:00 2024 GMT"}


@pytest.mark.parametrize(("name", "ok"), [
    ("pbx.example.com", True), ("PBX.Example.COM.", True), ("a.sip.example.com", True),
    ("a.b.sip.example.com", False), ("sip.example.com", False), ("example.com", False),
    ("192.0.2.10", True), ("192.0.2.11", False)])
def test_name_matching_follows_rfc6125(name: str, ok: bool) -> None:
    assert tlscheck.name_matches(CERT, name)[0] is ok


def test_common_name_counts_only_without_dns_names() -> None:
    cn_only = {"subject": ((("commonName", "legacy.example.com"),),)}
    assert tlscheck.name_matches(cn_only, "legacy.example.com") == (True, ["legacy.example.com"])
    assert tlscheck.name_matches(CERT, "pbx.example.com")[1][:2] == ["pbx.example.com", "*.sip.example.com"]
    bad_wildcard = {"subjectAltName": (("DNS", "*.com"), ("DNS", "p*x.example.com"))}
    assert not tlscheck.name_matches(bad_wildcard, "example.com")[0]
    assert not tlscheck.name_matches(bad_wildcard, "pbx.example.com")[0]


def test_days_left_and_since() -> None:
    jan_21 = ssl.cert_time_to_seconds("Jan 21 00:00:00 2024 GMT")
    assert tlscheck.days_left(CERT, jan_21) == (10.0, 20.0)
    left, _ = tlscheck.days_left(CERT, ssl.cert_time_to_seconds("Feb  5 00:00:00 2024 GMT"))
    assert left == -5.0


# ---- live, against a loopback TLS server ---------------------------------------------------------------
@pytest.fixture(scope="module")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate")
    d = tmp_path_factory.mktemp("cert")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
                    "/CN=pbx.test", "-addext", "subjectAltName=DNS:pbx.test,IP:127.0.0.1", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=60)
    return cert, key


@contextlib.contextmanager
def serve(cert_files: tuple[Path, Path], minimum: ssl.TLSVersion) -> Iterator[int]:
    """A TLS server on loopback that completes handshakes (down to ``minimum``) and hangs up."""
    cert, key = cert_files
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if minimum < ssl.TLSVersion.TLSv1_2:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = minimum
    ctx.load_cert_chain(cert, key)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.settimeout(0.5)
                    with contextlib.suppress(OSError, ssl.SSLError):
                        tls.recv(1)
            except (OSError, ssl.SSLError):
                conn.close()  # a handshake we refused (an old protocol version)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield srv.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        srv.close()


@pytest.fixture
def tls_server(cert_files: tuple[Path, Path]) -> Iterator[int]:
    with serve(cert_files, ssl.TLSVersion.TLSv1_2) as port:
        yield port


def scope_budget() -> tuple[ProbeScope, PacketBudget]:
    return ProbeScope("127.0.0.1", ("127.0.0.1",)), PacketBudget(20)


def test_fetch_verify_and_protocols(tls_server: int, cert_files: tuple[Path, Path]) -> None:
    scope, budget = scope_budget()
    info = tlscheck.fetch(scope, budget, tls_server, "pbx.test")
    cert = tlscheck.decode(info.der)
    assert info.version in ("TLSv1.2", "TLSv1.3")
    assert dict(cert["subjectAltName"]) == {"DNS": "pbx.test", "IP Address": "127.0.0.1"}
    assert 29 < tlscheck.days_left(cert)[0] <= 30
    ok, why = tlscheck.verify(scope, budget, tls_server, "pbx.test", None)
    assert not ok and "self" in why.lower()
    ok, why = tlscheck.verify(scope, budget, tls_server, "pbx.test", str(cert_files[0]))
    assert ok, why
    versions = tlscheck.protocol_support(scope, budget, tls_server, "pbx.test")
    assert versions["TLSv1.2"] is True and versions["TLSv1.3"] is True
    assert versions["TLSv1.0"] in (False, None) and versions["TLSv1.1"] in (False, None)


def test_tls_checks_judge_each_question(tls_server: int, cert_files: tuple[Path, Path], tmp_path: Path) -> None:
    target = Target.from_mapping({"name": "t", "pbx": {"host": "127.0.0.1", "port": tls_server - 1,
                                                       "domain": "pbx.test"}}, "<test>")
    with ProbeSession(target, tmp_path / "ev.txt", packets=30) as ps:
        checks = {c.name: c for c in tls_checks(ps, tls_server, "pbx.test", None, 14.0, 3.0)}
        trusted = {c.name: c for c in tls_checks(ps, tls_server, "pbx.test", str(cert_files[0]), 45.0, 3.0)}
        other = {c.name: c for c in tls_checks(ps, tls_server, "other.example", str(cert_files[0]), 14.0, 3.0)}
    assert {n: c.verdict for n, c in checks.items()} == {
        "tls:handshake": Verdict.PASS, "tls:chain": Verdict.FAIL, "tls:validity": Verdict.PASS,
        "tls:expiry": Verdict.PASS, "tls:hostname": Verdict.PASS, "tls:protocols": Verdict.PASS}
    assert trusted["tls:chain"].verdict is Verdict.PASS
    assert trusted["tls:expiry"].verdict is Verdict.FAIL and trusted["tls:expiry"].threshold == 45.0
    assert other["tls:hostname"].verdict is Verdict.FAIL and "pbx.test" in other["tls:hostname"].detail


def test_no_tls_is_one_failed_handshake(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = Target.from_mapping({"name": "t", "pbx": {"host": "127.0.0.1", "port": 5060}}, "<test>")
    with ProbeSession(target, tmp_path / "ev.txt", packets=5) as ps:
        checks = tls_checks(ps, port, "127.0.0.1", None, 14.0, 1.0)
    assert [(c.name, c.verdict, c.value) for c in checks] == [("tls:handshake", Verdict.FAIL, "refused")]


def test_obsolete_protocol_versions_fail(cert_files: tuple[Path, Path], tmp_path: Path) -> None:
    target = Target.from_mapping({"name": "t", "pbx": {"host": "127.0.0.1", "port": 5060}}, "<test>")
    with serve(cert_files, ssl.TLSVersion.TLSv1) as port, ProbeSession(target, tmp_path / "ev.txt", packets=30) as ps:
        checks = {c.name: c for c in tls_checks(ps, port, "pbx.test", None, 14.0, 3.0)}
    proto = checks["tls:protocols"]
    assert proto.verdict is Verdict.FAIL and "TLSv1.0" in proto.value and "obsolete" in proto.detail
    assert proto.metrics["versions"]["TLSv1.0"] is True


# ---- protocol versions: judged on evidence, from literal reports and records (no sockets) -------------------
def report(**accepted: bool | None) -> dict[str, tlscheck.VersionResult]:
    names = {"v10": "TLSv1.0", "v11": "TLSv1.1", "v12": "TLSv1.2", "v13": "TLSv1.3"}
    return {names[k]: tlscheck.VersionResult(v, "handshake completed" if v else
                                             "handshake refused: x" if v is False else "not judged: why")
            for k, v in accepted.items()}


def test_protocols_never_pass_on_what_could_not_be_tested() -> None:
    good = report(v10=False, v11=False, v12=True, v13=True)
    assert tlscheck.judge_protocols(good)[:2] == ("PASS", "TLSv1.2, TLSv1.3")
    verdict, value, detail = tlscheck.judge_protocols(report(v10=None, v11=None, v12=True, v13=True))
    assert verdict == "ERROR" and value == "TLSv1.2, TLSv1.3"
    assert "TLSv1.0 not judged: why" in detail and "whether the server refuses them is not known" in detail
    verdict, _, detail = tlscheck.judge_protocols(report(v10=True, v11=None, v12=True, v13=None))
    assert verdict == "FAIL" and "accepts obsolete TLSv1.0" in detail  # an accepted obsolete version decides
    assert tlscheck.judge_protocols(report(v10=False, v11=False, v12=True, v13=None))[0] == "PASS"
    assert tlscheck.judge_protocols(report(v10=False, v11=False, v12=False, v13=None))[0] == "ERROR"
    assert tlscheck.judge_protocols(report(v10=False, v11=False, v12=False, v13=False))[0] == "FAIL"


def test_raw_client_hello_and_the_servers_answer() -> None:
    hello = tlscheck.client_hello("TLSv1.0", "pbx.test")
    assert hello[:3] == b"\x16\x03\x01" and hello[5] == 1 and hello[9:11] == b"\x03\x01" and b"pbx.test" in hello
    assert tlscheck.client_hello("TLSv1.1", "127.0.0.1")[9:11] == b"\x03\x02"
    assert b"127.0.0.1" not in tlscheck.client_hello("TLSv1.1", "127.0.0.1")  # no SNI for an address
    server_hello = b"\x16\x03\x01\x00\x30\x02\x00\x00\x2c\x03\x01" + bytes(40)
    assert tlscheck.read_server_hello(server_hello, "TLSv1.0") == (
        True, "the server answered with a ServerHello for it")
    assert tlscheck.read_server_hello(server_hello.replace(b"\x02\x00\x00\x2c\x03\x01", b"\x02\x00\x00\x2c\x03\x03"),
                                      "TLSv1.0") == (False, "the server answered with TLSv1.2 instead")
    assert tlscheck.read_server_hello(b"\x15\x03\x01\x00\x02\x02\x46", "TLSv1.1") == (
        False, "the server refused it (alert protocol_version)")
    assert tlscheck.read_server_hello(b"", "TLSv1.0")[0] is False
    assert tlscheck.read_server_hello(b"SIP/2.0 400 Bad", "TLSv1.0")[0] is None


def test_a_version_the_local_openssl_will_not_offer_is_asked_raw_or_not_judged(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tlscheck, "local_refusal", lambda label: f"this machine's OpenSSL will not offer {label} "
                        "(no protocols available); that is set by MinProtocol and the @SECLEVEL of CipherString in "
                        "/etc/ssl/openssl.cnf")
    answers = {"TLSv1.0": (False, "the server refused it (alert protocol_version)"),
               "TLSv1.1": (None, "no answer to the ClientHello within 3 s")}
    monkeypatch.setattr(tlscheck, "raw_probe", lambda scope, budget, port, name, label, timeout: answers[label])
    rep = tlscheck.protocol_report(ProbeScope("127.0.0.1", ("127.0.0.1",)), PacketBudget(0), 5061, "pbx.test")
    assert rep["TLSv1.0"].accepted is False and rep["TLSv1.0"].how.startswith("raw ClientHello: the server refused")
    assert rep["TLSv1.1"].accepted is None and "MinProtocol" in rep["TLSv1.1"].how
    assert rep["TLSv1.2"].accepted is None and rep["TLSv1.3"].accepted is None
    verdict, value, detail = tlscheck.judge_protocols(rep)
    assert verdict == "ERROR" and value == "none"
    assert "TLSv1.1 not judged: this machine's OpenSSL will not offer TLSv1.1" in detail and "@SECLEVEL" in detail
