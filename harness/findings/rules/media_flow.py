"""Rules for the media path: one-way or no audio (RTP figures against the SDP each side exchanged),
media that stopped on a call that stayed up, wrong audio, and packet loss or jitter from the RTP
statistics."""

from __future__ import annotations

from typing import Any

from harness.findings.evidence import CheckView, Clues, is_private
from harness.findings.finding_model import Diagnosis
from harness.findings.rules import found, rule

__all__: list[str] = []  # reached through the registry

LOSS_PCT = 1.0  #: received packet loss above this explains audible damage
JITTER_MS = 30.0  #: mean interarrival jitter above this strains a jitter buffer
RELAY_FAULTS = ("kill", "stop", "restart")  #: lab_fault actions that take the media relay's calls away


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


def _window(detail: str) -> str:
    """What a ``flowing`` check measured, without the explanation expect_connected appends."""
    return detail.split(": the media stopped", 1)[0]


def _media_event(c: Clues) -> tuple[str, dict[str, Any]] | None:
    """The last thing the scenario did to the media path before this check: ('relay', the
    ``fault:rtpengine`` check that killed or stopped it) or ('line', a ``line:*`` outage/impairment)."""
    for chk in reversed(c.earlier_checks()):
        if chk.get("verdict") != "PASS":
            continue
        if chk.get("name") == "fault:rtpengine" and chk.get("value") in RELAY_FAULTS:
            return "relay", chk
        if CheckView.of(chk).kind == "line":
            return "line", chk
    return None


def _restarted_relay(c: Clues, fault: dict[str, Any]) -> bool:
    """Was the relay started again between ``fault`` and this check (its calls still gone)?"""
    earlier = c.earlier_checks()
    after = earlier[next(i for i, chk in enumerate(earlier) if chk is fault) + 1:]
    return any(chk.get("name") == "fault:rtpengine" and chk.get("value") == "start" for chk in after)


@rule("media_stopped", kinds=("rtp",), order=8)
def media_stopped(c: Clues) -> Diagnosis | None:
    """``rtp:<call>:<src>-><dst>:flowing`` failed while ``call:<call>:connected`` passed: dead air on a
    call that signalling still holds up. Which it was comes from what the scenario did just before
    (a relay fault, a line outage), the RTP statistics, and whether both directions stopped."""
    n = c.name
    if n.part != "flowing" or c.check.get("verdict") != "FAIL" or n.direction is None or not n.scope:
        return None
    up = c.sibling(f"call:{n.scope}:connected")
    if up is None or up.get("verdict") != "PASS":
        return None  # a dropped call is call:<call>:connected's finding, not the media's
    src, dst = n.direction
    other = c.sibling(n.sibling(f"{dst}->{src}", "flowing"))
    both = other is not None and other.get("verdict") == "FAIL"
    alias = n.scope if n.scope in c.calls else (c.call_between(src, dst) or "")
    stats = c.rtp(alias, dst)
    loss = loss_pct(stats)
    event = _media_event(c)
    got, want = c.value, c.check.get("threshold")
    received = (f"{dst} received {got:g} RTP packets where {want:g} were due"
                if isinstance(got, int | float) and isinstance(want, int | float) else f"no RTP reached {dst}")
    which = "both directions" if both else f"{src}->{dst} only, {dst}->{src} still flows" \
        if other is not None else f"{src}->{dst}"
    facts = [_window(str(c.check.get("detail") or "")),
             f"{dst}->{src}: {_window(str(other.get('detail') or ''))}" if both and other else "",
             f"the call stayed up: {up.get('detail') or 'connected'}",
             f"{event[1].get('name')}: {event[1].get('detail')}" if event else "",
             f"over the whole call {dst} received {stats.get('rx_packets')} RTP packets and lost "
             f"{stats.get('rx_lost')} ({loss:.1f} %)" if loss is not None else ""]
    if event and event[0] == "relay":
        again = ("; a restarted relay knows nothing of the calls it carried before" if event[1].get("value")
                 == "restart" else "; it was started again later, but a new relay knows nothing of the calls the "
                 "old one carried" if _restarted_relay(c, event[1]) else "")
        return found(f"media stopped while the call stayed up ({which}): the media relay died "
                     f"({event[1].get('detail')}{again}), so {received}; SIP does not pass through the relay, so "
                     "the dialog and both phones carried on in dead air",
                     "check the media relay (rtpengine) process and its log at that time and restart it; its "
                     "calls do not come back unless it keeps them elsewhere (rtpengine's Redis/keyspace "
                     "replication); set an RTP timeout on the PBX or relay (rtpengine --timeout with the proxy "
                     "ending the dialog, Asterisk rtptimeout, FreeSWITCH media_timeout) so a call without media "
                     "ends instead of staying up silent", *facts)
    if event or (loss is not None and loss > LOSS_PCT):
        why = (f"a line outage ({event[1].get('detail')})" if event and event[1].get("name") == "line:outage"
               else f"the line's impairment ({event[1].get('value')})" if event
               else f"the path to {dst} ({loss:.1f} % of the call's packets)")
        return found(f"media stopped while the call stayed up ({which}): the network lost the media, packet loss "
                     f"from {why}, so {received}; SIP still got through, so nothing ended the call (a PBX with an "
                     "RTP timeout shorter than the gap would have dropped it)",
                     "check the network path of the RTP (link flaps and outages, Wi-Fi roaming, a firewall or NAT "
                     "that dropped the RTP binding) and give RTP priority (QoS); set the PBX's RTP timeout longer "
                     "than the gaps calls must survive, shorter than the dead air callers should sit through",
                     *facts)
    if both:
        return found("media stopped while the call stayed up, in both directions at once: the media relay "
                     f"(rtpengine) died or the media path was cut while SIP still worked: {received}",
                     "check that the PBX's media relay/proxy runs (rtpengine process and log at that time) and "
                     "restart it; check the firewalls and routes of the RTP port range; an RTP timeout on the PBX "
                     "ends such calls instead of leaving them silent", *facts)
    only = " only" if other is not None else ""
    return found(f"media stopped while the call stayed up, from {src} to {dst}{only}: {received}; {src} stopped "
                 f"sending (a hold or re-INVITE to sendonly/inactive, a muted stream) or the path from {src} lost it "
                 "(a NAT or firewall binding that timed out)",
                 f"compare what {src} sent with what {dst} received (RTP statistics, the WAVs) and look for a "
                 "re-INVITE or UPDATE changing the media in both SIP logs; check NAT/firewall UDP timeouts on the "
                 "path", *facts, confidence="possible")


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
