"""The report as a run sink: ``harness run`` (and anything else using the Runner) gets ``report.html``
in its run directory without asking.

The page is refreshed after every scenario (a long nightly can be watched as it goes) and written a
last time when the run ends, after the findings store has written ``findings.json``. It is always
rendered from the files the runner has just saved, never from the live ``RunResult``; finished
scenario sections are kept between refreshes, so each is drawn once.

The sink prints nothing. A report that cannot be written must not cost the run its results or its
exit code: the reason goes to ``report-error.txt`` in the run directory instead, and
:func:`report_path` points there.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from harness.contracts.errors import HarnessError
from harness.contracts.results import RunResult, ScenarioResult
from harness.contracts.settings import Settings

__all__ = ["ReportSink", "make_sink", "report_path"]

ERROR_FILE = "report-error.txt"


def report_path(run_dir: Path) -> Path:
    """Where the run's report is: ``report.html``, or ``report-error.txt`` when it could not be written."""
    html = run_dir / "report.html"
    err = run_dir / ERROR_FILE
    return err if err.exists() and not html.exists() else html


class ReportSink:
    """Writes ``<run dir>/report.html`` and ``report.json`` as the run goes."""

    def __init__(self, settings: Settings | None = None, *, last: int | None = None):
        from harness.report.render import DEFAULT_HISTORY

        self.settings = settings
        self.last = DEFAULT_HISTORY if last is None else last
        self.cache: dict[Any, Any] = {}
        self.error: str | None = None

    def run_started(self, run: RunResult) -> None:
        """Nothing to show before the first scenario has finished."""

    def scenario_finished(self, run: RunResult, result: ScenarioResult) -> None:
        self._write(Path(run.out_dir))

    def run_finished(self, run: RunResult) -> None:
        self._write(Path(run.out_dir))

    def _write(self, run_dir: Path) -> None:
        from harness.report.render import write_report

        try:
            write_report(run_dir, last=self.last, cache=self.cache)
        # the run's results are already saved; a report problem (a disk error, or odd stored data that
        # trips the renderer) is recorded beside them rather than turning a finished run into a crash
        except (HarnessError, OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            with contextlib.suppress(OSError):
                (run_dir / ERROR_FILE).write_text(f"the HTML report could not be written: {self.error}\n"
                                                  f"run 'harness report {run_dir}' to try again\n", encoding="utf-8")
            return
        self.error = None
        (run_dir / ERROR_FILE).unlink(missing_ok=True)


def make_sink(settings: Settings) -> ReportSink:
    return ReportSink(settings)
