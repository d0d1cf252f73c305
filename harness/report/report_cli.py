"""``harness report``: render a stored run into one self-contained HTML file (plus JSON, JUnit, PDF)."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["report_command"]


@click.command("report")
@click.argument("run_dir", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--last", "last", type=click.IntRange(0, 1000), default=None, metavar="N",
              help="Trends and comparisons over the last N earlier runs [default: 14].")
@click.option("--runs", "runs_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
              show_default=True, help="Where run directories live; without RUN_DIR the newest one is reported.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="HTML file to write [default: RUN_DIR/report.html]; report.json goes beside it.")
@click.option("--junit", "junit_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write JUnit XML here (scenario checks and load SLA verdicts).")
@click.option("--pdf", "pdf_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also print the report to PDF (needs Debian's chromium).")
@click.option("--screenshot", "shot_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Also save a PNG of the front page (needs Debian's chromium).")
def report_command(run_dir: Path | None, last: int | None, runs_dir: Path, out: Path | None, junit_out: Path | None,
                   pdf_out: Path | None, shot_out: Path | None) -> None:
    """Write the HTML report of RUN_DIR (default: the newest run under --runs).

    The report is rendered from the stored files only (results.json, findings.json, load.json, the
    scenario directories); it opens offline and loads nothing from the network.
    """
    from harness.report.render import DEFAULT_HISTORY, write_report
    from harness.report.run_store import latest_run, load_run

    target = run_dir if run_dir is not None else latest_run(runs_dir)
    path = write_report(target, out=out, last=DEFAULT_HISTORY if last is None else last)
    click.echo(f"report: {path}")
    click.echo(f"json:   {path.with_suffix('.json')}")
    if junit_out is not None:
        from harness.report.junit import write_junit

        run = load_run(target, with_findings=False)
        write_junit(run.results or {"run_id": run.run_id, "scenarios": []}, junit_out, load=run.load)
        click.echo(f"junit:  {junit_out}")
    if pdf_out is not None or shot_out is not None:
        from harness.report.browser import Browser

        with Browser() as browser:
            browser.open(path.resolve().as_uri())
            if shot_out is not None:
                browser.screenshot(shot_out, width=1280, height=1400)
                click.echo(f"png:    {shot_out}")
            if pdf_out is not None:
                browser.pdf(pdf_out)
                click.echo(f"pdf:    {pdf_out}")
