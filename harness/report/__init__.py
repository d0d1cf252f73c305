"""Reports rendered from stored results (``results.json``, ``findings.json``, ``load.json`` and the
scenario directories), never from live objects.

* ``report.html``: one self-contained page for managers and QA (front page answers, trends, findings,
  load, and per scenario its checks, SIP ladder, waveforms, spectrograms and audio players);
* ``report.json``: the front page's answers as data for other tools (:mod:`harness.report.digest`);
* ``junit.xml``: for CI (:mod:`harness.report.junit`).

::

    from harness.report import write_report
    path = write_report(Path("reports/run-20240101-020000"))   # report.html + report.json, in the run dir

Every run writes its report through :mod:`harness.report.report_sink`; ``harness report`` renders any
stored run again (:mod:`harness.report.report_cli`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.report.junit import junit_xml, write_junit
    from harness.report.render import Report, render_report, write_report

__all__ = ["Report", "junit_xml", "render_report", "write_junit", "write_report"]

_LAZY = {"junit_xml": "harness.report.junit", "write_junit": "harness.report.junit",
         "Report": "harness.report.render", "render_report": "harness.report.render",
         "write_report": "harness.report.render"}


def __getattr__(name: str) -> Any:
    # the renderer pulls in numpy: import it on first use, so that `harness --help` (which imports
    # harness.report.report_cli) and the runner (which imports harness.report.junit) stay light
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'harness.report' has no attribute {name!r}")
