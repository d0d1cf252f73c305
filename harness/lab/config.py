"""The lab PBX's addresses and its built-in target profile.

Every address and port can be set by environment variable (``HARNESS_LAB_IP``, ``HARNESS_LAB_SIP_PORT``,
``HARNESS_LAB_NG_PORT``, ``HARNESS_LAB_RTP_MIN``, ``HARNESS_LAB_RTP_MAX``) or by ``harness lab up`` options.
The defaults are high ports that common software (Asterisk, FreeSWITCH, a system kamailio) does not use.

``netns`` (``HARNESS_LAB_NETNS=1``, ``harness lab up --netns``) runs the lab in a network namespace of its
own behind an impairable line (:mod:`harness.lab.netns`); its address is then the namespace side of that
line, 10.233.x.2, chosen from the SIP port unless given.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.contracts.errors import InputError
from harness.contracts.target import Target
from harness.lab.netns import NETNS_NET, default_address, is_netns_address

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
    "echo": ("9196", "lab-echo-pw"),
}


@dataclass(frozen=True)
class LabConfig:
    ip: str = "127.0.0.1"
    sip_port: int = 35060
    ng_port: int = 35222
    rtp_min: int = 35300
    rtp_max: int = 35899
    record: bool = True
    netns: bool = False
    hardened: bool = False  #: TCP/TLS, a brute-force ban, SRTP, no calls from unknown domains (kamailio.cfg)

    @property
    def tls_port(self) -> int:
        """TLS listens on the port after SIP's (the convention the system suite's reachability uses)."""
        return self.sip_port + 1

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> LabConfig:
        """The lab's settings from the ``HARNESS_LAB_*`` variables (read by harness.contracts.settings),
        under ``overrides`` (the CLI's options)."""
        from harness.contracts.settings import Settings

        cfg = cls()
        values: dict[str, Any] = dict(Settings.load(environ=environ).lab)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("netns") and "ip" not in values:
            values["ip"] = default_address(int(values.get("sip_port", cfg.sip_port)))
        cfg = replace(cfg, **values)
        cfg.validate()
        return cfg

    def validate(self) -> None:
        try:
            addr = ipaddress.ip_address(self.ip)
        except ValueError:
            raise InputError(f"lab address {self.ip!r} is not an IP address") from None
        if self.netns:
            if not is_netns_address(self.ip):
                raise InputError(f"lab address {self.ip} cannot be a namespace address: in namespace mode the lab "
                                 f"listens on the .2 of a /30 in {NETNS_NET} (leave the address unset to get one)")
        elif not addr.is_loopback:
            raise InputError(f"lab address {self.ip} is not a loopback address: the lab runs on 127.0.0.0/8 only")
        for name in ("sip_port", "ng_port", "rtp_min", "rtp_max"):
            port = getattr(self, name)
            if not 1024 <= port <= 65535:
                raise InputError(f"lab {name.replace('_', ' ')} {port} is out of range 1024-65535")
        if self.rtp_max - self.rtp_min < 20:
            raise InputError(f"lab RTP range {self.rtp_min}-{self.rtp_max} is too small (needs 20 ports or more)")
        if any(self.rtp_min <= port <= self.rtp_max for port in (self.sip_port, self.tls_port, self.ng_port)):
            raise InputError("lab SIP/TLS/ng ports must lie outside the RTP range")
        if self.ng_port in (self.sip_port, self.tls_port):
            raise InputError(f"lab rtpengine control port {self.ng_port} clashes with the SIP/TLS ports")

    def as_dict(self) -> dict[str, Any]:
        """Every field (what the lab's ``state.json`` keeps, so later commands see the lab as started)."""
        return {"ip": self.ip, "sip_port": self.sip_port, "ng_port": self.ng_port,
                "rtp_min": self.rtp_min, "rtp_max": self.rtp_max, "record": self.record, "netns": self.netns,
                "hardened": self.hardened}

    @classmethod
    def from_dict(cls, data: Any) -> LabConfig:
        """The config :meth:`as_dict` wrote. A field an older version did not write keeps its default (a
        state without ``hardened`` is a plain lab); anything else wrong (an unknown field, a wrong type, an
        invalid address) raises ValueError."""
        if not isinstance(data, dict):
            raise ValueError(f"lab config must be a mapping, got {type(data).__name__}")
        defaults = cls().as_dict()
        unknown = sorted(map(str, set(data) - set(defaults)))
        if unknown:
            raise ValueError(f"unknown lab config field(s): {', '.join(unknown)}")
        for name, value in data.items():
            kind = type(defaults[name])
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(f"lab config field {name}={value!r} is not {kind.__name__}")
        cfg = cls(**data)
        try:
            cfg.validate()
        except InputError as exc:
            raise ValueError(str(exc)) from None
        return cfg

    def security(self, lab_dir: Path) -> dict[str, Any]:
        """What a client of this lab must know about its transport and media security (``harness lab status``
        shows it; the lab's target profile carries the same)."""
        if not self.hardened:
            return {"hardened": False, "transports": ["udp"], "tls_port": None, "tls_ca_file": None,
                    "srtp": "none"}
        return {"hardened": True, "transports": ["udp", "tcp", "tls"], "tls_port": self.tls_port,
                "tls_ca_file": str(lab_dir / "cert.pem"), "srtp": "offered"}


def lab_profile_mapping(cfg: LabConfig, rec_dir: Path) -> dict[str, Any]:
    """The lab's target profile as a plain mapping (what ``harness lab profile`` prints)."""
    pbx: dict[str, Any] = {"host": cfg.ip, "port": cfg.sip_port, "transport": "udp", "domain": LAB_DOMAIN}
    security = cfg.security(rec_dir.parent)
    if cfg.hardened:  # TLS on the next port; its certificate is self-signed: the profile names it as the CA
        pbx["tls_port"] = security["tls_port"]
        pbx["tls_ca_file"] = security["tls_ca_file"]
    mapping: dict[str, Any] = {
        "name": "lab",
        "pbx": pbx,
        "accounts": {name: {"username": ext, "password": pw} for name, (ext, pw) in LAB_ACCOUNTS.items()},
        # "external": an outside-looking number (a UK range kept for drama) for the toll-fraud checks
        "numbers": {**{name: ext for name, (ext, _) in LAB_ACCOUNTS.items()}, "external": "00441632960123"},
        "recordings": {"dir": str(rec_dir), "glob": "pcaps/*.pcap", "format": "rtpengine-pcap", "wait_s": 5},
    }
    if cfg.hardened:  # kamailio.cfg WITH_HARDENING: rtpengine answers an SDES offer with SRTP, plain RTP still works
        mapping["media"] = {"srtp": security["srtp"]}
    return mapping


def lab_target(cfg: LabConfig, lab_dir: Path) -> Target:
    return Target.from_mapping(lab_profile_mapping(cfg, lab_dir / "rec"), "<lab>", is_lab=True)
