"""TLS checks: certificate facts from literal dicts, and protocol versions judged from literal reports and
records. The live checks against a loopback TLS server are in tests/integration/test_probes_tls_live.py."""

from __future__ import annotations

import ssl

import pytest

from harness.probes import PacketBudget, ProbeScope, tlscheck

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
