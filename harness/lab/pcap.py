"""Read packet capture files down to UDP datagrams: the one thing call recordings need from them.

Formats: classic libpcap (either byte order, micro- or nanosecond timestamps) and pcapng (section
header, interface description with ``if_tsresol``/``if_tsoffset``, enhanced/simple/obsolete packet
blocks). Link types: Ethernet (with 802.1Q/802.1ad tags), raw IP (IPv4 or IPv6), Linux cooked
capture v1 and v2, BSD loopback. IPv4 and IPv6 (hop-by-hop, routing and destination-options
extension headers are walked); fragments and anything that is not UDP are counted and skipped::

    capture = read_capture(Path("call.pcap"))
    for d in capture.datagrams:
        print(d.time, d.src, d.dst, len(d.payload))
    if capture.truncated:
        print("incomplete file:", capture.truncated)

A file cut short (a capture still being written, a crash) is not an error: the datagrams before the
cut are returned and :attr:`Capture.truncated` says where and why reading stopped.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path

from harness.contracts.errors import CaptureError

__all__ = ["Capture", "Datagram", "Endpoint", "read_capture"]

Endpoint = tuple[str, int]
"""An (IP address, UDP port) pair; IPv6 addresses in their compressed text form."""

# link types (https://www.tcpdump.org/linktypes.html)
_LINK_NULL, _LINK_ETHERNET, _LINK_LOOP = 0, 1, 108
_LINK_RAW = (101, 12, 14)  # LINKTYPE_RAW and the DLT_RAW values some platforms write
_LINK_IPV4, _LINK_IPV6 = 228, 229
_LINK_SLL, _LINK_SLL2 = 113, 276
SUPPORTED_LINK_TYPES = frozenset(
    {_LINK_NULL, _LINK_ETHERNET, _LINK_LOOP, *_LINK_RAW, _LINK_IPV4, _LINK_IPV6, _LINK_SLL, _LINK_SLL2}
)

_ETH_IPV4, _ETH_IPV6 = 0x0800, 0x86DD
_ETH_VLAN = (0x8100, 0x88A8, 0x9100)
_IPPROTO_UDP = 17
_IPV6_EXT_HEADERS = (0, 43, 60)  # hop-by-hop, routing, destination options: walk over them

# A record longer than this is taken as corruption, not as a packet (libpcap uses 256 KiB as well).
_MAX_RECORD = 262_144

_PCAP_MAGIC = {  # first four bytes -> (struct byte order, timestamp fraction per second)
    b"\xd4\xc3\xb2\xa1": ("<", 1_000_000),
    b"\xa1\xb2\xc3\xd4": (">", 1_000_000),
    b"\x4d\x3c\xb2\xa1": ("<", 1_000_000_000),
    b"\xa1\xb2\x3c\x4d": (">", 1_000_000_000),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_PCAPNG_BOM = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}


@dataclass(frozen=True, slots=True)
class Datagram:
    """One UDP datagram as captured: capture time (epoch seconds), addresses, UDP payload."""

    time: float
    src: Endpoint
    dst: Endpoint
    payload: bytes
    frame: int  #: 1-based frame number in the file, as Wireshark counts


@dataclass
class Capture:
    """The UDP datagrams of one capture file and what was left out."""

    path: Path
    format: str  #: "pcap" or "pcapng"
    link_types: set[int] = field(default_factory=set)
    frames: int = 0  #: every frame read, UDP or not
    skipped: int = 0  #: frames that are not (unfragmented) UDP over IP, or of an unsupported link type
    datagrams: list[Datagram] = field(default_factory=list)
    truncated: str | None = None  #: why reading stopped early, or None when the file was read to its end


def read_capture(path: Path) -> Capture:
    """Read every UDP datagram of a pcap or pcapng file.

    Raises :class:`CaptureError` when the file cannot be opened, is not a capture, or has a link type
    that is not supported. A file cut short returns what was read, with ``truncated`` set.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CaptureError(path, f"cannot read: {exc.strerror or exc}") from exc
    head = data[:4]
    if head in _PCAP_MAGIC:
        return _read_pcap(path, data)
    if head == _PCAPNG_SHB:
        return _read_pcapng(path, data)
    if not data:
        raise CaptureError(path, "empty file, not a pcap/pcapng capture")
    raise CaptureError(path, f"not a pcap/pcapng capture (file starts with {data[:8].hex(' ')})")


