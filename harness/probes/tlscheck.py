"""TLS checks of the PBX's SIP-over-TLS port with the standard library only.

Four questions, each answered separately so a report can say which one fails:

* does the chain verify (system CAs, or the profile's own CA file for a private PBX)?
* how many days until the certificate expires (and has it started to be valid)?
* does it name the host the phones connect to (RFC 6125: DNS or IP subjectAltName, wildcard in the
  leftmost label only; the CN only when there is no DNS name at all)?
* which protocol versions does the server accept (TLS 1.0/1.1 are obsolete, RFC 8996)?

::

    info = fetch(scope, budget, 5061, "pbx.example.com")     # TlsInfo or ProbeConnectError
    cert = decode(info.der)
    days_left(cert), name_matches(cert, "pbx.example.com"), verify(scope, budget, 5061, name, None)
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import ssl
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Any

from harness.probes.scope import PacketBudget, ProbeScope
from harness.probes.transport import ProbeConnectError, insecure_context, open_channel

__all__ = ["VERSIONS", "TlsInfo", "days_left", "decode", "fetch", "name_matches", "protocol_support",
           "verify"]

VERSIONS: dict[str, ssl.TLSVersion] = {"TLSv1.0": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
                                       "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
OBSOLETE = ("TLSv1.0", "TLSv1.1")


@dataclass(frozen=True)
class TlsInfo:
    der: bytes
    version: str
    cipher: str


def fetch(scope: ProbeScope, budget: PacketBudget, port: int, server_name: str, timeout: float = 3.0) -> TlsInfo:
    """Handshake (any certificate accepted) and take the server's certificate."""
    ch = open_channel(scope, budget, "tls", port, timeout=timeout, tls=insecure_context(), server_name=server_name)
    try:
        sock = ch.sock
        assert isinstance(sock, ssl.SSLSocket)
        der = sock.getpeercert(binary_form=True)
        if not der:
            raise ProbeConnectError("tls", f"{scope.address}:{port}", "the server sent no certificate")
        cipher = sock.cipher()
        return TlsInfo(der, sock.version() or "", cipher[0] if cipher else "")
    finally:
        ch.close()


def decode(der: bytes) -> dict[str, Any]:
    """The certificate as the ssl module describes a peer certificate (subject, SANs, dates).

    The stdlib parses certificates only from a file (the private ``_test_decode_cert``, stable since
    Python 3.4); this keeps the harness free of a crypto dependency for four fields.
    """
    pem = ssl.DER_cert_to_PEM_cert(der)
    fd, path = tempfile.mkstemp(suffix=".pem")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(pem)
        decoded: dict[str, Any] = ssl._ssl._test_decode_cert(path)  # type: ignore[attr-defined]
        return decoded
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def days_left(cert: dict[str, Any], now: float | None = None) -> tuple[float, float]:
    """(days until notAfter, days since notBefore); negative means expired / not yet valid."""
    t = time.time() if now is None else now
    after = ssl.cert_time_to_seconds(cert["notAfter"])
    before = ssl.cert_time_to_seconds(cert["notBefore"])
    return round((after - t) / 86400.0, 2), round((t - before) / 86400.0, 2)


def _dns_match(pattern: str, name: str) -> bool:
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if "*" not in pattern:
        return pattern == name
    first, _, rest = pattern.partition(".")
    if first != "*" or "*" in rest or rest.count(".") < 1:
        return False  # only a whole leftmost-label wildcard over at least two labels (RFC 6125 6.4.3)
    nfirst, _, nrest = name.partition(".")
    return bool(nfirst) and nrest == rest


def name_matches(cert: dict[str, Any], name: str) -> tuple[bool, list[str]]:
    """Whether the certificate names ``name``, and the names it does carry."""
    sans = cert.get("subjectAltName", ())
    dns = [v for k, v in sans if k == "DNS"]
    ips = [v for k, v in sans if k == "IP Address"]
    cns = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
    try:
        ip = ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        ip = None
    if ip is not None:
        ok = any(_same_ip(ip, v) for v in ips)
    elif dns:
        ok = any(_dns_match(p, name) for p in dns)
    else:
        ok = any(_dns_match(p, name) for p in cns)
    return ok, [*dns, *ips] or cns


def _same_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, value: str) -> bool:
    try:
        return ipaddress.ip_address(value.strip()) == ip
    except ValueError:
        return False


def verify(scope: ProbeScope, budget: PacketBudget, port: int, server_name: str, cafile: str | None,
           timeout: float = 3.0) -> tuple[bool, str]:
    """Does the chain verify (name checked separately)? Returns (ok, OpenSSL's reason when not)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    if cafile:
        ctx.load_verify_locations(cafile=cafile)
    else:
        ctx.load_default_certs()
    try:
        open_channel(scope, budget, "tls", port, timeout=timeout, tls=ctx, server_name=server_name).close()
    except ProbeConnectError as exc:
        return False, exc.reason.removeprefix("tls handshake failed: ")
    return True, "verified" + (" against the profile's CA file" if cafile else " against the system CAs")


def protocol_support(scope: ProbeScope, budget: PacketBudget, port: int, server_name: str,
                     timeout: float = 3.0) -> dict[str, bool | None]:
    """Each TLS version -> accepted (True), refused (False), or None when this machine's OpenSSL
    cannot even offer it (then nothing is known about the server)."""
    out: dict[str, bool | None] = {}
    for label, version in VERSIONS.items():
        ctx = insecure_context()
        try:
            with warnings.catch_warnings():  # asking for TLS 1.0/1.1 on purpose: that is the test
                warnings.simplefilter("ignore", DeprecationWarning)
                if label in OBSOLETE:
                    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses to offer 1.0/1.1 otherwise
                ctx.minimum_version = version
                ctx.maximum_version = version
        except (ValueError, ssl.SSLError):
            out[label] = None
            continue
        try:
            open_channel(scope, budget, "tls", port, timeout=timeout, tls=ctx, server_name=server_name).close()
            out[label] = True
        except ProbeConnectError as exc:
            # our own library refusing to speak the version shows up as a local error, not the server's
            out[label] = None if "no protocols available" in exc.reason.lower() else False
    return out
