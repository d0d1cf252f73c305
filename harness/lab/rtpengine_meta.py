"""rtpengine's recording files: their names, where the metadata file is, and what it says.

What rtpengine 10.5 writes (``recording-method = pcap``, measured with the Debian package 10.5.3.5):

* ``<recording-dir>/pcaps/<CALLID>-<TAG>.pcap`` where CALLID is the SIP Call-ID percent-escaped with
  ``g_uri_escape_string`` (everything except ``A-Za-z0-9-._~``, UTF-8 bytes escaped one by one: ``a@b``
  -> ``a%40b``) and TAG is 16 random lowercase hex digits. The ng reply to ``offer``/``answer`` names it
  under ``recordings``. One file per rtpengine call (Call-ID); the Call-ID is NOT inside the pcap, only in
  the file name, which is where :func:`call_id_from_path` takes it from.
* ``rtpengine-meta-<CALLID>-<TAG>.tmp`` in the recording dir's ``tmp`` folder while the call runs, renamed to
  ``<recording-dir>/metadata/rtpengine-meta-<CALLID>-<TAG>.txt`` when the call is deleted. It holds the
  pcap path (first line), then per SDP exchange ``Timestamp started ms``, ``SDP mode: offer|answer``,
  ``SDP before RTP packet: N`` and the SDP *as rtpengine rewrote it* (so the offer block advertises the
  rtpengine port the callee sends to, the answer block the port the caller sends to), then
  ``Timestamp terminated ms(first monologue)``, ``call start time``/``call end time`` (local time) and
  finally the ng ``metadata`` string, if one was given. No Call-ID line. If rtpengine is stopped with
  the call still up, the pcap is complete but the metadata stays in ``tmp/``.

The SDP in the metadata is read with the one SDP parser (:mod:`harness.contracts.sdp`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from harness.contracts.errors import RecordingError
from harness.contracts.sdp import SdpMedia, first_audio, parse_sdp

__all__ = ["RecordingMetadata", "call_id_from_path", "find_recordings", "metadata_path_for", "payload_names",
           "read_metadata", "relay_ports"]

_NAME_RE = re.compile(r"^(?P<callid>.+)-(?P<tag>[0-9a-f]{16})$")


@dataclass
class RecordingMetadata:
    """What rtpengine's metadata file for a recording says."""

    path: Path
    complete: bool  #: False while the file is still in ``tmp/`` (call not deleted)
    pcap_path: str | None = None
    sdp: list[tuple[str, str]] = field(default_factory=list)  #: (mode, SDP as rewritten by rtpengine)
    call_start: str | None = None
    call_end: str | None = None
    extra: str | None = None  #: the ng ``metadata`` string given with offer/answer

    def first_sdp(self, mode: str) -> str | None:
        return next((s for m, s in self.sdp if m == mode), None)

    def advertised(self, mode: str) -> SdpMedia | None:
        """The audio section of the first ``mode`` (offer, answer) SDP: where rtpengine asked to be sent to."""
        sdp = self.first_sdp(mode)
        return first_audio(sdp) if sdp else None


# ---------------------------------------------------------------------------------- files and names


def call_id_from_path(path: Path) -> str | None:
    """The SIP Call-ID in an rtpengine recording's file name (pcap or metadata), or None."""
    stem = Path(path).name
    for suffix in (".pcap", ".txt", ".tmp"):
        stem = stem.removesuffix(suffix)
    stem = stem.removeprefix("rtpengine-meta-")
    m = _NAME_RE.match(stem)
    return unquote(m["callid"], errors="replace") if m else None


def metadata_path_for(pcap: Path) -> Path | None:
    """rtpengine's metadata file for a pcap: ``metadata/*.txt`` when the call is over, else ``tmp/*.tmp``."""
    pcap = Path(pcap)
    spool = pcap.parent.parent
    for candidate in (
        spool / "metadata" / f"rtpengine-meta-{pcap.stem}.txt",
        pcap.parent / f"rtpengine-meta-{pcap.stem}.txt",
        spool / "tmp" / f"rtpengine-meta-{pcap.stem}.tmp",
    ):
        if candidate.is_file():
            return candidate
    return None


def find_recordings(rec_dir: Path, call_id: str | None = None, since: float | None = None) -> list[Path]:
    """rtpengine pcaps under ``rec_dir`` (the recording-dir, or its ``pcaps/``), oldest first.

    ``call_id`` keeps those whose file name carries that SIP Call-ID (rtpengine 10.5 puts it there,
    percent-escaped; its metadata file does not name it). ``since`` (epoch seconds) keeps files
    modified at or after that time. One Call-ID can have several pcaps (recording restarted).
    """
    rec_dir = Path(rec_dir)
    if not rec_dir.is_dir():
        raise RecordingError(rec_dir, "recording directory does not exist")
    where = rec_dir / "pcaps" if (rec_dir / "pcaps").is_dir() else rec_dir
    found: list[tuple[float, str, Path]] = []
    for p in where.iterdir():
        if p.suffix not in (".pcap", ".pcapng") or not p.is_file():
            continue
        if call_id is not None and call_id_from_path(p) != call_id:
            continue
        try:
            mtime = p.stat().st_mtime
        except OSError:  # removed while we looked
            continue
        if since is not None and mtime < since:
            continue
        found.append((mtime, p.name, p))
    return [p for _, _, p in sorted(found)]


# ------------------------------------------------------------------------------------- the metadata

_SDP_BLOCK_RE = re.compile(
    r"(?:\nLabel: [^\n]*)?\nTimestamp started ms: [^\n]*\nSDP mode: (?P<mode>[^\n]*)\n"
    r"SDP before RTP packet: [^\n]*\n\n"
)
_TAIL_RE = re.compile(r"\nTimestamp terminated ms")
_START_RE = re.compile(r"^call start time: (.*)$", re.M)
_END_RE = re.compile(r"^call end time: (.*)$", re.M)


def read_metadata(path: Path) -> RecordingMetadata:
    """Parse an rtpengine (pcap method) metadata file; unknown or damaged parts are left empty."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise RecordingError(path, f"cannot read metadata: {exc.strerror or exc}") from exc
    meta = RecordingMetadata(path=path, complete=path.suffix == ".txt")
    first, _, _ = text.partition("\n")
    meta.pcap_path = first.strip() or None
    blocks = list(_SDP_BLOCK_RE.finditer(text))
    tail = _TAIL_RE.search(text, blocks[-1].end() if blocks else 0)
    for i, m in enumerate(blocks):
        end = blocks[i + 1].start() if i + 1 < len(blocks) else (tail.start() if tail else len(text))
        meta.sdp.append((m["mode"].strip(), text[m.end() : end]))
    if tail:
        rest = text[tail.start() :]
        if s := _START_RE.search(rest):
            meta.call_start = s[1].strip()
        if e := _END_RE.search(rest):
            meta.call_end = e[1].strip()
            meta.extra = rest[e.end() :].strip("\n") or None
    return meta


def relay_ports(meta: RecordingMetadata | None) -> set[int]:
    """rtpengine's receiving ports: the first audio port of each SDP it wrote to the metadata file."""
    if meta is None:
        return set()
    return {m.port for _, sdp in meta.sdp if (m := first_audio(sdp)) is not None}


def payload_names(meta: RecordingMetadata | None) -> dict[int, str]:
    """Payload type -> encoding name from every ``a=rtpmap`` of the metadata's SDP (the first one wins)."""
    names: dict[int, str] = {}
    for _, sdp in meta.sdp if meta else ():
        for media in parse_sdp(sdp):
            for pt, name in media.rtpmap:
                names.setdefault(pt, name)
    return names
