"""``harness findings ...`` and ``harness retest``: thin commands over the findings store.

::

    harness findings list [--status open|analysed|fixed|verified|all]... [--json]
    harness findings show ID [--json]
    harness findings note ID TEXT...            # cause and solution -> analysed
    harness findings fixed ID --note TEXT       # the fix was carried out -> fixed
    harness retest ID...                        # same scenario file, same target -> verified / reopened
    harness retest --all-fixed                  # every fixed finding, the morning after a repair

The database is ``--db`` (on ``findings`` or ``retest``), else ``HARNESS_DB``, else
``<HARNESS_HOME>/findings.db``. :func:`only_failed_paths` serves ``harness run --only-failed``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from harness.contracts.errors import ExitCode, InputError
from harness.contracts.settings import Settings

__all__ = ["findings_group", "only_failed_paths", "retest_command"]

STATUS_CHOICES = ("open", "analysed", "fixed", "verified", "all")
DEFAULT_STATUS = ("open", "analysed", "fixed")


@dataclass
class FindingsCtx:
    settings: Settings
    db: Path | None


def _settings(click_ctx: click.Context) -> Settings:
    settings = getattr(click_ctx.obj, "settings", None)  # harness.cli.Ctx when run under `harness`
    return settings if isinstance(settings, Settings) else Settings.load()


@contextmanager
def _store(fctx: FindingsCtx) -> Iterator[Any]:
    from harness.findings.finding_store import db_location, open_store

    def warn(message: str) -> None:
        click.echo(f"warning: {message}", err=True)

    store = open_store(db_location(fctx.settings, fctx.db), on_bad_record=warn)
    try:
        yield store
    finally:
        store.close()


_db_option = click.option("--db", type=click.Path(dir_okay=False, path_type=Path), default=None,
                          help="Findings database [env HARNESS_DB, default <HARNESS_HOME>/findings.db].")


@click.group("findings")
@_db_option
@click.pass_context
def findings_group(click_ctx: click.Context, db: Path | None) -> None:
    """Problems found by runs: list them, read their diagnosis, record cause, solution and fix."""
    click_ctx.obj = FindingsCtx(_settings(click_ctx), db)


@findings_group.command("list")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUS_CHOICES),
              help="Only findings in this state (repeatable; 'all' for every state) [default: open, analysed, "
                   "fixed].")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_obj
def list_command(fctx: FindingsCtx, statuses: tuple[str, ...], as_json: bool) -> None:
    """List findings, oldest first."""
    from harness.findings.finding_model import State
    from harness.findings.views import finding_line, list_header

    wanted = statuses or DEFAULT_STATUS
    states = None if "all" in wanted else {State(s) for s in wanted}
    with _store(fctx) as store:
        found = store.findings(states)
    if as_json:
        click.echo(json.dumps([f.to_dict() for f in found], indent=2, default=str))
        return
    if not found:
        click.echo(f"no findings ({', '.join(wanted)})")
        return
    click.echo(list_header())
    for f in found:
        click.echo(finding_line(f))
        if f.diagnosis is not None:
            click.echo(f"{'':6}cause: {_short(f.diagnosis.cause)}")


@findings_group.command("show")
@click.argument("finding_id", type=click.IntRange(min=1), metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_obj
def show_command(fctx: FindingsCtx, finding_id: int, as_json: bool) -> None:
    """Everything about one finding: diagnosis, evidence, measurements and history."""
    from harness.findings.views import finding_detail

    with _store(fctx) as store:
        f = store.finding(finding_id)
    if as_json:
        click.echo(json.dumps(f.to_dict(), indent=2, default=str))
        return
    for line in finding_detail(f):
        click.echo(line)


@findings_group.command("note")
@click.argument("finding_id", type=click.IntRange(min=1), metavar="ID")
@click.argument("text", nargs=-1, required=True)
@click.pass_obj
def note_command(fctx: FindingsCtx, finding_id: int, text: tuple[str, ...]) -> None:
    """Record the cause and the solution (an open finding becomes analysed)."""
    from harness.findings.finding_model import Action

    with _store(fctx) as store:
        f = store.transition(finding_id, Action.NOTED, _text(text))
    click.echo(f"finding #{f.id} is {f.state.value}; note recorded")


@findings_group.command("fixed")
@click.argument("finding_id", type=click.IntRange(min=1), metavar="ID")
@click.option("--note", "note", required=True, help="What was done to fix it.")
@click.pass_obj
def fixed_command(fctx: FindingsCtx, finding_id: int, note: str) -> None:
    """Record that the fix was carried out; 'harness retest ID' then checks it."""
    from harness.findings.finding_model import Action

    with _store(fctx) as store:
        f = store.transition(finding_id, Action.FIXED, _text((note,)))
    click.echo(f"finding #{f.id} is fixed; check it with 'harness retest {f.id}'")


@click.command("retest")
@click.argument("finding_ids", nargs=-1, type=click.IntRange(min=1), metavar="[ID]...")
@click.option("--all-fixed", is_flag=True, help="Retest every finding in state 'fixed'.")
@_db_option
@click.option("--out-base", type=click.Path(file_okay=False, path_type=Path), default=Path("reports"),
              show_default=True, help="Where the retest run directories go.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the comparison and the outcome.")
@click.pass_context
def retest_command(click_ctx: click.Context, finding_ids: tuple[int, ...], all_fixed: bool, db: Path | None,
                   out_base: Path, quiet: bool) -> None:
    """Re-run exactly the scenario and target that produced a finding; verified if it passes now."""
    from harness.findings.compare import format_rows
    from harness.findings.finding_model import State
    from harness.findings.retest import retest_findings

    if not finding_ids and not all_fixed:
        raise click.UsageError("name the finding(s) to retest, or use --all-fixed")
    fctx = FindingsCtx(_settings(click_ctx), db)

    def log(msg: str) -> None:
        if not quiet or msg.startswith(("warning", "note")):
            click.echo(msg)

    with _store(fctx) as store:
        chosen = [store.finding(i) for i in dict.fromkeys(finding_ids)]
        if all_fixed:
            chosen += [f for f in store.findings({State.FIXED}) if f.id not in finding_ids]
        if not chosen:
            click.echo("no fixed findings to retest")
            return
        try:
            outcomes = retest_findings(fctx.settings, store, chosen, out_base=out_base, log=log)
        except KeyboardInterrupt:
            click.echo("\ninterrupted; the retest runs so far are stored", err=True)
            raise SystemExit(ExitCode.INTERRUPTED) from None
    for o in outcomes:
        click.echo("")
        verdict = "INCONCLUSIVE (the harness failed, not the PBX)" if o.inconclusive else \
            "PASSED" if o.passed else "FAILED"
        click.echo(f"finding #{o.finding.id} ({o.finding.key}): {verdict} -> {o.finding.state.value}")
        for line in format_rows(o.rows):
            click.echo(line)
        click.echo(f"  run: {o.run_dir}")
    if all(o.passed for o in outcomes):
        raise SystemExit(ExitCode.OK)
    raise SystemExit(ExitCode.HARNESS if all(o.passed or o.inconclusive for o in outcomes) else ExitCode.FAILED)


def only_failed_paths(settings: Settings, db: Path | None = None) -> list[Path]:
    """The scenario files that did not pass in the last ``harness run`` (retests are not runs here),
    in run order; [] when everything passed. InputError when no run is stored or a file is gone."""
    from harness.findings.finding_store import db_location, open_store

    location = db_location(settings, db)
    store = open_store(location, on_bad_record=lambda m: click.echo(f"warning: {m}", err=True))
    try:
        last = store.last_run("run")
        if last is None or last.id is None:
            raise InputError(f"no run is recorded in {location} yet: nothing to re-run")
        paths = list(dict.fromkeys(Path(s.file) for s in store.scenarios(last.id) if s.verdict != "PASS"))
    finally:
        store.close()
    for p in paths:
        if not p.is_file():
            raise InputError(f"{p}: scenario file of the last run no longer exists")
    return paths


def _text(parts: tuple[str, ...]) -> str:
    text = " ".join(parts).strip()
    if not text:
        raise click.UsageError("the note is empty")
    return text


def _short(text: str, width: int = 110) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
