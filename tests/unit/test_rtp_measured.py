"""A missing RTP measurement is "not measured", never a best-case zero: the party's statistics become
RtpStats with None for what was not counted, and the loss and E-model checks say what they lacked."""

from __future__ import annotations

import math

import pytest

from harness.audio.checks.check_emodel import emodel_check
from harness.audio.checks.check_loss import loss_check
from harness.audio.result import Analysis, RtpStats
from harness.contracts.rtp_stats import aggregate_stats
from harness.contracts.thresholds import Thresholds
from harness.contracts.verdict import Verdict

CLEAN = {"codec": "PCMU", "rx_packets": 400, "rx_lost": 0, "jb_discard": 0, "rx_jitter_ms": 0.4, "rtt_ms": 0.3,
         "jb_avg_delay_ms": 40.0, "rx_loss_events": 0}


def test_a_clean_stream() -> None:
    rtp = RtpStats.from_party(CLEAN)
    assert rtp is not None
    assert (rtp.loss_pct, rtp.jitter_ms, rtp.rtt_ms, rtp.burst_ratio, rtp.packets) == (0.0, 0.4, 0.3, 1.0, 400)
    assert rtp.lacks() == []


def test_no_packets_is_no_loss_figure_not_zero_loss() -> None:
    rtp = RtpStats.from_party({**CLEAN, "rx_packets": 0, "rx_jitter_ms": None, "rtt_ms": None})
    assert rtp is not None and rtp.loss_pct is None and rtp.jitter_ms is None and rtp.rtt_ms is None
    assert rtp.lacks() == ["packet loss (no RTP packets counted)", "jitter", "RTCP round-trip time"]
    assert RtpStats.from_party({}) is None and RtpStats.from_party({"rx_packets": 3}) is None  # no stream


def test_loss_is_the_networks_and_bursts_come_from_the_loss_events() -> None:
    rtp = RtpStats.from_party({**CLEAN, "rx_packets": 380, "rx_lost": 20, "jb_discard": 10, "rx_loss_events": 4})
    assert rtp is not None
    assert rtp.loss_pct == pytest.approx(100 * 20 / 400)  # the buffer's own discards are not the line's loss
    assert rtp.burst_ratio == pytest.approx((20 / 4) * (1 - 0.05))  # mean burst 5 packets
    shed = RtpStats.from_party({**CLEAN, "jb_discard": 6})  # a clean line whose buffer shed a stall's delay
    assert shed is not None and shed.loss_pct == 0.0
    random = RtpStats.from_party({**CLEAN, "rx_packets": 380, "rx_lost": 20, "rx_loss_events": 20})
    assert random is not None and random.burst_ratio == 1.0  # bursts of one: random loss
    unknown = RtpStats.from_party({**CLEAN, "rx_packets": 380, "rx_lost": 20, "rx_loss_events": None})
    assert unknown is not None and unknown.burst_ratio is None


def _analysis(delay_ms: float = float("nan")) -> Analysis:
    a = Analysis()
    a.delay_ms = delay_ms
    return a


def test_the_loss_check_is_an_error_without_packets() -> None:
    t = Thresholds()
    c = loss_check(_analysis(), t, RtpStats("PCMU", None, None, None))
    assert c.verdict is Verdict.ERROR and "counted no RTP packets" in c.detail


