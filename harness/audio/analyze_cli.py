"""``harness analyze DEGRADED.wav --ref REFERENCE.wav [--json]``: judge one recording from the shell.

A thin command: it validates the files at the edge (one clear line and exit 2 for a missing file,
a non-WAV, an empty file or a sample-rate mismatch), calls :func:`harness.audio.analyze`, prints every
metric and each check's verdict, and exits 0 when all checks pass, 1 on any FAIL or ERROR. The lead's
CLI group registers :data:`analyze_command` as ``harness analyze``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from harness.contracts.thresholds import Thresholds
from harness.contracts.verdict import Verdict

if TYPE_CHECKING:  # numpy/scipy load only when a recording is analysed: `harness --help` stays fast
    from harness.audio.analysis import Analysis

__all__ = ["AudioUsageError", "analyze_command", "render_text"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class AudioUsageError(click.ClickException):
    """Bad input for the analyze command: printed on one line, exit code 2, no traceback."""

    exit_code = EXIT_USAGE


def _parse_threshold(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> Thresholds:
    pairs: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE")
        try:
            pairs[key.strip()] = float(raw)
        except ValueError:
            raise click.BadParameter(f"{key.strip()!r}: {raw!r} is not a number") from None
    try:
        return Thresholds.from_mapping(pairs)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _fmt(v: Any, unit: str = "", nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{nd}f}{(' ' + unit) if unit else ''}"
    return f"{v}{(' ' + unit) if unit else ''}"


def render_text(a: Analysis) -> str:
    """Human-readable report: the metrics, then one line per check with its verdict."""
    d = a.to_dict()
    clip = d["clipping"] or {}
    echo = d["echo"] or {}
    em = d["emodel"] or {}
    rows = [
        ("direction", d["direction"] or "-"),
        ("sample rate", f"{d['rate']} Hz, {d['duration_s']:.2f} s"),
        ("no audio", _fmt(d["no_audio"])),
        ("one-way audio", _fmt(d["one_way"]) if d["one_way"] is not None else "- (no --sent)"),
        ("wrong audio", _fmt(d["wrong_audio"])),
        ("reference match", _fmt(d["reference_match"], nd=3)),
        ("MOS (perceptual)", _fmt(d["mos"])),
        (
            "MOS drop",
            "-"
            if d["mos_drop"] is None
            else f"{d['mos_drop']:.2f} below {d['mos_ceiling']:.2f} (the clip through {d['codec']} alone)",
        ),
        ("delay", _fmt(d["delay_ms"], "ms", 1)),
        ("delay variation", _fmt(d["delay_variation_ms"], "ms", 1)),
        ("speech level", _fmt(d["level_dbov"], "dBov", 1)),
        ("gain vs reference", _fmt(d["gain_db"], "dB", 1)),
        ("level stability", _fmt(d["level_stability_db"], "dB", 1)),
        ("noise floor", _fmt(d["noise_floor_dbov"], "dBov", 1)),
        ("SNR", _fmt(d["noise_snr_db"], "dB", 1)),
        (
            "dropouts",
            str(len(d["dropouts"]))
            + "".join(
                f"\n    {x['start_s']:.2f}-{x['end_s']:.2f} s ({x['duration_ms']:.0f} ms)" for x in d["dropouts"]
            ),
        ),
        (
            "clipping",
            _fmt(clip.get("clipped")) + (f" ({clip['ratio_pct']:.3f} % of samples)" if clip.get("clipped") else ""),
        ),
        (
            "bandwidth",
            "-"
            if not d["bandwidth"]
            else f"{d['bandwidth']['lower_hz']:.0f}-{d['bandwidth']['upper_hz']:.0f} Hz (10 dB down; the reference "
            f"{d['bandwidth']['reference_lower_hz']:.0f}-{d['bandwidth']['reference_upper_hz']:.0f} Hz)",
        ),
        (
            "echo",
            "- (no --sent)"
            if not echo
            else (
                f"{echo['loss_db']:.1f} dB down at {echo['delay_ms']:.1f} ms"
                if echo["detected"]
                else "not measurable (the sent signal is silent)"
                if echo["bound_db"] is None
                else f"none found (bound {echo['bound_db']:.1f} dB)"
            ),
        ),
    ]
    cov = d.get("coverage")
    if cov:
        lo, hi = cov["judged_s"]
        holds = " (all the recording holds)" if d.get("overlap_s") else ""
        rows.insert(
            2,
            (
                "reference judged",
                f"{lo:.2f}-{hi:.2f} s{holds}: {cov['covered_speech_s']:.2f} of {cov['speech_s']:.2f} s of speech "
                f"({cov['share_pct']:.1f} %)" + (f"; {', '.join(cov['diagnosis'])}" if cov["diagnosis"] else ""),
            ),
        )
    elif d.get("overlap_s"):
        lo, hi = d["overlap_s"]
        rows.insert(2, ("reference judged", f"{lo:.2f}-{hi:.2f} s (all the recording holds)"))
    if d.get("start_offset_s") is not None and d.get("recording_lag_ms") is not None:
        rows.append(("recording lag", f"{d['recording_lag_ms']:.1f} ms (start offset {d['start_offset_s']:+.3f} s)"))
    if em:
        rows.append(("E-model", f"R {em['r']:.1f}, MOS {em['mos']:.2f} ({em['codec']})"))
    skipped_rows = {"dropouts": "dropouts", "clipping": "clipping"}
    rows = [(k, "-" if skipped_rows.get(k) in a.skipped else v) for k, v in rows]
    width = max(len(k) for k, _ in rows)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append("")
    lines.append("checks:")
    for c in a.checks:
        value = "-" if c.value is None else _fmt(c.value, c.unit)
        thr = "" if c.threshold is None else f" (needs {c.op} {c.threshold:g})" if c.op else ""
        lines.append(f"  {c.verdict.value:<5}  {c.name:<16} {value}{thr}  {c.detail}")
    for name, why in a.skipped.items():
        lines.append(f"  {'-':<5}  {name:<16} {why}")
    lines.append("")
    lines.append(f"verdict: {a.verdict.value}")
    return "\n".join(lines)


@click.command("analyze")
@click.argument("degraded", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--ref",
    "reference",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="The reference WAV that was played into the call.",
)
@click.option(
    "--sent",
    type=click.Path(path_type=Path, dir_okay=False),
    help="What the listening party itself sent (same clock as DEGRADED): enables echo and one-way checks.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the analysis as JSON.")
@click.option("--direction", default="", help="Label for the call direction, e.g. caller->agent.")
@click.option(
    "--threshold",
    "thresholds",
    multiple=True,
    callback=_parse_threshold,
    metavar="KEY=VALUE",
    help="Override a threshold, e.g. --threshold min_mos=3.8 (repeatable).",
)
@click.option(
    "--start-offset",
    "start_offset",
    type=float,
    help="When the recording started minus when the reference started playing, seconds (taken out of the delay).",
)
@click.option(
    "--expected",
    "expected",
    type=click.FloatRange(min=0, min_open=True),
    help="How long the recording was meant to last, seconds (tells a dropped call from a short recording).",
)
@click.option(
    "--codec",
    help="The negotiated codec (PCMU, PCMA, GSM...): the MOS ceiling's; with it the E-model and packet loss are "
    "judged from --loss/--jitter/--rtt.",
)
@click.option("--loss", type=click.FloatRange(0, 100), default=0.0, show_default=True, help="Packet loss %.")
@click.option("--jitter", type=click.FloatRange(0), default=0.0, show_default=True, help="Jitter, ms.")
@click.option("--rtt", type=click.FloatRange(0), default=0.0, show_default=True, help="Round-trip time, ms.")
def analyze_command(
    degraded: Path,
    reference: Path,
    sent: Path | None,
    as_json: bool,
    direction: str,
    thresholds: Thresholds,
    start_offset: float | None,
    expected: float | None,
    codec: str | None,
    loss: float,
    jitter: float,
    rtt: float,
) -> None:
    """Judge the audio quality of DEGRADED (a call recording) against the reference that was played.

    Prints every metric and the verdict of each check; exit code 0 when all checks pass, 1 on any
    FAIL or ERROR, 2 on bad input. Inputs: WAV, 8 kHz or 16 kHz, the same rate for both files.
    """
    from harness.audio.analysis import RtpStats, analyze_files
    from harness.contracts.errors import AudioInputError

    rtp = RtpStats(codec, loss, jitter, rtt) if codec else None
    try:
        result = analyze_files(
            degraded,
            reference,
            thresholds,
            direction,
            sent_path=sent,
            rtp=rtp,
            start_offset_s=start_offset,
            expected_s=expected,
            codec=codec,
        )
    except AudioInputError as exc:
        raise AudioUsageError(str(exc)) from None
    except ValueError as exc:  # arrays unusable after reading (e.g. NaN samples) or a bad codec name
        raise AudioUsageError(f"{degraded}: {exc}") from None
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        click.echo(render_text(result))
    raise SystemExit(EXIT_OK if result.verdict is Verdict.PASS else EXIT_FAILED)