def _read_pcap(path: Path, data: bytes) -> Capture:
    endian, frac = _PCAP_MAGIC[data[:4]]
    cap = Capture(path=path, format="pcap")
    if len(data) < 24:
        raise CaptureError(path, f"pcap file header cut short ({len(data)} of 24 bytes)")
    # the link type is the low 16 bits; the upper bits may carry FCS information
    link = struct.unpack_from(endian + "I", data, 20)[0] & 0xFFFF
    cap.link_types.add(link)
    if link not in SUPPORTED_LINK_TYPES:
        raise CaptureError(path, f"unsupported pcap link type {link}")
    record = struct.Struct(endian + "IIII")
    off, end = 24, len(data)
    while off < end:
        if off + 16 > end:
            cap.truncated = f"record header of frame {cap.frames + 1} cut short at byte {off}"
            break
        sec, sub, incl, _orig = record.unpack_from(data, off)
        if incl > _MAX_RECORD:
            cap.truncated = f"corrupt record header of frame {cap.frames + 1} at byte {off} (length {incl})"
            break
        if off + 16 + incl > end:
            cap.truncated = (
                f"frame {cap.frames + 1} cut short at byte {off}: {end - off - 16} of {incl} bytes present"
            )
            break
        cap.frames += 1
        _add_frame(cap, link, sec + sub / frac, data[off + 16 : off + 16 + incl])
        off += 16 + incl
    return cap


def _read_pcapng(path: Path, data: bytes) -> Capture:
    cap = Capture(path=path, format="pcapng")
    endian = "<"
    # per section: interface id -> (link type, timestamp units per second, offset in seconds)
    ifaces: list[tuple[int, float, int]] = []
    last_time = 0.0
    off, end = 0, len(data)
    while off < end:
        if off + 12 > end:
            cap.truncated = f"block header cut short at byte {off}"
            break
        btype_raw = data[off : off + 4]
        if btype_raw == _PCAPNG_SHB:
            bom = data[off + 8 : off + 12]
            if bom not in _PCAPNG_BOM:
                if off == 0:
                    raise CaptureError(path, "not a pcapng capture (bad byte-order magic)")
                cap.truncated = f"corrupt section header at byte {off}"
                break
            endian = _PCAPNG_BOM[bom]
            ifaces = []
        btype, blen = struct.unpack_from(endian + "II", data, off)
        if blen < 12 or blen % 4:
            if off == 0:
                raise CaptureError(path, f"not a pcapng capture (bad block length {blen})")
            cap.truncated = f"corrupt block at byte {off} (length {blen})"
            break
        if off + blen > end:
            cap.truncated = f"block at byte {off} cut short: {end - off} of {blen} bytes present"
            break
        body = data[off + 8 : off + blen - 4]
        off += blen
        if btype == 1:  # interface description
            if len(body) < 8:
                cap.truncated = f"corrupt interface block before byte {off}"
                break
            link = struct.unpack_from(endian + "H", body, 0)[0]
            cap.link_types.add(link)
            resol, tsoffset = _idb_options(body[8:], endian)
            ifaces.append((link, resol, tsoffset))
            continue
        if btype in (2, 3, 6):
            frame = _pcapng_packet(btype, body, endian, ifaces, last_time)
            if frame is None:
                cap.truncated = f"corrupt packet block before byte {off}"
                break
            link, t, pkt = frame
            last_time = t
            cap.frames += 1
            if link in SUPPORTED_LINK_TYPES:
                _add_frame(cap, link, t, pkt)
            else:
                cap.skipped += 1
        # any other block (name resolution, statistics, custom...) carries no packets
    if cap.frames and not (cap.link_types & SUPPORTED_LINK_TYPES):
        raise CaptureError(path, f"unsupported pcapng link type(s) {sorted(cap.link_types)}")
    return cap


def _idb_options(opts: bytes, endian: str) -> tuple[float, int]:
    resol, tsoffset = 1e6, 0
    pos = 0
    while pos + 4 <= len(opts):
        code, olen = struct.unpack_from(endian + "HH", opts, pos)
        value = opts[pos + 4 : pos + 4 + olen]
        pos += 4 + olen + (-olen % 4)
        if code == 0:
            break
        if code == 9 and olen >= 1:  # if_tsresol: 10^-n, or 2^-n when the top bit is set
            v = value[0]
            resol = float(2 ** (v & 0x7F)) if v & 0x80 else float(10**v)
        elif code == 14 and olen >= 8:  # if_tsoffset, seconds
            tsoffset = struct.unpack_from(endian + "q", value, 0)[0]
    return resol, tsoffset


def _pcapng_packet(
    btype: int, body: bytes, endian: str, ifaces: list[tuple[int, float, int]], last_time: float
) -> tuple[int, float, bytes] | None:
    if btype == 6:  # enhanced packet block
        if len(body) < 20:
            return None
        iface, hi, lo, caplen, _orig = struct.unpack_from(endian + "IIIII", body, 0)
        start = 20
    elif btype == 2:  # obsolete packet block
        if len(body) < 20:
            return None
        iface, _drops, hi, lo, caplen, _orig = struct.unpack_from(endian + "HHIIII", body, 0)
        start = 20
    else:  # simple packet block: interface 0, no timestamp
        if len(body) < 4 or not ifaces:
            return None
        (orig,) = struct.unpack_from(endian + "I", body, 0)
        link = ifaces[0][0]
        return link, last_time, body[4 : 4 + min(orig, len(body) - 4)]
    if iface >= len(ifaces) or start + caplen > len(body):
        return None
    link, resol, tsoffset = ifaces[iface]
    return link, ((hi << 32) | lo) / resol + tsoffset, body[start : start + caplen]


