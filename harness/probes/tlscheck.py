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

from harness.contracts.errors import ProbeConnectError
from harness.probes.scope import PacketBudget, ProbeScope
from harness.probes.transport import insecure_context, open_channel

__all__ = ["OBSOLETE", "VERSIONS", "TlsInfo", "VersionResult", "client_hello", "days_left", "decode", "fetch",
           "judge_protocols", "local_refusal", "name_matches", "protocol_report", "protocol_support", "raw_probe",
           "read_server_hello", "verify"]

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


@dataclass(frozen=True)
class VersionResult:
    """Whether the server accepts one protocol version: True, False, or None (not judged), and how we know."""

    accepted: bool | None
    how: str


def _version_context(label: str) -> ssl.SSLContext:
    """A client context pinned to one version (raises ValueError / SSLError when OpenSSL cannot pin it)."""
    ctx = insecure_context()
    with warnings.catch_warnings():  # asking for TLS 1.0/1.1 on purpose: that is the test
        warnings.simplefilter("ignore", DeprecationWarning)
        if label in OBSOLETE:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses to offer 1.0/1.1 otherwise
        ctx.minimum_version = VERSIONS[label]
        ctx.maximum_version = VERSIONS[label]
    return ctx


def openssl_config() -> str:
    """The configuration file this machine's OpenSSL reads (``OPENSSL_CONF``, else OPENSSLDIR/openssl.cnf)."""
    env = os.environ.get("OPENSSL_CONF")
    if env:
        return env
    cafile = ssl.get_default_verify_paths().openssl_cafile
    return os.path.join(os.path.dirname(cafile), "openssl.cnf") if cafile else "openssl.cnf"


def local_refusal(label: str) -> str | None:
    """Why this machine's OpenSSL will not even offer ``label`` (None: it will). Nothing is sent: the
    ClientHello is written into memory and its version read back."""
    why = ""
    try:
        ctx = _version_context(label)
        out = ssl.MemoryBIO()
        obj = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname="localhost")
        with contextlib.suppress(ssl.SSLWantReadError):
            obj.do_handshake()
        hello = out.read()
        offered = hello[9:11] if len(hello) > 11 and hello[0] == 0x16 else b""
        wanted = bytes((3, {"TLSv1.0": 1, "TLSv1.1": 2, "TLSv1.2": 3, "TLSv1.3": 3}[label]))
        if offered == wanted:
            return None
        why = "its ClientHello does not offer it"
    except (ValueError, ssl.SSLError) as exc:
        why = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    return (f"this machine's {ssl.OPENSSL_VERSION} will not offer {label} ({why}); that is set by MinProtocol and "
            f"the @SECLEVEL of CipherString in {openssl_config()} (or OpenSSL was built without it)")


# ---- a raw ClientHello: asks for TLS 1.0/1.1 without this machine's OpenSSL ------------------------------
_RAW_SUITES = (0xC014, 0xC013, 0xC00A, 0xC009, 0x0039, 0x0033, 0x0035, 0x002F, 0x000A)
_ALERTS = {40: "handshake_failure", 47: "illegal_parameter", 70: "protocol_version", 71: "insufficient_security",
           80: "internal_error", 86: "inappropriate_fallback", 112: "unrecognized_name"}
_WIRE = {"TLSv1.0": (3, 1), "TLSv1.1": (3, 2)}


def client_hello(label: str, server_name: str | None) -> bytes:
    """A TLS 1.0 or 1.1 ClientHello record: common CBC suites (ECDHE, DHE, RSA), SNI, groups, point formats."""
    major, minor = _WIRE[label]
    ext = b""
    if server_name and not _is_ip(server_name):
        name = server_name.encode("idna")
        entry = b"\x00" + len(name).to_bytes(2, "big") + name
        sni = len(entry).to_bytes(2, "big") + entry
        ext += b"\x00\x00" + len(sni).to_bytes(2, "big") + sni
    groups = b"".join(g.to_bytes(2, "big") for g in (0x001D, 0x0017, 0x0018))
    ext += b"\x00\x0a" + (len(groups) + 2).to_bytes(2, "big") + len(groups).to_bytes(2, "big") + groups
    ext += b"\x00\x0b\x00\x02\x01\x00"  # ec_point_formats: uncompressed
    ext += b"\xff\x01\x00\x01\x00"  # renegotiation_info: initial handshake
    suites = b"".join(c.to_bytes(2, "big") for c in _RAW_SUITES)
    body = (bytes((major, minor)) + os.urandom(32) + b"\x00" + len(suites).to_bytes(2, "big") + suites
            + b"\x01\x00" + len(ext).to_bytes(2, "big") + ext)
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + len(handshake).to_bytes(2, "big") + handshake


def read_server_hello(data: bytes, label: str) -> tuple[bool | None, str]:
    """Judge the first record the server sent back to :func:`client_hello`."""
    if not data:
        return False, "the server closed the connection without a ServerHello"
    if len(data) >= 7 and data[0] == 0x15:
        desc = data[6]
        return False, f"the server refused it (alert {_ALERTS.get(desc, desc)})"
    if len(data) >= 11 and data[0] == 0x16 and data[5] == 0x02:
        version = (data[9], data[10])
        if version == _WIRE[label]:
            return True, "the server answered with a ServerHello for it"
        names = {v: k for k, v in _WIRE.items()} | {(3, 3): "TLSv1.2", (3, 0): "SSLv3"}
        return False, f"the server answered with {names.get(version, str(version))} instead"
    return None, f"the server's answer is not a TLS handshake record ({data[:8].hex()})"


