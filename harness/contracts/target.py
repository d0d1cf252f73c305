"""Target profiles: the PBX a suite runs against.

A profile is a YAML file; the embedded lab has a built-in one (:func:`harness.lab.config.lab_target`).
Secrets may come from the environment: ``password: ${PBX_PW_1001}`` or ``password_env: PBX_PW_1001``.

Example (see ``docs/targets/`` for Asterisk and FreeSWITCH)::

    name: my-asterisk
    pbx: {host: 192.0.2.10, port: 5060, transport: udp, domain: pbx.example.com}
    accounts:
      caller: {username: "1001", password: "${PBX_PW_1001}"}
      agent1: {username: "2001", password_env: PBX_PW_2001}
    numbers: {agent1: "2001", queue: "8000", ivr: "7000"}
    recordings: {dir: /var/spool/asterisk/monitor, glob: "*{call_id}*.wav", wait_s: 30}

A PBX offering SIP over TLS names its port when it is not the SIP port + 1 (``pbx.tls_port``) and, for a
private CA, the CA to trust (``pbx.tls_ca_file``); ``media.srtp`` states its SRTP policy: ``none`` (plain
RTP only), ``offered`` (SDES-keyed SRTP accepted, plain RTP too) or ``required`` (plain RTP refused).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.errors import ProfileError
from harness.contracts.yamlsrc import Fields, LDict, expand_env, load_yaml

__all__ = ["Account", "RecordingSource", "Secret", "Target", "load_target"]

TRANSPORTS = ("udp", "tcp", "tls")
SRTP_POLICIES = ("none", "offered", "required")


class Secret(str):
    """A string that never shows itself in repr/str formatting of containers or logs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"

    def reveal(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True)
class Account:
    name: str
    username: str
    password: Secret
    auth_username: str
    realm: str = "*"
    display_name: str = ""

    def public(self) -> dict[str, str]:
        """What may be shown in logs and reports (no password)."""
        return {"name": self.name, "username": self.username, "auth_username": self.auth_username,
                "realm": self.realm, "display_name": self.display_name}


