"""ITU-T G.107 E-model from RTP statistics."""

from __future__ import annotations

import pytest

from harness.audio.emodel import emodel, r_to_mos


def test_default_connection_is_93_2() -> None:
    r = emodel("PCMU", 0.0, 0.0, 0.0, ptime_ms=0.0)
    assert r.r == pytest.approx(93.2, abs=0.05)
    assert r.mos == pytest.approx(4.41, abs=0.01)


def test_r_to_mos_ends_and_midpoint() -> None:
    assert r_to_mos(-5) == 1.0 and r_to_mos(120) == 4.5
    assert r_to_mos(70) == pytest.approx(3.6, abs=0.01)


def test_loss_lowers_r_and_plc_helps() -> None:
    rs = [emodel("PCMA", loss, 2.0, 40.0).r for loss in (0.0, 1.0, 5.0, 20.0)]
    assert rs == sorted(rs, reverse=True)
    assert emodel("pcmu-noplc", 2.0, 2.0, 40.0).r < emodel("pcmu", 2.0, 2.0, 40.0).r


def test_g711_with_plc_ie_eff_matches_g113() -> None:
    # Ie,eff = 95 * Ppl / (Ppl + 25.1) for random loss
    r = emodel("PCMU", 5.0, 0.0, 0.0)
    assert r.ie_eff == pytest.approx(95 * 5 / (5 + 25.1), abs=1e-6)


def test_bursty_loss_is_worse() -> None:
    assert emodel("PCMU", 5.0, 2.0, 40.0, burst_ratio=2.0).r < emodel("PCMU", 5.0, 2.0, 40.0).r


def test_delay_impairment_grows_past_150_ms() -> None:
    short = emodel("PCMU", 0.0, 0.0, 100.0)
    long = emodel("PCMU", 0.0, 0.0, 600.0)
    assert long.id > short.id + 5
    assert long.one_way_delay_ms == pytest.approx(300 + 20 + 20)  # rtt/2 + jitter buffer + packet


def test_gsm_codec_impairment() -> None:
    assert emodel("GSM", 0.0, 0.0, 0.0).ie_eff == pytest.approx(20.0)


def test_jitter_buffer_delay_counts_in_the_one_way_delay() -> None:
    adaptive = emodel("PCMU", 0.0, 30.0, 40.0)  # 2 x jitter = 60 ms buffer
    measured = emodel("PCMU", 0.0, 30.0, 40.0, jitter_buffer_ms=200.0)
    assert adaptive.one_way_delay_ms == pytest.approx(20 + 60 + 20)
    assert measured.one_way_delay_ms == pytest.approx(20 + 200 + 20)
    assert measured.r < adaptive.r


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"codec": "opus"}, "unknown codec"),
        ({"loss_pct": -1.0}, "loss_pct"),
        ({"loss_pct": 101.0}, "loss_pct"),
        ({"burst_ratio": 0.5}, "burst_ratio"),
        ({"rtt_ms": float("nan")}, "rtt_ms"),
    ],
)
def test_bad_inputs_are_value_errors(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"codec": "PCMU", "loss_pct": 0.0, "jitter_ms": 0.0, "rtt_ms": 0.0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        emodel(**args)  # type: ignore[arg-type]