def test_the_emodel_uses_only_what_was_measured() -> None:
    t = Thresholds()
    no_loss = emodel_check(_analysis(40.0), t, RtpStats("PCMU", None, 0.4, 0.3))
    assert no_loss.verdict is Verdict.ERROR and "packet loss not measured" in no_loss.detail
    no_pattern = emodel_check(_analysis(40.0), t, RtpStats("PCMU", 3.0, 0.4, 0.3, burst_ratio=None))
    assert no_pattern.verdict is Verdict.ERROR and "burst ratio" in no_pattern.detail
    # no RTCP round trip: the audio's own mouth-to-ear delay stands in, and the detail says so
    a = _analysis(230.0)
    c = emodel_check(a, t, RtpStats("PCMU", 0.0, 0.4, None, jitter_buffer_ms=40.0))
    assert c.verdict is Verdict.PASS or c.verdict is Verdict.FAIL
    assert "one-way delay measured on the audio (no RTCP round trip)" in c.detail
    assert c.metrics["one_way_delay_ms"] == pytest.approx(230.0) and c.metrics["lacked"] == ["RTCP round-trip time"]
    nothing = emodel_check(_analysis(), t, RtpStats("PCMU", 0.0, 0.4, None))
    assert nothing.verdict is Verdict.ERROR and "no delay measured from the audio either" in nothing.detail
    # bursty loss scores lower than the same loss at random
    bursty = emodel_check(_analysis(), t, RtpStats("PCMU", 3.0, 0.4, 0.3, burst_ratio=4.0))
    scattered = emodel_check(_analysis(), t, RtpStats("PCMU", 3.0, 0.4, 0.3, burst_ratio=1.0))
    assert bursty.value < scattered.value and "burst ratio 4.00" in bursty.detail


def test_stream_snapshots_keep_unmeasured_jitter_unmeasured() -> None:
    snap = {"codec": "PCMU", "rx_packets": 0, "rx_lost": 0, "rx_jitter_ms": None, "rx_jitter_max_ms": None,
            "rtt_ms": None, "tx_jitter_ms": None, "jb_avg_delay_ms": 0, "rx_loss_events": 0}
    out = aggregate_stats([snap, {**snap, "rx_packets": 50, "rx_jitter_ms": 1.0, "rx_jitter_max_ms": 3.0,
                                  "rx_lost": 2, "rx_loss_events": 1}])
    assert out["rx_jitter_ms"] == 1.0 and out["rx_jitter_max_ms"] == 3.0 and out["rtt_ms"] is None
    assert out["rx_loss_events"] == 1 and out["rx_lost"] == 2
    empty = aggregate_stats([snap])
    assert empty["rx_jitter_max_ms"] is None and empty["rx_jitter_ms"] is None
    assert not math.isnan(float(out["rx_packets"]))


def test_a_replaced_streams_first_round_trip_is_not_trusted() -> None:
    # the agent's three streams in a lab hold-resume run: before the hold, on hold, resumed; the resumed
    # stream's first receiver report answered the old stream's sender report, on another RTCP clock
    base = {"codec": "PCMU", "rx_lost": 0, "rx_loss_events": 0}
    before = {**base, "rx_packets": 100, "rtt_n": 3, "rtt_ms": 0.213, "rtt_min_ms": 0.167, "rtt_max_ms": 0.244}
    on_hold = {**base, "rx_packets": 0, "rtt_n": 0, "rtt_ms": None, "rtt_min_ms": None, "rtt_max_ms": None}
    resumed = {**base, "rx_packets": 495, "rtt_n": 4, "rtt_ms": 179.509, "rtt_min_ms": 0.259, "rtt_max_ms": 717.0}
    out = aggregate_stats([before, on_hold, resumed])
    # the old figure: weighted by packets, 149 ms on loopback
    assert out["rtt_ms"] is not None and out["rtt_ms"] < 1.0
    assert out["rtt_n"] == 6 and out["rtt_set_aside"] == 1
    assert out["rtt_min_ms"] == 0.167 and "rtt_max_ms" not in out
    # the same samples in a call's first stream are all counted: nothing there answers another clock
    first = aggregate_stats([resumed])
    assert first["rtt_ms"] == 179.509 and first["rtt_n"] == 4 and first["rtt_set_aside"] == 0
    # a replaced stream with a lone sample: not counted; no trusted sample at all is "not measured"
    lone = aggregate_stats([on_hold, {**resumed, "rtt_n": 1, "rtt_ms": 717.0, "rtt_max_ms": 717.0}])
    assert lone["rtt_ms"] is None and lone["rtt_set_aside"] == 1
    # and the E-model then takes the delay measured on the audio instead of a 717 ms round trip
    rtp = RtpStats.from_party(lone)
    assert rtp is not None and rtp.rtt_ms is None