def raw_probe(scope: ProbeScope, budget: PacketBudget, port: int, server_name: str, label: str,
              timeout: float = 3.0) -> tuple[bool | None, str]:
    """Send :func:`client_hello` over plain TCP and read what comes back (None: nothing to judge)."""
    try:
        ch = open_channel(scope, budget, "tcp", port, timeout=timeout)
    except ProbeConnectError as exc:
        return None, f"cannot connect: {exc.reason}"
    try:
        ch.send(client_hello(label, server_name))
        ch.sock.settimeout(timeout)
        data = b""
        deadline = time.monotonic() + timeout
        while len(data) < 11 and time.monotonic() < deadline:
            try:
                chunk = ch.sock.recv(4096)
            except TimeoutError:
                break
            except OSError as exc:  # a reset: the server would not talk to such a hello
                return (False, f"the server reset the connection ({exc.strerror or exc})") if not data else \
                    read_server_hello(data, label)
            if not chunk:
                break
            data += chunk
        if not data and time.monotonic() >= deadline:
            return None, f"no answer to the ClientHello within {timeout:g} s"
        return read_server_hello(data, label)
    except ProbeConnectError as exc:
        return None, exc.reason
    finally:
        ch.close()


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def protocol_report(scope: ProbeScope, budget: PacketBudget, port: int, server_name: str,
                    timeout: float = 3.0) -> dict[str, VersionResult]:
    """Each TLS version -> accepted, refused, or not judged (None), with how that was found out.

    A version this machine's OpenSSL will not offer is asked for with a raw ClientHello instead (TLS 1.0
    and 1.1 only); when that cannot tell either, the version is not judged and ``how`` says why.
    """
    out: dict[str, VersionResult] = {}
    for label in VERSIONS:
        refusal = local_refusal(label)
        if refusal is not None:
            if label not in _WIRE:
                out[label] = VersionResult(None, refusal)
                continue
            ok, how = raw_probe(scope, budget, port, server_name, label, timeout)
            out[label] = VersionResult(ok, f"raw ClientHello: {how} ({refusal})" if ok is not None
                                       else f"not judged: {refusal}; a raw ClientHello got {how}")
            continue
        try:
            open_channel(scope, budget, "tls", port, timeout=timeout, tls=_version_context(label),
                         server_name=server_name).close()
            out[label] = VersionResult(True, "handshake completed")
        except ProbeConnectError as exc:
            reason = exc.reason.removeprefix("tls handshake failed: ")
            if exc.reason in ("timeout", "refused") or "timed out" in reason:
                out[label] = VersionResult(None, f"not judged: {exc.reason} (the port did not take the handshake)")
            elif "no protocols available" in reason.lower():
                out[label] = VersionResult(None, f"not judged: this machine's OpenSSL: {reason}")
            else:
                out[label] = VersionResult(False, f"handshake refused: {reason}")
    return out


def protocol_support(scope: ProbeScope, budget: PacketBudget, port: int, server_name: str,
                     timeout: float = 3.0) -> dict[str, bool | None]:
    """Each TLS version -> accepted (True), refused (False), or None when nothing could be learnt about it."""
    return {k: v.accepted for k, v in protocol_report(scope, budget, port, server_name, timeout).items()}


def judge_protocols(report: dict[str, VersionResult]) -> tuple[str, str, str]:
    """("PASS" | "FAIL" | "ERROR", accepted versions, detail): TLS 1.2+ only, on evidence.

    An obsolete version accepted is a FAIL whatever else is unknown; one that could not be tested is
    not judged (ERROR, with why), never a PASS on nothing.
    """
    accepted = [v for v, r in report.items() if r.accepted]
    refused = [v for v, r in report.items() if r.accepted is False]
    unknown = {v: r.how for v, r in report.items() if r.accepted is None}
    obsolete = [v for v in accepted if v in OBSOLETE]
    modern = [v for v in accepted if v not in OBSOLETE]
    value = ", ".join(accepted) or "none"
    raw = [f"{v}: {r.how}" for v, r in report.items() if r.how.startswith("raw ClientHello")]
    seen = (f"accepted {', '.join(accepted) or 'none'}; refused {', '.join(refused) or 'none'}"
            + (f"; {'; '.join(raw)}" if raw else ""))
    not_judged = "; ".join(f"{v} not judged: {how.removeprefix('not judged: ')}" for v, how in unknown.items())
    if obsolete:
        return "FAIL", value, f"accepts obsolete {', '.join(obsolete)} (RFC 8996); {seen}" + (
            f"; {not_judged}" if not_judged else "")
    if not modern:
        if any(v not in OBSOLETE for v in unknown):
            return "ERROR", value, f"{seen}; {not_judged}"
        return "FAIL", value, f"accepts neither TLS 1.2 nor 1.3; {seen}"
    if any(v in OBSOLETE for v in unknown):
        return "ERROR", value, f"{seen}; {not_judged}: whether the server refuses them is not known"
    return "PASS", value, seen + (f"; {not_judged}" if not_judged else "")
