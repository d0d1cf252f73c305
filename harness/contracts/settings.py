"""The one settings object: every ``HARNESS_*`` environment variable is read here and nowhere else.

Precedence is CLI option > ``HARNESS_*`` variable > default; the CLI passes its options to :meth:`Settings.load`.

- ``HARNESS_HOME`` (``home``): data directory: lab state and logs, findings (default ``./.harness``);
- ``HARNESS_TARGET`` (``target``): the target profile when ``--target`` is not given (default: the lab);
- ``HARNESS_DB`` (``db``): the findings database (default ``<home>/findings.db``);
- ``HARNESS_FIXTURES`` (``fixtures``): a folder searched first for the audio fixtures scenarios name;
- ``HARNESS_AUDIO_CACHE`` (``audio_cache``): where each reference clip's MOS ceiling is cached (none: memory);
- ``HARNESS_MEDIA_PRIORITY`` (``media_priority``): ``realtime`` (SCHED_RR where permitted) or ``normal``;
- ``HARNESS_JB_DISCARD`` (``jb_discard``): how the parties' jitter buffers shed delay: ``static``
  (the default: a frame per 200 ms at most, without a concealed one), ``progressive`` (pjsua's own
  default, which conceals a frame after each discard) or ``none``; read by each
  party's child process, which inherits the environment;
- ``HARNESS_LAB_IP``, ``HARNESS_LAB_SIP_PORT``, ``HARNESS_LAB_NG_PORT``, ``HARNESS_LAB_RTP_MIN``,
  ``HARNESS_LAB_RTP_MAX`` (``lab``): the embedded lab's address and ports;
- ``HARNESS_LAB_NETNS``, ``HARNESS_LAB_HARDENED`` (``lab``): the lab in a network namespace / hardened
  (``1``, ``true``, ``yes``, ``on``).

A malformed value is an :class:`~harness.contracts.errors.InputError` naming the variable (exit 2).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.contracts.errors import InputError

__all__ = ["JB_DISCARDS", "MEDIA_PRIORITIES", "Settings"]

MEDIA_PRIORITIES = ("realtime", "normal")
JB_DISCARDS = ("static", "progressive", "none")
_TRUE = ("1", "true", "yes", "on")
_LAB_PORTS = (("sip_port", "HARNESS_LAB_SIP_PORT"), ("ng_port", "HARNESS_LAB_NG_PORT"),
              ("rtp_min", "HARNESS_LAB_RTP_MIN"), ("rtp_max", "HARNESS_LAB_RTP_MAX"))


@dataclass(frozen=True)
class Settings:
    home: Path
    media_priority: str = "realtime"
    jb_discard: str = "static"
    target: Path | None = None
    db: Path | None = None
    fixtures: Path | None = None
    audio_cache: Path | None = None
    #: the lab's settings from the environment, by LabConfig field name (ip, sip_port, ..., netns, hardened)
    lab: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, home: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def path(var: str) -> Path | None:
            raw = env.get(var, "").strip()
            return Path(raw).expanduser().resolve() if raw else None

        raw_home = home or env.get("HARNESS_HOME") or ".harness"
        prio = env.get("HARNESS_MEDIA_PRIORITY", "").strip().lower() or "realtime"
        if prio not in MEDIA_PRIORITIES:
            raise InputError(f"HARNESS_MEDIA_PRIORITY={prio!r}: must be one of {', '.join(MEDIA_PRIORITIES)}")
        discard = env.get("HARNESS_JB_DISCARD", "").strip().lower() or "static"
        if discard not in JB_DISCARDS:
            raise InputError(f"HARNESS_JB_DISCARD={discard!r}: must be one of {', '.join(JB_DISCARDS)}")
        lab: dict[str, Any] = {}
        if env.get("HARNESS_LAB_IP", "").strip():
            lab["ip"] = env["HARNESS_LAB_IP"].strip()
        for name, var in _LAB_PORTS:
            raw = env.get(var, "").strip()
            if raw:
                try:
                    lab[name] = int(raw)
                except ValueError:
                    raise InputError(f"{var}={raw!r} is not a port number") from None
        for name, var in (("netns", "HARNESS_LAB_NETNS"), ("hardened", "HARNESS_LAB_HARDENED")):
            if env.get(var, "").strip().lower() in _TRUE:
                lab[name] = True
        target = env.get("HARNESS_TARGET", "").strip()
        return cls(home=Path(raw_home).expanduser().resolve(), media_priority=prio, jb_discard=discard,
                   target=Path(target) if target else None, db=path("HARNESS_DB"), fixtures=path("HARNESS_FIXTURES"),
                   audio_cache=path("HARNESS_AUDIO_CACHE"), lab=lab)

    @property
    def lab_dir(self) -> Path:
        return self.home / "lab"

    @property
    def findings_db(self) -> Path:
        """``HARNESS_DB``, else ``<home>/findings.db``."""
        return self.db if self.db is not None else self.home / "findings.db"
