"""The report of a real lab run, opened in headless Chromium the way a reader opens it: it loads with no
console error and no network request, the key parts are there, our script works under the page's CSP,
and SIP text that a peer controls stays text.

Set HARNESS_REPORT_SCREENSHOT=docs/report-front.png to keep the front page screenshot it takes.
"""

from __future__ import annotations

import copy
import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from harness.contracts.errors import BrowserError
from harness.lab import LabStack
from harness.report.browser import Browser, find_chromium
from harness.report.render import write_report
from harness.report.report_sink import ReportSink
from harness.scenarios import load_paths
from harness.scenarios.runner import Runner

from .conftest import write_scenario

DAY = 86400.0
EVIL_UA = '<img src=x onerror="window.__pwned=1">'
EVIL_NAME = '"<script>window.__pwned=2</script>"'


def _chromium() -> None:
    try:
        find_chromium()
    except BrowserError as exc:
        pytest.fail(str(exc))


def _history(reports: Path, current: Path, nights: int) -> None:
    """Earlier nights, derived from tonight's stored results: all passing, with the usual spread of figures."""
    tonight = json.loads((current / "results.json").read_text())
    rng = random.Random(7)
    for k in range(nights, 0, -1):
        r = copy.deepcopy(tonight)
        r["run_id"] = f"run-night-{k:02d}"
        r["started"] = tonight["started"] - k * DAY
        for sc in r["scenarios"]:
            for c in sc["checks"]:
                c["verdict"] = "PASS"
            for a in sc["audio"].values():
                if isinstance(a.get("mos"), int | float):
                    a["mos"] = round(min(4.4, a["mos"] + 0.15 + rng.uniform(-0.05, 0.05)), 2)
            for call in sc["sip"]["calls"].values():
                if isinstance(call.get("setup_ms"), int | float):
                    call["setup_ms"] = round(call["setup_ms"] * rng.uniform(0.8, 1.3), 2)
            sc["verdict"] = "PASS"
        if k == 4:  # one bad night a while ago
            sc = r["scenarios"][0]
            sc["verdict"] = sc["checks"][-1]["verdict"] = "FAIL"
        r["verdict"] = "FAIL" if any(s["verdict"] != "PASS" for s in r["scenarios"]) else "PASS"
        r["counts"] = {v: sum(1 for s in r["scenarios"] if s["verdict"] == v) for v in ("PASS", "FAIL", "ERROR")}
        d = reports / r["run_id"]
        d.mkdir()
        (d / "results.json").write_text(json.dumps(r))


def _findings(started: float) -> dict[str, Any]:
    """A findings.json in the findings store's format (harness-findings/1)."""
    def hist(*steps: tuple[float, str, str | None, str, str]) -> list[dict[str, Any]]:
        return [{"at": started - days * DAY, "action": a, "from": f, "to": t, "note": n} for days, a, f, t, n in steps]

    return {"format": "harness-findings/1", "findings": [
        {"id": 12, "state": "open", "this_run": "found", "scenario": "connect-agent-mute",
         "check": "audio:agent->caller:audio_present", "target": "lab", "first_seen": started, "last_seen": started,
         "occurrences": 1, "title": "audio:agent->caller:audio_present FAIL",
         "diagnosis": {"cause": "No audio from the agent: RTP arrived but carried silence.",
                       "fix": "Check the agent phone's microphone and its codec settings."},
         "history": hist((0, "found", None, "open", "found by the nightly run"))},
        {"id": 9, "state": "analysed", "scenario": "connect", "check": "setup_time:main", "target": "lab",
         "first_seen": started - 9 * DAY, "last_seen": started - 2 * DAY, "occurrences": 3,
         "diagnosis": {"cause": "Slow DNS lookups on the PBX.", "fix": "Cache DNS on the PBX host."},
         "history": hist((9, "found", None, "open", ""), (8, "noted", "open", "analysed", "DNS timeouts"))},
        {"id": 7, "state": "fixed", "scenario": "connect", "check": "audio:caller->agent:dropouts", "target": "lab",
         "first_seen": started - 35 * DAY, "last_seen": started - 20 * DAY, "occurrences": 6,
         "history": hist((35, "found", None, "open", ""), (21, "fixed", "open", "fixed", "switch replaced")),
         "metrics": {"before": {"dropouts": 4, "mos": 3.1}, "after": {"dropouts": 0, "mos": 4.0}}},
        {"id": 3, "state": "verified", "scenario": "connect", "check": "register:caller", "target": "lab",
         "first_seen": started - 40 * DAY, "last_seen": started - 39 * DAY, "occurrences": 1},
    ]}


def _inject(sip_log: Path) -> None:
    """A message as a hostile peer would send it, appended to the stored log like pjsua writes it."""
    lines = ["OPTIONS sip:1001@127.0.0.1 SIP/2.0", f"From: {EVIL_NAME} <sip:evil@lab.local>;tag=1",
             "To: <sip:1001@lab.local>", "Call-ID: evil-1", "CSeq: 1 OPTIONS", f"User-Agent: {EVIL_UA}",
             "Content-Length: 0"]
    with sip_log.open("a") as fh:
        fh.write("23:59:59.000           pjsua_core.c  .RX 300 bytes Request msg OPTIONS/cseq=1 (rdata0x1) from UDP "
                 "127.0.0.9:5099:\n" + "\r\n".join(lines) + "\r\n\r\n--end msg--\n")


