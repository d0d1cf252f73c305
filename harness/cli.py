"""The ``harness`` command line: thin commands that parse, call the core and print.

Exit codes (:class:`harness.contracts.errors.ExitCode`): 0 everything passed, 1 any FAIL or ERROR about the
target, 2 usage or input error, 3 only the harness failed (lab start, party crash, host overloaded,
internal error), 130 interrupted. Expected failures print one line, never a traceback.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from harness import __version__
from harness.contracts.errors import ExitCode, HarnessError, LabError
from harness.contracts.results import DEFAULT_RERUNS, MAX_RERUNS
from harness.contracts.settings import Settings
from harness.lab.config import LabConfig, lab_profile_mapping
from harness.lab.stack import LabStack

__all__ = ["cli", "main"]


@dataclass
class Ctx:
    settings: Settings


pass_ctx = click.make_pass_decorator(Ctx)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="harness")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="Data directory for lab state and logs [env HARNESS_HOME, default: ./.harness].")
@click.pass_context
def cli(click_ctx: click.Context, home: Path | None) -> None:
    """Telephony test harness for call-center PBXs: real SIP calls, audio quality, load and findings."""
    click_ctx.obj = Ctx(Settings.load(home))


# ---- lab --------------------------------------------------------------------------------------------
@cli.group()
def lab() -> None:
    """The embedded lab PBX (kamailio + rtpengine on loopback)."""


@lab.command("up")
@click.option("--ip", help="Loopback address to listen on [env HARNESS_LAB_IP, default 127.0.0.1].")
@click.option("--sip-port", type=click.IntRange(1024, 65535), help="SIP port [default 35060].")
@click.option("--ng-port", type=click.IntRange(1024, 65535), help="rtpengine control port [default 35222].")
@click.option("--rtp-min", type=click.IntRange(1024, 65535), help="First RTP relay port [default 35300].")
@click.option("--rtp-max", type=click.IntRange(1024, 65535), help="Last RTP relay port [default 35899].")
@click.option("--no-record", is_flag=True, help="Do not record calls in rtpengine.")
@click.option("--hardened", is_flag=True,
              help="TCP/TLS, a brute-force ban, SRTP, no calls from unknown domains [env HARNESS_LAB_HARDENED=1].")
@click.option("--netns", is_flag=True,
              help="Run the lab in a network namespace behind an impairable line (root) [env HARNESS_LAB_NETNS=1].")
@pass_ctx
def lab_up(ctx: Ctx, ip: str | None, sip_port: int | None, ng_port: int | None, rtp_min: int | None,
           rtp_max: int | None, no_record: bool, hardened: bool, netns: bool) -> None:
    """Start the lab PBX and wait until it answers."""
    cfg = LabConfig.from_env(ip=ip, sip_port=sip_port, ng_port=ng_port, rtp_min=rtp_min, rtp_max=rtp_max,
                             record=False if no_record else None, hardened=True if hardened else None,
                             netns=True if netns else None)
    stack = LabStack(ctx.settings.lab_dir, cfg, media_priority=ctx.settings.media_priority)
    if stack.is_running():
        running = LabStack(ctx.settings.lab_dir).config  # as it was started (state.json)
        click.echo(f"lab already running (kamailio pid {stack.pids.get('kamailio')}, "
                   f"rtpengine pid {stack.pids.get('rtpengine')}){', hardened' if running.hardened else ''}")
        if running.hardened != cfg.hardened:
            click.echo(f"note: it is {'' if running.hardened else 'not '}hardened; 'harness lab down' first to start "
                       f"it {'hardened' if cfg.hardened else 'plain'}")
        return
    timings = stack.start()
    click.echo(f"lab up: SIP {cfg.ip}:{cfg.sip_port}/udp, rtpengine {cfg.ip}:{cfg.ng_port}, "
               f"RTP {cfg.rtp_min}-{cfg.rtp_max} (ready in "
               f"{timings['rtpengine_ready_s'] + timings['kamailio_ready_s']:.2f} s)")
    if cfg.hardened:
        click.echo(f"hardened: {_security_line(cfg.security(stack.dir), cfg.ip, cfg.sip_port)}")
    click.echo(f"state and logs: {stack.dir}")


def _security_line(sec: dict[str, Any], ip: str, sip_port: int) -> str:
    """One line on the lab's transport and media security (``LabConfig.security``)."""
    if not sec["hardened"]:
        return f"no: SIP over UDP {ip}:{sip_port} only; no TLS, no SRTP"
    return (f"yes: SIP over UDP and TCP {ip}:{sip_port}, TLS {ip}:{sec['tls_port']} (CA {sec['tls_ca_file']}); "
            f"SRTP {sec['srtp']} (SDES; plain RTP allowed); a ban after 5 wrong passwords; "
            "no calls from unknown domains")