@dataclass(frozen=True)
class RecordingSource:
    """Where the PBX's own call recordings appear."""

    dir: Path | None = None
    glob: str = "*"
    format: str = "auto"  # auto | wav | rtpengine-pcap
    url_template: str | None = None
    wait_s: float = 20.0


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    port: int
    transport: str = "udp"
    domain: str = ""
    accounts: dict[str, Account] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)
    recordings: RecordingSource | None = None
    thresholds: dict[str, Any] = field(default_factory=dict)
    codecs: tuple[str, ...] = ("PCMU", "PCMA")
    source: str = "<built-in>"
    is_lab: bool = False
    tls_ca_file: str | None = None  #: a CA bundle to verify the PBX's TLS certificate (a private CA)
    tls_port: int | None = None  #: SIP over TLS, when not on ``port + 1`` (the convention the probes use)
    srtp: str | None = None  #: the PBX's SRTP policy (:data:`SRTP_POLICIES`); None when the profile does not say
    #: ``behaviour.failed_transfer_notify``: ``sipfrag`` (RFC 3515: a final NOTIFY tells the transferor how a
    #: transfer ended) or ``none`` (this PBX is documented to send none when a blind transfer fails)
    failed_transfer_notify: str = "sipfrag"
    #: ``behaviour.toll_refuse_codes``: the final answers that refuse a toll call on this PBX (the toll-fraud
    #: probe's default policy otherwise: 403/404/484/488/503/603); a step's own ``refuse_codes`` wins
    toll_refuse_codes: tuple[int, ...] | None = None

    @property
    def sip_domain(self) -> str:
        return self.domain or self.host

    @property
    def proxy_uri(self) -> str:
        uri = f"sip:{self.host}:{self.port};lr"
        if self.transport != "udp":
            uri += f";transport={self.transport}"
        return uri

    def aor(self, user: str) -> str:
        return f"sip:{user}@{self.sip_domain}"

    def account(self, name: str) -> Account:
        try:
            return self.accounts[name]
        except KeyError:
            known = ", ".join(sorted(self.accounts)) or "none"
            raise ProfileError(f"no account '{name}' (accounts: {known})", self.source) from None

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "host": self.host, "port": self.port, "transport": self.transport,
                "domain": self.sip_domain, "accounts": [a.public() for a in self.accounts.values()],
                "numbers": dict(self.numbers), "source": self.source, "is_lab": self.is_lab,
                **({"tls_port": self.tls_port} if self.tls_port is not None else {}),
                **({"tls_ca_file": self.tls_ca_file} if self.tls_ca_file is not None else {}),
                **({"srtp": self.srtp} if self.srtp is not None else {})}

    @classmethod
    def from_mapping(cls, data: Any, source: str, *, is_lab: bool = False,
                     environ: dict[str, str] | None = None) -> Target:
        env = dict(os.environ) if environ is None else environ
        f = Fields(data, source, ProfileError, "")
        name = f.req("name", str)
        pbx = Fields(f.req("pbx", dict), source, ProfileError, "pbx")
        host = pbx.req("host", str)
        port = pbx.integer("port", 5060, low=1, high=65535)
        transport = pbx.choice("transport", TRANSPORTS, "udp")
        domain = pbx.opt("domain", str, "")
        tls_ca_file = pbx.opt("tls_ca_file", str, None)
        if tls_ca_file is not None and not source.startswith("<"):
            tls_ca_file = str(Path(source).parent / tls_ca_file)
        tls_port = pbx.integer("tls_port", None, low=1, high=65535)
        pbx.done()

        accounts: dict[str, Account] = {}
        acc_map = f.opt("accounts", dict, {})
        for acc_name, raw in acc_map.items():
            a = Fields(raw, source, ProfileError, f"accounts.{acc_name}",
                       acc_map.key_line(acc_name) if isinstance(acc_map, LDict) else None)
            username = str(a.req("username", (str, int)))
            password = _password(a, env)
            accounts[acc_name] = Account(
                name=acc_name, username=username, password=Secret(password),
                auth_username=str(a.opt("auth_username", (str, int), username)),
                realm=a.opt("realm", str, "*"), display_name=a.opt("display_name", str, ""))
            a.done()

        numbers_raw = f.opt("numbers", dict, {})
        numbers: dict[str, str] = {}
        for key, value in numbers_raw.items():
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise ProfileError(f"must be a number or SIP user, got {value!r}", source,
                                   getattr(numbers_raw, "key_line", lambda k: None)(key), f"numbers.{key}")
            numbers[key] = str(value)

        recordings = None
        rec_raw = f.opt("recordings", dict, None)
        if rec_raw is not None:
            r = Fields(rec_raw, source, ProfileError, "recordings")
            rdir = r.opt("dir", str, None)
            base = Path(source).parent if source and not source.startswith("<") else Path.cwd()
            recordings = RecordingSource(
                dir=(base / rdir) if rdir else None, glob=r.opt("glob", str, "*"),
                format=r.choice("format", ("auto", "wav", "rtpengine-pcap"), "auto"),
                url_template=r.opt("url_template", str, None),
                wait_s=r.number("wait_s", 20.0, low=0, high=3600))
            r.done()
            if recordings.dir is None and recordings.url_template is None:
                raise ProfileError("needs 'dir' or 'url_template'", source, r.line_of(), "recordings")

        thresholds = dict(f.opt("thresholds", dict, {}))
        from harness.contracts.thresholds import validate_thresholds  # the same rules as in scenarios

        validate_thresholds(thresholds, source, ProfileError)
        media = f.opt("media", dict, None)
        codecs: tuple[str, ...] = ("PCMU", "PCMA")
        srtp = None
        if media is not None:
            m = Fields(media, source, ProfileError, "media")
            srtp = m.choice("srtp", SRTP_POLICIES, None)
            raw_codecs = m.opt("codecs", list, ["PCMU", "PCMA"])
            for i, c in enumerate(raw_codecs):
                if c not in ("PCMU", "PCMA", "G722", "GSM", "opus", "speex", "iLBC"):
                    raise ProfileError(f"unknown codec {c!r}", source,
                                       getattr(raw_codecs, "item_line", lambda i: None)(i), "media.codecs")
            codecs = tuple(raw_codecs)
            m.done()
        behaviour = Fields(f.opt("behaviour", dict, {}), source, ProfileError, "behaviour")
        failed_notify = behaviour.choice("failed_transfer_notify", ("sipfrag", "none"), "sipfrag")
        raw_refuse = behaviour.opt("toll_refuse_codes", list, None)
        toll_refuse: tuple[int, ...] | None = None
        if raw_refuse is not None:
            if not raw_refuse or any(isinstance(c, bool) or not isinstance(c, int) or not 300 <= c <= 699
                                     for c in raw_refuse):
                raise behaviour.fail("toll_refuse_codes",
                                     f"must be a list of SIP final codes 300..699, got {raw_refuse!r}")
            toll_refuse = tuple(int(c) for c in raw_refuse)
        behaviour.done()
        f.done()
        return cls(name=name, host=host, port=port, transport=transport, domain=domain, accounts=accounts,
                   numbers=numbers, recordings=recordings, thresholds=thresholds, codecs=codecs,
                   source=source, is_lab=is_lab, tls_ca_file=tls_ca_file, tls_port=tls_port, srtp=srtp,
                   failed_transfer_notify=failed_notify, toll_refuse_codes=toll_refuse)


def _password(a: Fields, env: dict[str, str]) -> str:
    env_name = a.opt("password_env", str, None)
    if env_name is not None:
        if env_name not in env:
            raise a.fail("password_env", f"environment variable {env_name} is not set")
        return env[env_name]
    raw: str | int = a.req("password", (str, int))
    try:
        return expand_env(str(raw), env)
    except KeyError as exc:
        raise a.fail("password", f"environment variable {exc.args[0]} is not set") from None


def load_target(path: Path) -> Target:
    """Read a target profile file; errors name the file, line and field."""
    return Target.from_mapping(load_yaml(path, ProfileError), str(path))
