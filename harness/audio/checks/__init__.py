"""The audio metrics, one plug-in module each, registered here in one place.

A plug-in is a module with a ``METRIC`` (:class:`~harness.audio.checks.base.Metric`): the names of the
checks it may emit and a ``judge(ctx)`` that measures on the aligned signals (the
:class:`~harness.audio.checks.base.Context`), stores its measurements on the Analysis and returns its
checks. A new metric is one module plus its test, and one line in :data:`METRICS` and
:data:`CHECK_NAMES`. The gate (``audio_present``, ``reference_match``) is not a plug-in: it decides
whether the metrics run at all (:mod:`harness.audio.analysis`).
"""

from __future__ import annotations

from harness.audio.checks import (
    check_bandwidth as bandwidth,
)
from harness.audio.checks import (
    check_clipping as clipping,
)
from harness.audio.checks import (
    check_coverage as coverage,
)
from harness.audio.checks import (
    check_delay as delay,
)
from harness.audio.checks import (
    check_dropouts as dropouts,
)
from harness.audio.checks import (
    check_echo as echo,
)
from harness.audio.checks import (
    check_emodel as emodel,
)
from harness.audio.checks import (
    check_levels as levels,
)
from harness.audio.checks import (
    check_loss as loss,
)
from harness.audio.checks import (
    check_mos as mos,
)
from harness.audio.checks import (
    check_noise as noise,
)
from harness.audio.checks import (
    check_stability as stability,
)
from harness.audio.checks.base import ANALYSIS_RATE, Context, Metric

__all__ = ["ANALYSIS_RATE", "CHECK_NAMES", "GATE_NAMES", "METRICS", "Context", "Metric"]

GATE_NAMES = ("audio_present", "reference_match")

#: The metrics in the order they run: a metric may use what an earlier one stored on the Analysis
#: (coverage and level stability use the dropouts).
METRICS: tuple[Metric, ...] = (
    delay.METRIC,
    levels.METRIC,
    dropouts.METRIC,
    coverage.METRIC,
    noise.METRIC,
    clipping.METRIC,
    echo.METRIC,
    stability.METRIC,
    bandwidth.METRIC,
    mos.METRIC,
    loss.METRIC,
    emodel.METRIC,
)

#: Every check name :func:`harness.audio.analyze` can emit, in the order it emits them.
CHECK_NAMES: tuple[str, ...] = (
    "audio_present",  # FAIL: no speech received (level, activity, speech-like modulation); ERROR: reference silent
    "reference_match",  # FAIL: received audio is not the reference (wrong / crossed audio)
    "coverage",  # share of the reference's active speech recorded and heard >= min_coverage_pct
    "delay",  # one-way delay (recording lag + start_offset_s) within min_delay_ms .. max_delay_ms
    "delay_variation",  # largest minus smallest delay of the delay track <= max_delay_variation_ms
    "gain",  # |received - reference active level| <= max_abs_gain_db
    "speech_level",  # received P.56 active speech level >= min_speech_level_dbov
    "dropouts",  # number of dropout events <= max_dropouts
    "noise_floor",  # received power in reference silences <= max_noise_floor_dbov
    "snr",  # speech level minus noise floor >= min_snr_db
    "clipping",  # share of samples piled up at the clip level <= max_clipping_pct
    "echo",  # echo return loss >= min_echo_loss_db (only with the listener's sent signal)
    "level_stability",  # spread of the per-second gain <= max_level_variation_db
    "bandwidth",  # upper edge of the channel's response >= min_bandwidth_hz
    "mos",  # perceptual MOS-LQO estimate >= min_mos (absolute floor)
    "mos_drop",  # the clip's MOS through the codec alone minus the MOS <= max_mos_drop
    "packet_loss",  # RTP packet loss <= max_loss_pct (only with rtp stats)
    "emodel_r",  # G.107 R-factor from RTP statistics >= min_emodel_r (only with rtp stats)
)

_emitted = [n for m in METRICS for n in m.names]
assert sorted((*GATE_NAMES, *_emitted)) == sorted(CHECK_NAMES), "CHECK_NAMES and the registry disagree"