def _add_frame(cap: Capture, link: int, t: float, frame: bytes) -> None:
    dgram = _udp_from_frame(link, frame)
    if dgram is None:
        cap.skipped += 1
        return
    src, dst, payload = dgram
    cap.datagrams.append(Datagram(t, src, dst, payload, cap.frames))


def _udp_from_frame(link: int, f: bytes) -> tuple[Endpoint, Endpoint, bytes] | None:
    """The UDP addresses and payload in one link-layer frame, or None for anything else."""
    if link == _LINK_ETHERNET:
        if len(f) < 14:
            return None
        etype, off = int.from_bytes(f[12:14], "big"), 14
        while etype in _ETH_VLAN and len(f) >= off + 4:
            etype, off = int.from_bytes(f[off + 2 : off + 4], "big"), off + 4
    elif link in _LINK_RAW or link in (_LINK_IPV4, _LINK_IPV6):
        if not f:
            return None
        etype, off = (_ETH_IPV4 if f[0] >> 4 == 4 else _ETH_IPV6), 0
    elif link == _LINK_SLL:
        if len(f) < 16:
            return None
        etype, off = int.from_bytes(f[14:16], "big"), 16
    elif link == _LINK_SLL2:
        if len(f) < 20:
            return None
        etype, off = int.from_bytes(f[0:2], "big"), 20
    elif link in (_LINK_NULL, _LINK_LOOP):
        if len(f) < 4:
            return None
        # address family in host order (NULL) or network order (LOOP); IPv6 is 24, 28 or 30 by OS
        fam = int.from_bytes(f[0:4], "big") if link == _LINK_LOOP else int.from_bytes(f[0:4], "little")
        if fam > 0xFFFF:
            fam = int.from_bytes(f[0:4], "big")
        etype, off = (_ETH_IPV4 if fam == 2 else _ETH_IPV6 if fam in (10, 24, 28, 30) else 0), 4
    else:
        return None
    if etype == _ETH_IPV4:
        return _udp_from_ipv4(f, off)
    if etype == _ETH_IPV6:
        return _udp_from_ipv6(f, off)
    return None


def _udp_from_ipv4(f: bytes, off: int) -> tuple[Endpoint, Endpoint, bytes] | None:
    if len(f) < off + 20 or f[off] >> 4 != 4:
        return None
    ihl = (f[off] & 0x0F) * 4
    total = int.from_bytes(f[off + 2 : off + 4], "big")
    frag = int.from_bytes(f[off + 6 : off + 8], "big")
    if f[off + 9] != _IPPROTO_UDP or ihl < 20 or frag & 0x3FFF:  # not UDP, or a fragment
        return None
    # the IP total length trims Ethernet padding; 0 means "not filled in" (e.g. TSO captures)
    ip_end = off + total if total >= ihl else len(f)
    src = socket.inet_ntop(socket.AF_INET, f[off + 12 : off + 16])
    dst = socket.inet_ntop(socket.AF_INET, f[off + 16 : off + 20])
    return _udp(f, off + ihl, min(ip_end, len(f)), src, dst)


def _udp_from_ipv6(f: bytes, off: int) -> tuple[Endpoint, Endpoint, bytes] | None:
    if len(f) < off + 40 or f[off] >> 4 != 6:
        return None
    plen = int.from_bytes(f[off + 4 : off + 6], "big")
    nxt = f[off + 6]
    src = socket.inet_ntop(socket.AF_INET6, f[off + 8 : off + 24])
    dst = socket.inet_ntop(socket.AF_INET6, f[off + 24 : off + 40])
    ip_end = min(off + 40 + plen, len(f)) if plen else len(f)
    pos = off + 40
    while nxt in _IPV6_EXT_HEADERS:
        if pos + 2 > ip_end:
            return None
        nxt, pos = f[pos], pos + 8 + f[pos + 1] * 8
    if nxt != _IPPROTO_UDP:  # includes fragments (44)
        return None
    return _udp(f, pos, ip_end, src, dst)


def _udp(f: bytes, pos: int, ip_end: int, src: str, dst: str) -> tuple[Endpoint, Endpoint, bytes] | None:
    if pos + 8 > ip_end:
        return None
    sport = int.from_bytes(f[pos : pos + 2], "big")
    dport = int.from_bytes(f[pos + 2 : pos + 4], "big")
    ulen = int.from_bytes(f[pos + 4 : pos + 6], "big")
    end = min(pos + ulen, ip_end) if ulen >= 8 else ip_end
    return (src, sport), (dst, dport), f[pos + 8 : end]
