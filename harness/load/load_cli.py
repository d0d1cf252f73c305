"""``harness load PROFILE``: SIP load with Locust, response times per step, media quality under load.

Registered by :mod:`harness.cli` as the ``load`` command. Importing this module is cheap: locust
(which monkey-patches the process with gevent) is imported only when the command runs.
Exit codes: 0 every SLA check passed, 1 an SLA breach (FAIL) or a missing measurement (ERROR),
2 bad input (profile, target, options), 130 interrupted (results so far are written).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from harness.contracts.errors import ExitCode

__all__ = ["load_command"]


@click.command("load")
@click.argument("profile", type=click.Path(path_type=Path))
@click.option("--target", "target_file", type=click.Path(path_type=Path),
              help="Target profile of the PBX under test (loopback only) [env HARNESS_TARGET, default: the "
                   "embedded lab].")
@click.option("--web", is_flag=True, help="Also serve Locust's web UI on 127.0.0.1 while the run lasts.")
@click.option("--web-port", type=click.IntRange(1024, 65535), default=8089, show_default=True,
              help="Port of the web UI.")
@click.option("--workers", type=click.IntRange(0, 64), default=0, show_default=True,
              help="Run Locust distributed: a master here and N worker processes on loopback (0: in-process).")
@click.option("--master-port", type=click.IntRange(0, 65535), default=0,
              help="Loopback port of the Locust master [default: any free port].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory [default: reports/load-YYYYmmdd-HHMMSS].")
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary.")
@click.pass_obj
def load_command(ctx: Any, profile: Path, target_file: Path | None, web: bool, web_port: int, workers: int,
                 master_port: int, out_dir: Path | None, quiet: bool) -> None:
    """Offer the load of PROFILE to the target; judge it against the profile's SLA.

    Writes Locust's CSVs and HTML report, load.json (per step: p50/p95/p99, rate achieved, failures
    by SIP status, MOS under load, SLA verdicts) and results.json/junit.xml. Every run stops by
    itself at the end of its shape or at the profile's limits.
    """
    from harness.load.run import LoadOptions, run_load

    out = out_dir or _default_out()

    def log(msg: str) -> None:
        if not quiet:
            click.echo(msg)

    try:
        outcome = run_load(ctx.settings, profile, target_file=target_file or ctx.settings.target, out=out, log=log,
                           options=LoadOptions(web=web, web_port=web_port, workers=workers,
                                               master_port=master_port), sinks=_sinks(ctx))
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; results so far are in {out / 'load.json'}", err=True)
        raise SystemExit(ExitCode.INTERRUPTED) from None
    _print_summary(outcome.summary, outcome.out)
    raise SystemExit(ExitCode.OK if outcome.verdict.value == "PASS" else ExitCode.FAILED)


def _default_out(base: Path = Path("reports")) -> Path:
    """``reports/load-YYYYmmdd-HHMMSS`` (with a suffix when that exists already)."""
    stamp = time.strftime("load-%Y%m%d-%H%M%S")
    out, n = base / stamp, 2
    while out.exists():
        out, n = base / f"{stamp}-{n}", n + 1
    return out


def _sinks(ctx: Any) -> list[Any]:
    """The findings store and the report, as for ``harness run``."""
    from harness.findings.findings_sink import default_sinks

    return list(default_sinks(ctx.settings))


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    click.echo("")
    click.echo(f"{'step':28} {'target':>9} {'achieved':>9} {'setup p50':>10} {'p95':>8} {'p99':>8} "
               f"{'ok %':>8} {'failures':18} {'MOS':>5}")
    for s in summary.get("steps", []):
        setup = s["requests"].get("call:setup", {})
        fails: dict[str, int] = {}
        for f in s["requests"].values():
            for code, n in f["failures_by_code"].items():
                fails[code] = fails.get(code, 0) + n
        ftxt = ", ".join(f"{c}x{n}" for c, n in sorted(fails.items())) or "-"
        click.echo(f"{s['index'] + 1:>2} {s['label'][:25]:25} {_fmt(s['target'], 1):>9} {_fmt(s['achieved'], 1):>9} "
                   f"{_fmt(setup.get('p50_ms'), 3):>10} {_fmt(setup.get('p95_ms'), 2):>8} "
                   f"{_fmt(setup.get('p99_ms'), 2):>8} {_fmt(s['success_rate_pct'], 2):>8} {ftxt[:18]:18} "
                   f"{_fmt(s['media'].get('mos_min')):>5}")
    bad = [c for c in summary.get("checks", []) if c["verdict"] != "PASS"]
    for c in bad[:12]:
        click.echo(f"  {c['verdict']:5} {c['name']}: {_fmt(c['value'])} {c.get('unit') or ''} "
                   f"(threshold {c.get('op', '')} {c.get('threshold')}){'  ' + c['detail'] if c.get('detail') else ''}")
    if len(bad) > 12:
        click.echo(f"  ... and {len(bad) - 12} more")
    run = summary.get("run", {})
    for note in run.get("notes", []):
        click.echo(f"  note: {note}")
    n = len(summary.get("checks", []))
    click.echo(f"\n{summary.get('verdict', 'ERROR')}: {n - len(bad)} of {n} SLA checks passed "
               f"({run.get('stop_reason', '')})")
    click.echo(f"load:    {out / 'load.json'}")
    click.echo(f"results: {out / 'results.json'}")
