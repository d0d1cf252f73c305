"""Rules for the media path: one-way or no audio (RTP figures against the SDP each side exchanged),
wrong audio, and packet loss or jitter from the RTP statistics."""

from __future__ import annotations

from typing import Any

from harness.findings.evidence import Clues, is_private
from harness.findings.model import Diagnosis
from harness.findings.rules import found, rule

__all__: list[str] = []  # reached through the registry

LOSS_PCT = 1.0  #: received packet loss above this explains audible damage
JITTER_MS = 30.0  #: mean interarrival jitter above this strains a jitter buffer


def _silent(c: Clues, direction: str) -> bool:
    """Did ``direction`` fail its presence check (``audio_present``, or the RTP packet count)?"""
    chk = c.sibling(c.name.sibling(direction, "" if c.name.kind == "rtp" else "audio_present"))
    return chk is not None and chk.get("verdict") == "FAIL"


def _presence_check(c: Clues) -> bool:
    n = c.name
    return c.check.get("verdict") == "FAIL" and (
        (n.kind == "audio" and n.part == "audio_present") or (n.kind == "rtp" and n.part == ""))


def _media(c: Clues) -> tuple[str, str, str, dict[str, Any], dict[str, Any]] | None:
    """(source, destination, call alias, source RTP stats, destination RTP stats) of an audio check."""
    d = c.name.direction
    if d is None:
        return None
    src, dst = d
    alias = c.name.scope if c.name.scope in c.calls else (c.call_between(src, dst) or "")
    return src, dst, alias, c.rtp(alias, src), c.rtp(alias, dst)


def loss_pct(stats: dict[str, Any]) -> float | None:
    got, lost = stats.get("rx_packets"), stats.get("rx_lost")
    if not isinstance(got, int) or not isinstance(lost, int) or got + max(lost, 0) == 0:
        return None
    return 100.0 * max(lost, 0) / (got + max(lost, 0))


@rule("no_audio_both_ways", kinds=("audio", "rtp"), order=10)
def no_audio_both_ways(c: Clues) -> Diagnosis | None:
    m = _media(c)
    if m is None or not _presence_check(c):
        return None
    src, dst, _, s_stats, d_stats = m
    if not _silent(c, f"{dst}->{src}"):
        return None
    rx_d, rx_s = d_stats.get("rx_packets"), s_stats.get("rx_packets")
    facts = [f"{dst} received {rx_d if rx_d is not None else 'no figures for'} RTP packets",
             f"{src} received {rx_s if rx_s is not None else 'no figures for'} RTP packets"]
    if not rx_d and not rx_s:
        return found("no audio in either direction and no RTP arrived at either party: the media path is broken "
                     "as a whole (media relay down, SDP addresses nobody can reach, a firewall dropping the RTP "
                     "port range, or no codec in common)",
                     "check that the PBX's media relay runs, that the c=/m= addresses in both parties' SDP are "
                     "reachable, and that the RTP port range is open in every firewall on the way", *facts)
    return found("no audio in either direction although RTP arrived: the PBX bridged silence (call parked or on "
                 "hold, a media server playing nothing, a transcoding failure)",
                 "check how the PBX bridges the two legs (a direct media bridge, music on hold, transcoding) and "
                 "listen to its own recording of the call if there is one", *facts)


@rule("one_way_audio", kinds=("audio", "rtp"), order=20)
def one_way_audio(c: Clues) -> Diagnosis | None:
    m = _media(c)
    if m is None or not _presence_check(c):
        return None
    src, dst, alias, s_stats, d_stats = m
    call_id = str((c.calls.get(alias) or {}).get("sip_call_id") or "")
    dst_wants = c.sdp(dst, "TX", call_id)  # where dst asked to receive RTP
    src_told = c.sdp(src, "RX", call_id)  # where src was told to send RTP
    sent_to = s_stats.get("remote_rtp") or (str(src_told.address) + ":" + str(src_told.port) if src_told else "?")
    tx, rx = s_stats.get("tx_packets"), d_stats.get("rx_packets")
    facts = [f"audio {src}->{dst}: {c.check.get('detail') or 'no audio'}"]
    if dst_wants:
        facts.append(f"{dst}'s SDP asks for RTP at {dst_wants}")
    if src_told:
        facts.append(f"{src} received SDP saying: send to {src_told}")
    if tx is not None:
        facts.append(f"{src} sent {tx} RTP packets to {sent_to}")
    if rx is not None:
        codec = f" ({d_stats['codec']})" if d_stats.get("codec") else ""
        facts.append(f"{dst} received {rx} RTP packets{codec}")
    if not s_stats and not d_stats:
        return found(f"one-way audio {src}->{dst} with no RTP statistics at all: the media stream of the call never "
                     "started (SDP negotiation failed, no codec in common)",
                     "compare the SDP offer and answer in both SIP logs (m= codecs, c= addresses, a= directions)",
                     *facts, confidence="possible")
    if tx == 0:
        held = src_told is not None and src_told.direction in ("sendonly", "inactive")
        cause = (f"{src} never sent RTP: the SDP it received says '{src_told.direction}', so it must not send "
                 "(a hold, or a direction attribute set by the PBX)" if held and src_told else
                 f"{src} never sent RTP: its stream did not start (muted stream, no common codec)")
        return found(f"one-way audio: {cause}", "check the a=sendrecv/sendonly/recvonly/inactive lines of the "
                     "offer/answer and the PBX's hold handling", *facts)
    if rx == 0 or rx is None:
        if dst_wants is not None and dst_wants.direction in ("sendonly", "inactive"):
            return found(f"one-way audio: {dst} asked not to receive ('{dst_wants.direction}' in its SDP)",
                         f"find why {dst} offers/answers '{dst_wants.direction}' (hold state, phone settings)", *facts)
        relay = src_told is not None and dst_wants is not None and \
            (src_told.address, src_told.port) != (dst_wants.address, dst_wants.port)
        if dst_wants is not None and is_private(dst_wants.address) and src_told is not None \
                and not is_private(src_told.address):
            cause = (f"RTP never arrived at {dst}: it advertises the private address {dst_wants.address} in its SDP, "
                     f"which the sender cannot reach: NAT on {dst}'s side is not handled")
            fix = ("enable NAT handling for that phone on the PBX (rport/comedia, symmetric RTP, media relay) or "
                   "set the phone's public address (STUN/externip); open the RTP range on the NAT firewall")
        elif relay:
            cause = (f"RTP never arrived at {dst}: {src} sent {tx} packets to the media relay at {sent_to} (the PBX "
                     f"rewrote the SDP), and the relay did not forward them to {dst_wants}")
            fix = ("check the PBX's media relay (running, its port range open, its NAT/interface settings) and "
                   f"the firewall between the relay and {dst}; the c=/m= lines in both SIP logs show both addresses")
        else:
            cause = (f"RTP never arrived at {dst}: {src} sent {tx} packets to {sent_to} and {dst} received none: "
                     "the packets are dropped on the way (firewall, NAT, a wrong c= address)")
            fix = (f"check the route and firewalls between {src} and {dst_wants or dst} for UDP RTP, and that the "
                   "SDP c= address is the one packets really reach")
        return found(f"one-way audio: {cause}", fix, *facts)
    if c.name.kind == "rtp":
        return found(f"only {rx} RTP packets reached {dst} (needs {c.check.get('threshold')}): the media started "
                     "late or stopped early (a hold, an RTP time-out, a relay that dropped the stream)",
                     f"compare when {src} sent with when {dst} received; check the relay's log and any re-INVITE "
                     "in the SIP logs", *facts)
    return found(f"one-way audio: RTP arrived at {dst} ({rx} packets) but carried silence: the sound source at "
                 f"{src} is silent (muted phone or microphone, a wrong audio device, a PBX that plays silence "
                 "instead of bridging the legs)",
                 f"check {src}'s microphone/audio source and how the PBX bridges the call; listen to the received "
                 "WAV in the evidence", *facts)


