"""TLS checks live, against a loopback TLS server (a socket in a thread) with a throw-away self-signed
certificate made by openssl: chain, validity, hostname, protocol versions. No lab."""

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
from harness.scenarios.steps_tls import tls_checks


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
