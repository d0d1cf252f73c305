"""Headers that tell an attacker which product and version answers (so which exploits to try).

A ``Server: Asterisk PBX 16.2.1`` or ``User-Agent: FPBX-15.0.17(16.13.0)`` is a gift to a scanner
such as sipvicious' svmap, which fingerprints exactly these. A product name alone is low severity;
a version number is medium::

    >>> [(l.header, l.severity) for l in version_leaks([("Server", "kamailio (5.6.3 (x86_64/linux))")])]
    [('Server', 'medium')]
    >>> version_leaks([("Server", "harness-lab-pbx")])
    []
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["HEADERS", "Leak", "version_leaks"]

#: headers whose value describes the software
HEADERS = ("server", "user-agent", "organization", "x-serialnumber", "x-asterisk-hangupcause", "x-powered-by")

_VERSION = re.compile(r"(?<![\w.])v?\d+\.\d+(?:\.\d+)*(?:[-~.]?\w+)?")
_PRODUCTS = re.compile(
    r"asterisk|freeswitch|kamailio|openser|opensips|ser\b|3cx|fpbx|freepbx|elastix|issabel|yeastar|grandstream|"
    r"avaya|cisco|mitel|panasonic|siemens|openscape|sipxecs|yate|brekeke|vodia|twilio|sonus|ribbon|audiocodes|"
    r"sippy|b2bua|pjsip|sofia|linphone|resiprocate|repro|flexisip|freepbx|wazo|xivo|genesys|polycom|snom|yealink",
    re.IGNORECASE)


@dataclass(frozen=True)
class Leak:
    header: str
    value: str
    product: str  # the product name found, or ""
    version: str  # the version string found, or ""

    @property
    def severity(self) -> str:
        return "medium" if self.version else "low"


def version_leaks(headers: Iterable[tuple[str, str]]) -> list[Leak]:
    """Software headers naming a product or carrying a version number; each header/value once."""
    out: list[Leak] = []
    seen: set[tuple[str, str]] = set()
    for name, value in headers:
        key = (name.lower(), value)
        if key[0] not in HEADERS or key in seen:
            continue
        seen.add(key)
        product = _PRODUCTS.search(value)
        version = _VERSION.search(value)
        if product or version:
            out.append(Leak(name, value, product.group(0) if product else "", version.group(0) if version else ""))
    return out