@lab.command("down")
@pass_ctx
def lab_down(ctx: Ctx) -> None:
    """Stop the lab PBX."""
    stack = LabStack(ctx.settings.lab_dir)
    if stack.state_error:
        click.echo(f"warning: {stack.state_error}", err=True)
    if not stack.pids:
        click.echo("lab is not running")
        return
    times = stack.stop()
    click.echo("lab down" + (f" ({', '.join(f'{k} {v:.2f} s' for k, v in times.items())})" if times else ""))


@lab.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@pass_ctx
def lab_status(ctx: Ctx, as_json: bool) -> None:
    """Say what runs, where, and which accounts exist. Exit 1 when the lab is not fully up."""
    stack = LabStack(ctx.settings.lab_dir)
    if stack.state_error:
        click.echo(f"warning: {stack.state_error}", err=True)
    st = stack.status()
    if as_json:
        click.echo(json.dumps(st.as_dict(), indent=2))
    else:
        click.echo(f"lab: {'UP' if st.up else 'DOWN'}  ({stack.dir})")
        click.echo(f"  hardened: {_security_line(st.security, st.config.ip, st.config.sip_port)}")
        for c in st.components:
            state = "ready" if c.ready else ("running, not answering" if c.running else "not running")
            rtt = f", probe {c.rtt_ms} ms" if c.rtt_ms is not None else ""
            click.echo(f"  {c.name:10} {state:24} pid {c.pid or '-':>7}  {c.address}{rtt}")
            if c.running is False and c.pid is not None:
                click.echo(f"    it died; log: {c.log}")
        click.echo("  accounts:")
        for a in st.accounts:
            click.echo(f"    {a['name']:11} {a['aor']}")
    if not st.up:
        raise SystemExit(ExitCode.FAILED)


@lab.command("profile")
@pass_ctx
def lab_profile(ctx: Ctx) -> None:
    """Print the lab's built-in target profile (a template for your own PBX's profile)."""
    import yaml

    stack = LabStack(ctx.settings.lab_dir)
    cfg = stack.config
    click.echo(f"# the lab PBX{', hardened' if cfg.hardened else ''} "
               f"({'running' if stack.is_running() else 'not running'}; {stack.dir})")
    if cfg.hardened:
        click.echo(f"# hardened: {_security_line(cfg.security(stack.dir), cfg.ip, cfg.sip_port)}")
    click.echo(yaml.safe_dump(lab_profile_mapping(cfg, stack.rec_dir), sort_keys=False), nl=False)


# ---- run --------------------------------------------------------------------------------------------
@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--only-failed", is_flag=True, help="Also re-run the scenario files that did not pass in the last run.")
@click.option("--target", "target_file", type=click.Path(path_type=Path),
              help="Target profile of the PBX under test [env HARNESS_TARGET, default: the embedded lab].")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Run directory [default: reports/run-YYYYmmdd-HHMMSS].")
@click.option("--reruns", type=click.IntRange(0, MAX_RERUNS), default=DEFAULT_RERUNS, show_default=True,
              help="Run a scenario again, up to this many times, when the harness's own host was too starved to "
                   "judge it (every attempt is kept; 0: never).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the summary.")
@pass_ctx
def run(ctx: Ctx, paths: tuple[Path, ...], only_failed: bool, target_file: Path | None, out_dir: Path | None,
        reruns: int, quiet: bool) -> None:
    """Run scenario and suite files against the target; write results.json, junit.xml and report.html."""
    from harness.findings.findings_sink import default_sinks
    from harness.scenarios.session import default_run_dir, run_session

    if only_failed:
        from harness.findings.findings_cli import only_failed_paths

        failed = only_failed_paths(ctx.settings)
        if not failed and not paths:
            click.echo("nothing failed in the last run")
            return
        paths = (*paths, *failed)
    if not paths:
        raise click.UsageError("give scenario or suite files, or --only-failed")
    out = out_dir or default_run_dir()

    def log(msg: str) -> None:
        if not quiet:
            click.echo(msg)

    try:
        result = run_session(ctx.settings, list(paths), target_file=target_file or ctx.settings.target, out=out,
                             log=log, sinks=default_sinks(ctx.settings), reruns=reruns)
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; results so far are in {out / 'results.json'}", err=True)
        raise SystemExit(ExitCode.INTERRUPTED) from None
    _summary(result.to_dict(), out)
    raise SystemExit(run_exit_code(result))


def run_exit_code(result: Any) -> ExitCode:
    """0 all PASS; 3 when every FAIL/ERROR is the harness's own (see ExitCode); else 1."""
    if result.verdict.value == "PASS":
        return ExitCode.OK
    if result.harness_failed():
        return ExitCode.HARNESS
    return ExitCode.FAILED


def _check_note(c: dict[str, Any]) -> str:
    """``name VERDICT: value unit (threshold op limit)``; an unmeasured check shows why instead."""
    if c.get("value") is None:
        return f"{c['name']} {c['verdict']}: {c.get('detail') or 'no measurement'}"
    unit = f" {c['unit']}" if c.get("unit") else ""
    limit = f" (threshold {c.get('op') or ''} {c['threshold']})".replace("  ", " ") if c.get("threshold") is not None \
        else ""
    return f"{c['name']} {c['verdict']}: {c['value']}{unit}{limit}"


