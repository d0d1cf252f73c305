"""Just enough SDP to tell whether media is encrypted: each m= line's protocol and its SDES keys.

::

    >>> m = media(b"v=0\\r\\nm=audio 4000 RTP/SAVP 0\\r\\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc\\r\\n")
    >>> m[0].srtp, m[0].crypto_suites
    (True, ('AES_CM_128_HMAC_SHA1_80',))
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Media", "media"]


@dataclass(frozen=True)
class Media:
    kind: str
    port: int
    proto: str
    crypto_suites: tuple[str, ...] = ()

    @property
    def srtp(self) -> bool:
        """SDES-keyed SRTP (RTP/SAVP or RTP/SAVPF with a=crypto), accepted (port not 0)."""
        return self.port != 0 and "SAVP" in self.proto.upper() and bool(self.crypto_suites)

    @property
    def dtls(self) -> bool:
        return self.port != 0 and "TLS" in self.proto.upper()


def media(body: bytes) -> list[Media]:
    """The media sections of an SDP body (an unreadable line is skipped, never an error)."""
    out: list[Media] = []
    head: tuple[str, int, str] | None = None
    suites: list[str] = []

    def close() -> None:
        if head is not None:
            out.append(Media(*head, tuple(suites)))

    for raw in body.decode("utf-8", errors="replace").splitlines():
        line = raw.strip()
        if line.startswith("m="):
            close()
            head, suites = None, []
            parts = line[2:].split()
            try:
                head = (parts[0], int(parts[1].split("/")[0]), parts[2] if len(parts) > 2 else "")
            except (IndexError, ValueError):
                continue
        elif line.startswith("a=crypto:") and head is not None and len(line.split()) > 1:
            suites.append(line.split()[1])
    close()
    return out
