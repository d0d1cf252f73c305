"""The raw SIP a probe sent and received, kept as evidence next to the results, credentials masked.

Each exchange gets a number that checks cite (``metrics["evidence"]``), so a reader can find the
exact request and answer behind a verdict::

    log = EvidenceLog(out_dir / "security-evidence.txt", secrets=["s3cret"])
    n = log.tx("udp", ("127.0.0.1", 5555), ("127.0.0.1", 5060), data, note="unauthenticated REGISTER")
    log.rx("udp", ("127.0.0.1", 5060), ("127.0.0.1", 5555), reply, ref=n)

Masked: every password the profile holds (wherever it appears), the ``response=`` of digest
answers (an offline dictionary attack needs nothing more), ``cnonce``, and SRTP keys: the SDES
``inline:`` key material of ``a=crypto`` lines and MIKEY ``a=key-mgmt`` data (as in
:func:`harness.contracts.siplog.mask_credentials`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from harness.contracts.siplog import mask_credentials

__all__ = ["EvidenceLog", "mask"]

MAX_SHOWN = 4096  # bytes of one message written out; oversized probes are cut with a note


def mask(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with passwords, digest responses and SRTP keys replaced by ``***`` (the one masker:
    :func:`harness.contracts.siplog.mask_credentials`)."""
    return mask_credentials(text, secrets)


def _printable(data: bytes) -> str:
    shown = data[:MAX_SHOWN]
    text = shown.decode("utf-8", errors="backslashreplace")
    text = "".join(ch if ch in "\r\n\t" or ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    if len(data) > MAX_SHOWN:
        text += f"\n[... {len(data) - MAX_SHOWN} more bytes not shown, {len(data)} in all]"
    return text.replace("\r\n", "\n")


class EvidenceLog:
    """An append-only text file of numbered SIP exchanges (one file per scenario and suite)."""

    def __init__(self, path: Path, secrets: Iterable[str] = ()):
        self.path = path
        self.secrets = [s for s in secrets if s]
        self._t0 = time.monotonic()
        self._n = 0
        if not path.exists():
            path.write_text("# Raw SIP sent and received by the harness probes (passwords and digest "
                            "responses masked as ***)\n", encoding="utf-8")

    @property
    def name(self) -> str:
        return self.path.name

    def _write(self, header: str, data: bytes) -> None:
        body = mask(_printable(data), self.secrets)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(f"\n{header}\n{body.rstrip()}\n")

    def tx(self, transport: str, src: tuple[str, int], dst: tuple[str, int], data: bytes, note: str = "") -> int:
        """Record a sent message; returns its exchange number."""
        self._n += 1
        t = (time.monotonic() - self._t0) * 1000.0
        label = f" -- {note}" if note else ""
        self._write(f"=== #{self._n} TX {transport.upper()} {_addr(src)} -> {_addr(dst)} "
                    f"+{t:.1f} ms ({len(data)} bytes){label}", data)
        return self._n

    def rx(self, transport: str, src: tuple[str, int], dst: tuple[str, int], data: bytes, ref: int) -> None:
        t = (time.monotonic() - self._t0) * 1000.0
        self._write(f"--- #{ref} RX {transport.upper()} {_addr(src)} -> {_addr(dst)} +{t:.1f} ms "
                    f"({len(data)} bytes)", data)

    def note(self, ref: int, text: str) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(f"--- #{ref} {mask(text, self.secrets)}\n")


def _addr(a: tuple[str, int]) -> str:
    return f"{a[0]}:{a[1]}"