def _summary(results: dict[str, Any], out: Path) -> None:
    click.echo("")
    click.echo(f"{'scenario':32} {'verdict':8} {'time':>7}  notes")
    for sc in results["scenarios"]:
        bad = [c for c in sc["checks"] if c["verdict"] != "PASS"]
        note = "; ".join(_check_note(c) for c in bad[:3])
        if sc.get("error") and not bad:
            note = sc["error"]["message"]
        click.echo(f"{sc['name'][:32]:32} {sc['verdict']:8} {sc['duration_s']:6.1f}s  {note}")
    counts = results["counts"]
    click.echo(f"\n{results['verdict']}: {counts['PASS']} passed, {counts['FAIL']} failed, "
               f"{counts['ERROR']} errors")
    harness_side = [sc["name"] for sc in results["scenarios"]
                    if any(c.get("blame") == "harness" for c in sc["checks"])]
    if harness_side:
        click.echo(f"harness-side errors (not the target's fault) in: {', '.join(harness_side)}")
    again = [f"{sc['name']} (attempts kept in {', '.join(str(a.get('out_dir')) for a in sc['attempts'])})"
             for sc in results["scenarios"] if sc.get("attempts")]
    if again:
        click.echo(f"run again because the harness's host was overloaded: {'; '.join(again)}")
    click.echo(f"results: {out / 'results.json'}")
    click.echo(f"junit:   {out / 'junit.xml'}")
    from harness.report.report_sink import report_path

    click.echo(f"report:  {report_path(out)}")


@cli.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(paths: tuple[Path, ...]) -> None:
    """Check scenario, suite and load profile files without running them."""
    from harness.contracts.errors import ScenarioError
    from harness.contracts.yamlsrc import load_yaml
    from harness.scenarios import load_paths

    # a load profile ('harness load') has a shape and no steps; scenarios/*.yaml holds both kinds
    profiles = [p for p in paths if _is_load_profile(load_yaml(p, ScenarioError))]
    scenarios = load_paths([p for p in paths if p not in profiles])
    for sc in scenarios:
        click.echo(f"ok  {sc.name}  ({sc.path}, {len(sc.steps)} steps, parties: {', '.join(sc.parties)})")
    if profiles:
        from harness.load.profile import load_profile

        for p in profiles:
            prof = load_profile(p)
            click.echo(f"ok  {prof.name}  ({prof.path}, load profile: {len(prof.stages)} stages, "
                       f"{prof.timeline.duration_s:g} s, mode {prof.mode})")


def _is_load_profile(doc: Any) -> bool:
    return isinstance(doc, dict) and "shape" in doc and "steps" not in doc and "scenarios" not in doc


# ---- fixtures ---------------------------------------------------------------------------------------
@cli.group()
def fixtures() -> None:
    """Reference audio for the scenarios."""


@fixtures.command("build")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("audio_fixtures"),
              show_default=True)
def fixtures_build(out: Path) -> None:
    """(Re)build audio_fixtures/ from Debian's packages (asterisk sounds, espeak-ng) and synthetic signals."""
    from harness.audio.fixture_build import build_fixtures

    for p in build_fixtures(out):
        click.echo(str(p))


#: Commands that live with their subsystem: (module, attribute, command name). A module must import
#: its heavy dependencies (numpy, locust) inside the command, so that ``harness --help`` stays fast.
SUBSYSTEM_COMMANDS = (
    ("harness.audio.analyze_cli", "analyze_command", "analyze"),
    ("harness.load.load_cli", "load_command", "load"),
    ("harness.findings.findings_cli", "findings_group", "findings"),
    ("harness.findings.findings_cli", "retest_command", "retest"),
    ("harness.report.report_cli", "report_command", "report"),
)


def _register_subsystems() -> None:
    import importlib

    for module, attr, name in SUBSYSTEM_COMMANDS:  # a missing subsystem is a broken install: let it raise
        cli.add_command(getattr(importlib.import_module(module), attr), name)


_register_subsystems()


def _terminate_as_interrupt(signum: int, _frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C: parties are closed, a lab this run started is stopped, results kept."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: maps expected failures to one line on stderr and an exit code."""
    import signal

    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        cli.main(args=argv, prog_name="harness", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(ExitCode.USAGE if isinstance(exc, click.UsageError) else exc.exit_code)
    except HarnessError as exc:
        prefix = "lab error" if isinstance(exc, LabError) else "error"
        click.echo(f"{prefix}: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(ExitCode.INTERRUPTED)
    except Exception as exc:  # a bug in the harness: one line for the user, the traceback in a file
        import tempfile
        import traceback

        fd, path = tempfile.mkstemp(prefix="harness-internal-error-", suffix=".txt")
        with open(fd, "w") as fh:
            fh.write(traceback.format_exc())
        click.echo(f"internal error: {type(exc).__name__}: {exc} (a harness bug; traceback in {path})", err=True)
        sys.exit(ExitCode.HARNESS)
    sys.exit(ExitCode.OK)

