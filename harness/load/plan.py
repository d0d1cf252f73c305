"""What one load generator process needs to know: the profile's call recipe bound to a target.

:func:`make_plan` checks the profile against the target (loopback only, UDP, accounts and numbers
exist) and resolves URIs. A plan travels to worker processes as JSON over their stdin pipe, never
through a file, because it may carry a password.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from harness.contracts.errors import InputError
from harness.contracts.target import Secret, Target
from harness.load.profile import LoadProfile

__all__ = ["LAB_NUMBERS", "UacPlan", "check_loopback", "make_plan"]

#: what the lab's kamailio answers itself (route[LOAD] in harness/lab/kamailio.cfg)
LAB_NUMBERS = {"load": "load-answer", "load_ring": "load-ring"}


@dataclass(frozen=True)
class UacPlan:
    host: str
    port: int
    domain: str
    call_uri: str
    ring_uri: str
    from_user: str = "load"
    from_domain: str = "load.invalid"
    auth_user: str | None = None
    password: Secret | None = None
    local_ip: str = "127.0.0.1"
    hold_s: float = 1.0
    hold_jitter_pct: float = 20.0
    reinvite: bool = False
    rtp: bool = False
    rtp_audio: str | None = None
    answer_timeout_s: float = 10.0
    cancel_after_s: float = 0.5
    register_expires_s: int = 60
    t1_s: float = 0.5
    t2_s: float = 4.0
    mix: dict[str, int] = field(default_factory=lambda: {"call": 1})
    max_in_flight: int = 20000
    rtp_streams: int = 400
    max_transactions: int = 20000  # this process's share of limits.max_calls

    @property
    def from_uri(self) -> str:
        return f"sip:{self.from_user}@{self.from_domain}"

    def share(self, workers: int) -> UacPlan:
        """This plan for one of ``workers`` processes: the call bound is split between them."""
        return replace(self, max_transactions=max(1, math.ceil(self.max_transactions / max(1, workers))))

    def to_wire(self) -> dict[str, Any]:
        d = asdict(self)
        d["password"] = self.password.reveal() if self.password is not None else None
        return d

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> UacPlan:
        d = dict(data)
        d["password"] = Secret(d["password"]) if d.get("password") is not None else None
        d["mix"] = {str(k): int(v) for k, v in d.get("mix", {}).items()}
        return cls(**d)


def check_loopback(host: str, where: str) -> str:
    """The target address, which must be in 127.0.0.0/8; an InputError (exit 2) otherwise."""
    addr = "127.0.0.1" if host == "localhost" else host
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        raise InputError(f"{where}: load targets must be a loopback IP address (127.0.0.0/8), got {host!r}") from None
    if ip.version != 4 or not ip.is_loopback:
        raise InputError(f"{where}: refusing to send load to {host}: load targets must be on loopback "
                         "(127.0.0.0/8)")
    return addr


def _uri(profile: LoadProfile, target: Target, value: str, field_name: str) -> str:
    if value.startswith("sip:"):
        return value
    if value in target.numbers:
        user = target.numbers[value]
    elif value in LAB_NUMBERS and target.is_lab:
        user = LAB_NUMBERS[value]
    elif value in LAB_NUMBERS:
        raise profile.error(field_name, f"target profile {target.source} has no number '{value}': add "
                            f"numbers.{value} (a number your PBX answers under load) or set {field_name}")
    else:
        user = value
    return f"sip:{user}@{target.sip_domain}"


def make_plan(profile: LoadProfile, target: Target) -> UacPlan:
    """Bind ``profile`` to ``target``; input errors name the profile or target field at fault."""
    host = check_loopback(target.host, f"target {target.source}: pbx.host")
    if target.transport != "udp":
        raise InputError(f"target {target.source}: pbx.transport: the load engine speaks UDP only, "
                         f"got {target.transport}")
    call = profile.call
    user, auth_user, password = "load", None, None
    from_domain = "load.invalid"
    if call.account is not None:
        if call.account not in target.accounts:
            known = ", ".join(sorted(target.accounts)) or "none"
            raise profile.error("call.account", f"account '{call.account}' is not in target profile "
                                f"{target.source} (accounts: {known})")
        acc = target.accounts[call.account]
        user, auth_user, password, from_domain = acc.username, acc.auth_username, acc.password, target.sip_domain
    media = profile.media
    if media.calls_per_step > 0:
        for key, name in (("media.caller", media.caller), ("media.callee", media.callee)):
            if name not in target.accounts:
                known = ", ".join(sorted(target.accounts)) or "none"
                raise profile.error(key, f"account '{name}' is not in target profile {target.source} "
                                    f"(accounts: {known})")
    return UacPlan(
        host=host, port=target.port, domain=target.sip_domain,
        call_uri=_uri(profile, target, call.to, "call.to"),
        ring_uri=_uri(profile, target, call.ring_to, "call.ring_to") if "cancel" in profile.mix else "",
        from_user=user, from_domain=from_domain, auth_user=auth_user, password=password,
        hold_s=call.hold_s, hold_jitter_pct=call.hold_jitter_pct, reinvite=call.reinvite, rtp=call.rtp,
        rtp_audio=call.rtp_audio, answer_timeout_s=call.answer_timeout_s, cancel_after_s=call.cancel_after_s,
        register_expires_s=call.register_expires_s, t1_s=profile.t1_s, t2_s=profile.t2_s, mix=dict(profile.mix),
        max_in_flight=profile.limits.max_in_flight, rtp_streams=profile.limits.rtp_streams,
        max_transactions=profile.limits.max_calls)
