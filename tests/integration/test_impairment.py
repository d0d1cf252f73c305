"""Impairment injection on the real lab in namespace mode.

1. The line itself, measured with rtpengine's control protocol (a datagram echo inside the namespace)
   and SIP OPTIONS: loss, delay, direction, reordering, a bandwidth limit, an outage, media-only.
2. The harness proving its own detectors: the connect call with 5 % loss on the media must be seen by
   the RTP statistics, the E-model and the audio checks, and the same call on a clean line must pass.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.contracts.settings import Settings
from harness.contracts.verdict import Verdict
from harness.findings.findings_sink import FindingsSink
from harness.findings.sqlite import SqliteStore
from harness.lab import LabConfig, LabStack
from harness.lab.netem import Impairment
from harness.lab.netns import LineControl, default_address
from harness.probes.readiness import sip_options_ping
from harness.scenarios.session import run_session

from .conftest import REPO, write_scenario
from .test_faults import processes_of

_BASE = int(os.environ.get("HARNESS_TEST_PORT_BASE", "36000"))
LAB = LabConfig(ip=default_address(_BASE + 900), sip_port=_BASE + 900, ng_port=_BASE + 902, rtp_min=_BASE + 903,
                rtp_max=_BASE + 929, netns=True)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabStack]:
    home = tmp_path_factory.mktemp("impair-home")
    lab = LabStack(home / "lab", LAB)
    assert lab.netns is not None
    try:
        lab.start()
        yield lab
    finally:
        lab.stop()
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        assert lab.netns.plan.name not in names
        assert not processes_of(lab.dir), "a lab process outlived the lab"


@pytest.fixture
def line(stack: LabStack) -> Iterator[LineControl]:
    assert stack.netns is not None
    yield stack.netns.control
    stack.netns.control.clear()


def echo_burst(count: int, gap_s: float = 0.002, wait_s: float = 0.6, pad: int = 0) -> dict[str, Any]:
    """``count`` ng pings to rtpengine inside the namespace (one socket): which came back, in what
    order, and their round trips."""
    cookies = [f"{i:05d}{secrets.token_hex(2)}".encode() for i in range(count)]
    sent: dict[bytes, float] = {}
    back: list[tuple[bytes, float]] = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((LAB.ip, LAB.ng_port))
        s.setblocking(False)
        for c in cookies:
            s.send(c + b" d7:command4:ping" + (b"3:pad" + str(pad).encode() + b":" + b"x" * pad if pad else b"") + b"e")
            sent[c] = time.monotonic()
            time.sleep(gap_s)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                data = s.recv(65535)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            cookie = data.split(b" ", 1)[0]
            if cookie in sent:
                back.append((cookie, time.monotonic() - sent[cookie]))
    order = [cookies.index(c) for c, _ in back]
    return {"received": len(back), "order": order, "rtt_ms": sorted(r * 1000 for _, r in back)}


def test_a_clean_line_carries_everything(line: LineControl) -> None:
    got = echo_burst(200)
    assert got["received"] == 200 and got["order"] == sorted(got["order"])
    assert sip_options_ping(LAB.ip, LAB.sip_port, 1.0) is not None


def test_loss_delay_and_direction(line: LineControl) -> None:
    line.set(Impairment(loss_pct=30), direction="to_lab", seed=1)
    assert 100 <= echo_burst(200)["received"] <= 180  # about 140 of 200
    line.set(Impairment(), direction="to_lab")
    line.set(Impairment(delay_ms=80), direction="from_lab")
    rtt = echo_burst(20)["rtt_ms"]
    assert len(rtt) == 20 and rtt[0] >= 78 and rtt[-1] <= 160
    line.set(Impairment(delay_ms=80), direction="both")
    assert echo_burst(5)["rtt_ms"][0] >= 158


def test_media_only_spares_sip(line: LineControl) -> None:
    line.set(Impairment(loss_pct=100))  # media only: SIP still passes both ways
    assert echo_burst(20, wait_s=0.3)["received"] == 0
    assert sip_options_ping(LAB.ip, LAB.sip_port, 1.0) is not None
    line.set(Impairment(loss_pct=100, media_only=False), direction="to_lab")
    assert sip_options_ping(LAB.ip, LAB.sip_port, 0.5) is None


def test_reordering_and_bandwidth(line: LineControl) -> None:
    line.set(Impairment(delay_ms=40, reorder_pct=50), direction="to_lab", seed=2)
    got = echo_burst(100, gap_s=0.004)
    assert got["received"] == 100 and got["order"] != sorted(got["order"])
    line.set(Impairment(rate_kbit=64), direction="to_lab")
    # 60 pings of about 540 bytes at once: 64 kbit/s needs ~68 ms for each, and drops past 500 ms of queue
    got = echo_burst(60, gap_s=0.0, wait_s=1.5, pad=500)
    assert 5 <= got["received"] <= 16 and got["order"] == sorted(got["order"])
    assert got["rtt_ms"][-1] >= 300


def test_an_outage_cuts_for_its_time(line: LineControl) -> None:
    line.outage(0.8, media_only=True)
    assert echo_burst(10, wait_s=0.3)["received"] == 0
    time.sleep(0.6)
    assert echo_burst(10)["received"] == 10


# ---- the detectors ------------------------------------------------------------------------------------
CLEAN = """
    name: clean-line
    parties:
      caller: {account: caller, play: FIX/speech/caller.wav}
      agent: {account: agent1, play: FIX/speech/agent.wav}
    thresholds:
      audio: {min_emodel_r: 80}
    steps:
      - call: {from: caller, to: agent, as: main}
      - talk: 9
      - hangup: {party: caller, call: main}
      - expect_audio: {call: main, direction: both}
    """


def loss_pct(stats: dict[str, Any]) -> float:
    return 100.0 * stats["rx_lost"] / (stats["rx_packets"] + stats["rx_lost"])


def test_detectors_see_5_percent_loss_and_pass_a_clean_line(stack: LabStack, tmp_path: Path) -> None:
    clean = write_scenario(tmp_path, CLEAN, "clean.yaml")
    store = SqliteStore(tmp_path / "findings.db")
    result = run_session(Settings(home=stack.dir.parent), [clean, REPO / "scenarios" / "impairment-loss5.yaml"],
                         target_file=None, out=tmp_path / "run", log=lambda _m: None, sinks=[FindingsSink(store)])
    ok, lossy = result.scenarios
    good = {c.name: c for c in ok.checks}
    bad = {c.name: c for c in lossy.checks}

    # a clean line: every check passes, nothing lost
    assert ok.verdict == Verdict.PASS, [c for c in ok.checks if c.verdict != Verdict.PASS]
    assert all(ok.rtp["main"][p]["rx_lost"] == 0 for p in ("caller", "agent"))

    # 5 % loss: the RTP statistics count it, the E-model and the audio checks see it
    assert lossy.verdict != Verdict.PASS and lossy.error is None
    assert bad["line:to_lab"].value == "loss 5% (media only)"
    for party in ("caller", "agent"):
        assert 2.0 <= loss_pct(lossy.rtp["main"][party]) <= 10.0, lossy.rtp["main"][party]
    mos_drop = []
    for d in ("caller->agent", "agent->caller"):
        assert good[f"audio:{d}:emodel_r"].value > 90
        assert bad[f"audio:{d}:emodel_r"].verdict == Verdict.FAIL and bad[f"audio:{d}:emodel_r"].value < 80
        mos_drop.append(good[f"audio:{d}:mos"].value - bad[f"audio:{d}:mos"].value)
    assert max(mos_drop) >= 0.3, mos_drop
    assert any(bad[f"audio:{d}:{k}"].verdict == Verdict.FAIL for d in ("caller->agent", "agent->caller")
               for k in ("mos", "mos_drop", "dropouts"))  # mos_drop decides now; mos keeps a floor
    diagnosed = {f.key.check: f.diagnosis for f in store.findings() if f.key.scenario == "impairment-loss5"}
    assert diagnosed["audio:caller->agent:emodel_r"] is not None
    assert diagnosed["audio:caller->agent:emodel_r"].rule == "loss_or_jitter"
    assert "packet loss" in diagnosed["audio:caller->agent:emodel_r"].cause
