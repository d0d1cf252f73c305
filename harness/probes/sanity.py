"""Clock and name sanity: the PBX's clock against ours (its Date header), and its name in DNS.

A PBX whose clock is off writes CDRs and recordings that do not line up with anything else, and
rejects or accepts TLS certificates at the wrong times; a name that resolves slowly or to changing
addresses makes phones fail to register in ways that look random::

    >>> date_skew("Mon, 01 Jan 2024 00:00:05 GMT", 1704067200.0)
    5.0
    >>> date_skew("not a date", 0.0) is None
    True
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

__all__ = ["Resolution", "date_skew", "resolve"]


def date_skew(date_header: str, local_epoch: float) -> float | None:
    """Seconds the server's clock is ahead of ours (negative: behind); None for an unreadable date.

    A Date header has one-second resolution: differences under a second are noise.
    """
    try:
        server = parsedate_to_datetime(date_header.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if server.tzinfo is None:
        return None
    return round(server.timestamp() - local_epoch, 3)


@dataclass
class Resolution:
    host: str
    addresses: list[str] = field(default_factory=list)
    ms: float | None = None
    error: str = ""


def resolve(host: str, port: int) -> Resolution:
    """One lookup through the system resolver (what the phones and pjsua2 use), timed."""
    res = Resolution(host)
    t0 = time.monotonic()
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_UDP)
    except (socket.gaierror, UnicodeError) as exc:
        res.error = str(exc)
        return res
    res.ms = round((time.monotonic() - t0) * 1000.0, 3)
    res.addresses = list(dict.fromkeys(str(i[4][0]) for i in infos))
    return res
