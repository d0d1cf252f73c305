"""``packet_loss``: the RTP packet loss the receiver measured (needs ``rtp``).

Loss concealed by the receiver's PLC leaves no gap in the waveform, and G.711 with PLC loses little
R per percent (G.113 Appendix I: Bpl 25.1), so 3 % random loss still rates R 83: neither the signal
nor the E-model sees it as a fault, yet a call center hears it. Judged on the network figure itself,
even when the gate fails (it does not depend on the recording).
"""

from __future__ import annotations

from harness.audio.checks.base import Context, Metric, r
from harness.audio.result import Analysis, RtpStats
from harness.contracts.thresholds import Thresholds
from harness.contracts.verdict import CheckResult

__all__ = ["METRIC", "loss_check"]


def loss_check(a: Analysis, t: Thresholds, rtp: RtpStats) -> CheckResult:
    del a  # the figure is the caller's; nothing to store
    if rtp.loss_pct is None:
        return CheckResult.error("packet_loss", f"not measured: the listener counted no RTP packets ({rtp.codec})",
                                 t.max_loss_pct, "%")
    burst = f", burst ratio {rtp.burst_ratio:.2f}" if rtp.burst_ratio not in (None, 1.0) else ""
    return CheckResult.compare(
        "packet_loss",
        r(rtp.loss_pct, 3),
        "<=",
        t.max_loss_pct,
        "%",
        f"RTP packets lost on the way to the listener ({rtp.codec}{burst})",
    )


def judge(ctx: Context) -> list[CheckResult]:
    assert ctx.rtp is not None
    return [loss_check(ctx.a, ctx.t, ctx.rtp)]


METRIC = Metric(("packet_loss",), judge, needs="rtp", network=loss_check)
