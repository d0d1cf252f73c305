"""How the lab's daemons are configured: kamailio's command line, the files written into the lab directory
(kamailio.cfg, the users' htable, rtpengine.conf, the TLS certificate, services.json, the IVR prompts),
and kamailio's JSON-RPC socket."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from importlib import resources
from pathlib import Path
from typing import Any

from harness.contracts.errors import LabComponentError
from harness.lab.config import LabConfig, lab_profile_mapping, lab_target

__all__ = ["INSTALL_HINT", "kamailio_argv", "kamailio_rpc", "write_configs"]

INSTALL_HINT = "install it with the README's setup command (scripts/setup.sh)"


def kamailio_argv(lab_dir: Path, cfg: LabConfig) -> list[str]:
    modules = _kamailio_modules_dir()
    return ["kamailio", "-DD", "-E", "-m", "64", "-M", "8", "-f", str(lab_dir / "kamailio.cfg"),
            "-P", str(lab_dir / "run" / "kamailio.pid"),
            "-A", f"SIP_IP={cfg.ip}", "-A", f"SIP_PORT={cfg.sip_port}",
            "-A", f'RUNDIR="{lab_dir / "run"}"', "-A", f'MODULES_DIR="{modules}"',
            "-A", f'RTPENGINE_SOCK="udp:{cfg.ip}:{cfg.ng_port}"',
            "-A", 'RTPENGINE_FLAGS="replace-origin replace-session-connection ICE=remove'
                  + (' record-call=yes"' if cfg.record else '"')] + (
            ["-A", "WITH_HARDENING", "-A", f"TLS_PORT={cfg.tls_port}",
             "-A", f'TLS_CFG="{lab_dir / "tls.cfg"}"'] if cfg.hardened else [])


def write_configs(lab_dir: Path, cfg: LabConfig, rec_dir: Path, media_priority: str) -> None:
    """Every daemon's configuration, into ``lab_dir`` (passwords stay there, in files only the user reads)."""
    src = resources.files("harness.lab").joinpath("kamailio.cfg").read_text()
    (lab_dir / "kamailio.cfg").write_text(src)
    users = lab_target(cfg, lab_dir).accounts.values()
    # kamailio's htable include: one assignment per user; passwords stay inside the lab dir (0600)
    users_cfg = lab_dir / "users.cfg"
    users_cfg.touch(mode=0o600)
    users_cfg.write_text("".join(f'$sht(users=>{a.username}) = "{a.password.reveal()}";\n' for a in users))
    lines = ["[rtpengine]", "table = -1", f"interface = {cfg.ip}", f"listen-ng = {cfg.ip}:{cfg.ng_port}",
             f"port-min = {cfg.rtp_min}", f"port-max = {cfg.rtp_max}", "timeout = 60",
             "silent-timeout = 600", "foreground = true", "log-stderr = true", "log-level = 5",
             "delete-delay = 0"]
    if cfg.record:
        lines += [f"recording-dir = {rec_dir}", "recording-method = pcap", "recording-format = eth"]
    (lab_dir / "rtpengine.conf").write_text("\n".join(lines) + "\n")
    if cfg.hardened:
        _write_tls(lab_dir, cfg.ip)
    services = lab_dir / "services.json"
    services.touch(mode=0o600)
    services.write_text(json.dumps({
        "target": lab_profile_mapping(cfg, rec_dir),
        "config": {"prompts_dir": str(_prompts_dir(lab_dir)), "priority": media_priority}}, indent=2))


def _write_tls(lab_dir: Path, ip: str) -> None:
    """A fresh self-signed certificate for the hardened lab (its own key, 30 days) and kamailio's tls.cfg."""
    if shutil.which("openssl") is None:
        raise LabComponentError("kamailio", f"'openssl' is not installed (TLS certificate); {INSTALL_HINT}")
    if not (Path(_kamailio_modules_dir()) / "tls.so").exists():
        raise LabComponentError("kamailio", "the TLS module is not installed (kamailio-tls-modules); "
                                + INSTALL_HINT)
    cert, key = lab_dir / "cert.pem", lab_dir / "key.pem"
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30",
                        "-subj", "/CN=lab.local", "-addext", f"subjectAltName=DNS:lab.local,IP:{ip}",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise LabComponentError("kamailio", f"cannot make the lab's TLS certificate: {exc}") from None
    key.chmod(0o600)
    (lab_dir / "tls.cfg").write_text(
        "[server:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n"
        f"private_key = {key}\ncertificate = {cert}\n\n"
        "[client:default]\nmethod = TLSv1.2+\nverify_certificate = no\nrequire_certificate = no\n")


def _prompts_dir(lab_dir: Path) -> Path:
    """The IVR and queue prompts: the project's fixtures, or built into the lab dir if absent."""
    from harness.contracts.fixture_lookup import fixture_roots
    from harness.lab.prompts import PROMPTS, build_prompts

    for root in fixture_roots():
        if all((root / "prompts" / name).is_file() for name in (*PROMPTS, "queue-music.wav")):
            return (root / "prompts").resolve()
    try:
        build_prompts(lab_dir / "prompts")
    except RuntimeError as exc:
        raise LabComponentError("services", f"cannot build the IVR prompts: {exc}") from None
    return lab_dir / "prompts"


def kamailio_rpc(sock: Path, method: str, *params: Any) -> None:
    """One kamailio JSON-RPC call over its datagram socket; best effort, bounded to 1 s.

    Used after rtpengine restarts: kamailio disables an rtpengine that stopped answering for a minute,
    and would relay the next calls' media directly instead of through the new one.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(f"\0hl-kamrpc-{os.getpid()}-{time.monotonic_ns()}")
        s.settimeout(1.0)
        with contextlib.suppress(OSError):
            s.sendto(json.dumps({"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}).encode(),
                     str(sock))
            s.recv(65535)


def _kamailio_modules_dir() -> str:
    for cand in [*sorted(Path("/usr/lib").glob("*/kamailio/modules")), Path("/usr/lib/kamailio/modules")]:
        if (cand / "tm.so").exists():
            return str(cand) + "/"
    raise LabComponentError("kamailio", f"modules directory not found; {INSTALL_HINT}")
