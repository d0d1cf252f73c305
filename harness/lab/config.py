"""The lab PBX's addresses and its built-in target profile.

Every address and port can be set by environment variable (``HARNESS_LAB_IP``, ``HARNESS_LAB_SIP_PORT``,
``HARNESS_LAB_NG_PORT``, ``HARNESS_LAB_RTP_MIN``, ``HARNESS_LAB_RTP_MAX``) or by ``harness lab up`` options.
The defaults are high ports that common software (Asterisk, FreeSWITCH, a system kamailio) does not use.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.errors import InputError
from harness.target import Target

__all__ = ["LAB_ACCOUNTS", "LabConfig", "lab_target"]

LAB_DOMAIN = "lab.local"

#: account name -> (extension, password). Lab-only credentials on loopback.
LAB_ACCOUNTS: dict[str, tuple[str, str]] = {
    "caller": ("1001", "lab-caller-pw"),
    "caller2": ("1002", "lab-caller2-pw"),
    "agent1": ("2001", "lab-agent1-pw"),
    "agent2": ("2002", "lab-agent2-pw"),
    "agent3": ("2003", "lab-agent3-pw"),
    "supervisor": ("3001", "lab-supervisor-pw"),
    "ivr": ("7000", "lab-ivr-pw"),
    "queue": ("8000", "lab-queue-pw"),
}


@dataclass(frozen=True)
class LabConfig:
    ip: str = "127.0.0.1"
    sip_port: int = 35060
    ng_port: int = 35222
    rtp_min: int = 35300
    rtp_max: int = 35899
    record: bool = True

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> LabConfig:
        env = os.environ if environ is None else environ
        cfg = cls()
        values: dict[str, Any] = {}
        for name, var in (("ip", "HARNESS_LAB_IP"), ("sip_port", "HARNESS_LAB_SIP_PORT"),
                          ("ng_port", "HARNESS_LAB_NG_PORT"), ("rtp_min", "HARNESS_LAB_RTP_MIN"),
                          ("rtp_max", "HARNESS_LAB_RTP_MAX")):
            if env.get(var):
                raw = env[var]
                try:
                    values[name] = raw if name == "ip" else int(raw)
                except ValueError:
                    raise InputError(f"{var}={raw!r} is not a port number") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        cfg = replace(cfg, **values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        try:
            addr = ipaddress.ip_address(self.ip)
        except ValueError:
            raise InputError(f"lab address {self.ip!r} is not an IP address") from None
        if not addr.is_loopback:
            raise InputError(f"lab address {self.ip} is not a loopback address: the lab runs on 127.0.0.0/8 only")
        for name in ("sip_port", "ng_port", "rtp_min", "rtp_max"):
            port = getattr(self, name)
            if not 1024 <= port <= 65535:
                raise InputError(f"lab {name.replace('_', ' ')} {port} is out of range 1024-65535")
        if self.rtp_max - self.rtp_min < 20:
            raise InputError(f"lab RTP range {self.rtp_min}-{self.rtp_max} is too small (needs 20 ports or more)")
        if self.rtp_min <= self.sip_port <= self.rtp_max or self.rtp_min <= self.ng_port <= self.rtp_max:
            raise InputError("lab SIP/ng ports must lie outside the RTP range")

    def as_dict(self) -> dict[str, Any]:
        return {"ip": self.ip, "sip_port": self.sip_port, "ng_port": self.ng_port,
                "rtp_min": self.rtp_min, "rtp_max": self.rtp_max, "record": self.record}


def lab_profile_mapping(cfg: LabConfig, rec_dir: Path) -> dict[str, Any]:
    """The lab's target profile as a plain mapping (what ``harness lab profile`` prints)."""
    return {
        "name": "lab",
        "pbx": {"host": cfg.ip, "port": cfg.sip_port, "transport": "udp", "domain": LAB_DOMAIN},
        "accounts": {name: {"username": ext, "password": pw} for name, (ext, pw) in LAB_ACCOUNTS.items()},
        "numbers": {name: ext for name, (ext, _) in LAB_ACCOUNTS.items()},
        "recordings": {"dir": str(rec_dir), "glob": "pcaps/*.pcap", "format": "rtpengine-pcap", "wait_s": 5},
    }


def lab_target(cfg: LabConfig, lab_dir: Path) -> Target:
    return Target.from_mapping(lab_profile_mapping(cfg, lab_dir / "rec"), "<lab>", is_lab=True)
