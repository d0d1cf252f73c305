"""The MOS relative to the clip: its ceiling through the negotiated codec, cached; ``mos_drop`` decides
and ``mos`` keeps an absolute floor; ``packet_loss`` judges the RTP loss that concealment hides."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.audio import RtpStats, analyze
from harness.audio import ceiling as ceiling_mod
from harness.audio import impair as imp
from harness.audio.ceiling import mos_ceiling
from harness.contracts.verdict import Verdict

FIX = Path(__file__).resolve().parents[2] / "audio_fixtures"
RATE = 8000



def _call(ref: np.ndarray, law: str = "ulaw") -> np.ndarray:
    return imp.g711(np.concatenate([imp.delay(ref, RATE, 25.0), np.zeros(2400)]), law)


def test_the_ceiling_depends_on_the_clip_and_the_drop_does_not(caller: np.ndarray, agent: np.ndarray) -> None:
    a, b = analyze(_call(caller), caller, RATE), analyze(_call(agent), agent, RATE)
    assert a.mos_ceiling is not None and b.mos_ceiling is not None and a.mos_ceiling - b.mos_ceiling > 0.1
    assert a.mos_drop == pytest.approx(0.0, abs=0.05) and b.mos_drop == pytest.approx(0.0, abs=0.05)
    for x in (a, b):
        assert x.check("mos_drop").verdict is Verdict.PASS and x.check("mos").verdict is Verdict.PASS  # type: ignore[union-attr]
        assert x.to_dict()["mos_ceiling"] == x.mos_ceiling and x.codec == "pcmu"


def test_the_codec_comes_from_the_caller_or_the_rtp_stats(caller: np.ndarray) -> None:
    rec = _call(caller, "alaw")
    assert analyze(rec, caller, RATE, codec="PCMA").codec == "pcma"
    assert analyze(rec, caller, RATE, rtp=RtpStats("PCMA", 0.0, 0.5, 1.0)).codec == "pcma"
    g722 = analyze(rec, caller, RATE, codec="G722")
    drop = g722.check("mos_drop")
    assert drop is not None and "no G722 coder here" in drop.detail


def test_the_ceiling_is_computed_once(caller: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = ceiling_mod.perceptual_mos

    def counting(*args: object, **kw: object) -> object:
        calls.append(1)
        return real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(ceiling_mod, "perceptual_mos", counting)
    clip = caller[: 3 * RATE] * 0.9  # content no other test has used
    first = mos_ceiling(clip, "PCMU")
    assert mos_ceiling(clip.copy(), "pcmu") == first and len(calls) == 1
    assert mos_ceiling(clip, "PCMA").coded_with == "pcma" and len(calls) == 2


def test_the_ceiling_can_be_kept_on_disk(caller: np.ndarray, tmp_path: Path) -> None:
    clip = caller[: 2 * RATE] * 0.8
    first = mos_ceiling(clip, "PCMU", cache_dir=tmp_path)
    files = list(tmp_path.glob("mos-ceiling-*.json"))
    assert len(files) == 1 and json.loads(files[0].read_text())["mos"] == pytest.approx(first.mos, abs=1e-3)
    ceiling_mod._MEMORY.clear()
    files[0].write_text(json.dumps({"mos": 3.21}))  # read back, not recomputed
    assert mos_ceiling(clip, "PCMU", cache_dir=tmp_path).mos == 3.21
    ceiling_mod._MEMORY.clear()


@pytest.mark.parametrize("seed", [1, 8])
def test_five_percent_loss_fails_the_mos_judgement(caller: np.ndarray, agent: np.ndarray, seed: int) -> None:
    for ref in (caller, agent):
        x = np.concatenate([imp.delay(ref, RATE, 25.0), np.zeros(2400)])
        y, _ = imp.packet_loss(x, RATE, 5.0, np.random.default_rng(seed))
        a = analyze(imp.g711(y), ref, RATE)
        assert a.check("mos_drop").verdict is Verdict.FAIL  # type: ignore[union-attr]
        assert a.mos is not None and a.mos < 3.6


def test_five_percent_concealed_loss_fails_on_the_rtp_statistics(caller: np.ndarray) -> None:
    """Concealment can hide 5 % loss from the waveform (PESQ 3.60 for this draw, ours 3.75): the RTP
    count and the E-model (R 77 < 80) are what catch it."""
    x = np.concatenate([imp.delay(caller, RATE, 25.0), np.zeros(2400)])
    y, _ = imp.packet_loss(x, RATE, 5.0, np.random.default_rng(8), conceal=True)
    a = analyze(imp.g711(y), caller, RATE, rtp=RtpStats("PCMU", 5.0, 0.5, 1.0, jitter_buffer_ms=40.0))
    failing = {c.name for c in a.checks if c.verdict is Verdict.FAIL}
    assert {"packet_loss", "emodel_r"} <= failing and a.dropouts == []


def test_concealed_loss_is_caught_by_the_rtp_loss(caller: np.ndarray) -> None:
    x = np.concatenate([imp.delay(caller, RATE, 25.0), np.zeros(2400)])
    y, lost = imp.packet_loss(x, RATE, 3.0, np.random.default_rng(9), conceal=True)
    seen = 100.0 * len(lost) / (len(x) // 160 + 1)
    a = analyze(imp.g711(y), caller, RATE, rtp=RtpStats("PCMU", seen, 0.5, 1.0))
    loss = a.check("packet_loss")
    assert loss is not None and loss.verdict is Verdict.FAIL and loss.threshold == 1.0
    assert a.dropouts == []  # concealed: the waveform shows no gap


def test_network_checks_are_judged_even_when_the_gate_fails(caller: np.ndarray) -> None:
    a = analyze(np.zeros(len(caller)), caller, RATE, rtp=RtpStats("PCMU", 4.0, 2.0, 20.0))
    assert a.check("packet_loss").verdict is Verdict.FAIL  # type: ignore[union-attr]
    assert a.check("emodel_r") is not None and "mos_drop" in a.skipped
