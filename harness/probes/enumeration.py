"""Extension enumeration, the way sipvicious' svwar does it: does the PBX answer differently for
users that exist and users that do not?

svwar sends REGISTER (or INVITE, OPTIONS) for a range of extensions and keeps those whose answer
differs from the one a surely-missing extension gets: a 404 instead of a 401, another reason
phrase, an extra header, a different challenge, or a slower answer (the PBX looked something up).
Here each of those signals is judged separately, so a report can say *which* one leaks::

    samples = [sample_of("1001", True, ex1), sample_of("7391", False, ex2), ...]
    for leak in compare(samples, timing_ms=5.0):
        print(leak.signal, leak.detail)

A signal leaks when it separates the two groups completely: no value seen for an existing user is
ever seen for a missing one (and, for timing, the medians also differ by more than ``timing_ms``).
Silence is a signal too: a PBX that answers real extensions and drops made-up ones (or the other way
round) tells an attacker which exist just as a 404 would (``silence``). The other signals compare the
answered probes only, so one fact is not reported five times.
"""

from __future__ import annotations

import re
import secrets
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from harness.contracts.sipmsg import COMPACT, parse_challenge
from harness.probes.client import Exchange

__all__ = ["SIGNALS", "EnumLeak", "Sample", "compare", "missing_users", "sample_of"]

SIGNALS = ("silence", "code", "reason", "headers", "header_values", "challenge", "body", "timing")

#: headers whose values change from one request to the next, or echo the request: never a leak
VOLATILE = {"via", "from", "to", "call-id", "cseq", "contact", "date", "content-length", "www-authenticate",
            "proxy-authenticate", "record-route", "timestamp"}
#: challenge parameters that are fresh on every challenge
VOLATILE_AUTH = {"nonce", "opaque", "cnonce"}


@dataclass(frozen=True)
class Sample:
    """What one probe for one user got back, reduced to the comparable parts."""

    user: str
    exists: bool
    status: int | None
    reason: str = ""
    header_names: frozenset[str] = frozenset()
    header_values: frozenset[tuple[str, str]] = frozenset()
    challenge: str = ""
    body_len: int = 0
    ms: float | None = None
    ref: int = 0


def _norm(name: str) -> str:
    low = name.strip().lower()
    return COMPACT.get(low, low)


def _challenge_shape(value: str) -> str:
    if not value:
        return ""
    ch = parse_challenge(value)
    return ";".join(f"{k}={'*' if k in VOLATILE_AUTH else v}" for k, v in sorted(ch.items()))


def sample_of(user: str, exists: bool, ex: Exchange) -> Sample:
    """Reduce an exchange to a sample: the final answer's shape and its timing."""
    final = ex.final
    if final is None:
        return Sample(user, exists, None, ex.error or "no answer", ref=ex.ref)
    msg = final.msg
    names = frozenset(_norm(k) for k, _ in msg.headers)
    values = frozenset((_norm(k), re.sub(r"\s+", " ", v)) for k, v in msg.headers if _norm(k) not in VOLATILE)
    challenge = msg.header("WWW-Authenticate") or msg.header("Proxy-Authenticate")
    return Sample(user, exists, msg.status, msg.reason, names, values, _challenge_shape(challenge),
                  len(msg.body), final.t_ms, ex.ref)


@dataclass(frozen=True)
class EnumLeak:
    signal: str
    existing: str  # what existing users got
    missing: str  # what missing users got

    @property
    def detail(self) -> str:
        return f"{self.signal}: existing users get {self.existing}, missing users get {self.missing}"


def _show(values: Iterable[object]) -> str:
    items = sorted({str(v) for v in values})
    text = ", ".join(items) if items else "nothing"
    return text if len(text) <= 160 else text[:157] + "..."


def _separates(samples: list[Sample], key: Callable[[Sample], object]) -> tuple[set[object], set[object]] | None:
    have = {key(s) for s in samples if s.exists}
    miss = {key(s) for s in samples if not s.exists}
    if have and miss and not (have & miss):
        return have, miss
    return None


def _answer_shape(group: list[Sample]) -> str:
    codes = sorted({str(s.status) for s in group if s.status is not None})
    silent = sum(1 for s in group if s.status is None)
    parts = ([f"an answer ({', '.join(codes)})"] if codes else []) + ([f"no answer ({silent} of {len(group)})"]
                                                                        if silent else [])
    return " or ".join(parts) or "nothing"


def compare(samples: list[Sample], *, timing_ms: float = 5.0) -> list[EnumLeak]:
    """The signals that tell existing from missing users apart (empty: no leak found).

    Unanswered probes stay in: silence for one group against answers for the other is the
    ``silence`` leak; the other signals are then compared over the answered probes.
    """
    leaks: list[EnumLeak] = []
    if _separates(samples, lambda s: s.status is None):
        leaks.append(EnumLeak("silence", _answer_shape([s for s in samples if s.exists]),
                              _answer_shape([s for s in samples if not s.exists])))
    samples = [s for s in samples if s.status is not None]
    keys: dict[str, Callable[[Sample], object]] = {
        "code": lambda s: s.status, "reason": lambda s: s.reason, "challenge": lambda s: s.challenge,
        "body": lambda s: s.body_len}
    for signal, key in keys.items():
        sep = _separates(samples, key)
        if sep:
            leaks.append(EnumLeak(signal, _show(sep[0]), _show(sep[1])))
    sep_names = _separates(samples, lambda s: s.header_names)
    if sep_names:
        have = frozenset.intersection(*[s.header_names for s in samples if s.exists])
        miss = frozenset.intersection(*[s.header_names for s in samples if not s.exists])
        leaks.append(EnumLeak("headers", _show(have - miss) or "the same headers",
                              _show(miss - have) or "the same headers"))
    sep_values = _separates(samples, lambda s: s.header_values)
    if sep_values and not sep_names:
        have_v = frozenset.union(*[s.header_values for s in samples if s.exists])
        miss_v = frozenset.union(*[s.header_values for s in samples if not s.exists])
        leaks.append(EnumLeak("header_values", _show(f"{k}: {v}" for k, v in have_v - miss_v),
                              _show(f"{k}: {v}" for k, v in miss_v - have_v)))
    leak = _timing_leak(samples, timing_ms)
    if leak is not None:
        leaks.append(leak)
    return leaks


def _timing_leak(samples: list[Sample], timing_ms: float) -> EnumLeak | None:
    have = [s.ms for s in samples if s.exists and s.ms is not None]
    miss = [s.ms for s in samples if not s.exists and s.ms is not None]
    if len(have) < 2 or len(miss) < 2:
        return None
    mh, mm = statistics.median(have), statistics.median(miss)
    apart = max(have) < min(miss) or max(miss) < min(have)
    if apart and abs(mh - mm) > timing_ms:
        return EnumLeak("timing", f"median {mh:.1f} ms", f"median {mm:.1f} ms")
    return None


def missing_users(existing: Iterable[str], known: Iterable[str], n: int) -> list[str]:
    """``n`` user names that look like the existing ones (same length, digits if they are digits)
    but are not in the profile: the baseline svwar compares against."""
    existing, taken = list(existing), set(known)
    out: list[str] = []
    proto = existing[0] if existing else "1000"
    for _ in range(n * 50):
        if len(out) >= n:
            break
        if proto.isdigit():
            cand = str(9 - int(proto[0])) + "".join(str(secrets.randbelow(10)) for _ in range(len(proto) - 1)) \
                if len(proto) > 1 else str(secrets.randbelow(10))
        else:
            cand = "zz" + secrets.token_hex(3)
        if cand not in taken and cand not in out:
            out.append(cand)
    return out