@rule("wrong_audio", kinds=("audio",), order=30)
def wrong_audio(c: Clues) -> Diagnosis | None:
    if c.name.part != "reference_match" or c.check.get("verdict") != "FAIL":
        return None
    d = c.name.direction or ("?", "?")
    return found(f"{d[1]} heard audio, but not what {d[0]} played (match {c.value} < {c.check.get('threshold')}): "
                 "crossed calls, music on hold or an announcement instead of the caller, or another call's audio",
                 "listen to the received WAV; check the PBX bridges the right legs (queue, transfer) and that the "
                 "scenario's reference is what the other side really plays",
                 str(c.check.get("detail") or ""))


@rule("loss_or_jitter", kinds=("audio", "rtp*"), order=12)
def loss_or_jitter(c: Clues) -> Diagnosis | None:
    m = _media(c)
    judged_by_network = c.name.kind == "rtp" or c.name.part in ("emodel_r", "mos", "dropouts", "delay_variation",
                                                                "level_stability")
    if m is None or not judged_by_network:
        return None
    src, dst, _, _, d_stats = m
    loss, jitter = loss_pct(d_stats), d_stats.get("rx_jitter_ms")
    high_loss = loss is not None and loss > LOSS_PCT
    high_jitter = isinstance(jitter, int | float) and jitter > JITTER_MS
    if not (high_loss or high_jitter):
        return None
    facts = [f"{dst} received {d_stats.get('rx_packets')} packets, lost {d_stats.get('rx_lost')} ({loss:.1f} %)"
             if loss is not None else "",
             f"mean jitter {jitter} ms (max {d_stats.get('rx_jitter_max_ms')} ms)" if jitter is not None else "",
             f"jitter buffer lost {d_stats.get('jb_lost')}, discarded {d_stats.get('jb_discard')} frames"
             if d_stats.get("jb_lost") is not None else ""]
    what = " and ".join(x for x in (f"{loss:.1f} % packet loss" if high_loss and loss is not None else "",
                                    f"{jitter} ms jitter" if high_jitter else "") if x)
    return found(f"the network damaged the audio {src}->{dst}: {what} on the way to {dst} (a congested or lossy "
                 "link, Wi-Fi, or an overloaded media relay)",
                 "check the path's utilisation and errors, give RTP priority (DSCP EF / QoS), check the relay's "
                 "CPU; a larger adaptive jitter buffer helps against jitter, not against loss", *facts)


@rule("emodel_low", kinds=("audio",), order=45)
def emodel_low(c: Clues) -> Diagnosis | None:
    if c.name.part != "emodel_r":
        return None
    em = c.check.get("metrics") or {}
    delay, ie = em.get("one_way_delay_ms"), em.get("ie_eff")
    if isinstance(delay, int | float) and delay > 150:
        return found(f"the E-model R is low ({c.value}) because of the one-way delay ({delay} ms): a long path, "
                     "large jitter buffers or transcoding", "shorten the path or the buffers",
                     str(c.check.get("detail")))
    if isinstance(ie, int | float) and ie > 10:
        return found(f"the E-model R is low ({c.value}) because of the codec and loss impairment (Ie,eff {ie})",
                     "use G.711 or G.722 instead of a low-bit-rate codec, and cut packet loss",
                     str(c.check.get("detail")))
    return None