KEY_ELEMENTS = """(function(){
  var q=function(s){return document.querySelectorAll(s);};
  return {verdict: q('.hero .big')[0].textContent,
          cards: Array.prototype.map.call(q('.card .q'), function(e){return e.textContent;}),
          charts: q('svg.chart').length,
          scenarios: q('section.scenario').length,
          arrows: q('svg.ladder a.msg').length,
          labels: Array.prototype.map.call(q('svg.ladder text.ll'), function(e){return e.textContent;}).join('|'),
          spectrograms: Array.prototype.filter.call(q('img.spec'), function(i){return i.naturalWidth > 0;}).length,
          players: Array.prototype.filter.call(q('audio'), function(a){return a.src.indexOf('data:audio/wav')===0;})
                   .length,
          waveforms: q('svg.wave path').length,
          findings: q('#findings > table.findings > tbody > tr').length,
          scripts: document.scripts.length,
          pwned: typeof window.__pwned,
          injectedImg: q('img[src="x"]').length,
          evilText: document.body.textContent.indexOf('<img src=x onerror') >= 0};
})()"""


def test_report_of_a_real_run_in_headless_chromium(lab: LabStack, tmp_path: Path) -> None:
    _chromium()
    good = write_scenario(tmp_path, """
        name: connect
        parties:
          caller: {account: caller, play: FIX/speech/caller.wav}
          agent: {account: agent1, play: FIX/speech/agent.wav, answer: auto}
        steps:
          - call: {from: caller, to: agent, as: main}
          - talk: 6
          - hangup: {party: caller, call: main}
          - expect_setup: {call: main}
          - expect_audio: {call: main}
        """, "connect.yaml")
    mute = write_scenario(tmp_path, """
        name: connect-agent-mute
        parties:
          caller: {account: caller, play: FIX/speech/caller.wav}
          agent: {account: agent1, play: FIX/synthetic/silence.wav, reference: FIX/speech/agent.wav, answer: auto}
        steps:
          - call: {from: caller, to: agent, as: main}
          - talk: 5
          - hangup: {party: caller, call: main}
          - expect_setup: {call: main}
          - expect_audio: {call: main}
        """, "mute.yaml")
    reports = tmp_path / "reports"
    run_dir = reports / "run-tonight"
    sink = ReportSink()
    Runner(lab.target, run_dir, lab=lab, log=lambda _m: None, sinks=[sink]).run_all(load_paths([good, mute]))
    assert sink.error is None
    assert (run_dir / "report.html").is_file()  # written by the sink, as every run does

    tonight = json.loads((run_dir / "results.json").read_text())
    _history(reports, run_dir, nights=9)
    (run_dir / "findings.json").write_text(json.dumps(_findings(tonight["started"])))
    _inject(run_dir / "connect" / "caller.sip.log")
    report = write_report(run_dir)

    with Browser() as browser:
        page = browser.open(report.resolve().as_uri())
        assert page.console_errors == []
        assert page.external_requests() == []
        got = browser.evaluate(KEY_ELEMENTS)
        assert got["verdict"] in ("FAILED", "ERROR")  # the mute agent fails
        assert got["cards"] == ["Did tonight pass?", "What broke since the previous run?", "What is still open?",
                                "Is quality trending down?"]
        assert got["charts"] >= 4  # pass rate, MOS, setup time, findings by age
        assert got["scenarios"] == 2
        assert got["arrows"] >= 8 and "INVITE (SDP)" in got["labels"] and "BYE" in got["labels"]
        assert got["spectrograms"] == 8  # 2 scenarios x 2 directions x (reference, received)
        assert got["players"] == 4 and got["waveforms"] == 8
        assert got["findings"] == 3  # open ones; the verified one is folded away
        assert got["scripts"] == 1 and got["pwned"] == "undefined" and got["injectedImg"] == 0
        assert got["evilText"] is True  # shown as text
        # our script runs under the CSP: an arrow opens its message, the filter hides passing checks
        opened = browser.evaluate("""(function(){var a=document.querySelector('svg.ladder a.msg');
            a.dispatchEvent(new MouseEvent('click',{bubbles:true}));
            return document.getElementById(a.getAttribute('data-msg')).open;})()""")
        assert opened is True
        browser.evaluate("document.querySelector('button[data-act=failures]').click()")
        assert browser.evaluate("document.body.classList.contains('only-failures')") is True
        browser.evaluate("document.querySelector('button[data-act=failures]').click()")
        shot = browser.screenshot(tmp_path / "front.png", width=1280, height=1400)
    assert 20_000 < shot.stat().st_size < 300_000
    keep = os.environ.get("HARNESS_REPORT_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)
    data = json.loads((run_dir / "report.json").read_text())
    assert data["answers"]["broke_since_previous"] >= 1
    assert data["answers"]["still_open_findings"] == 3
