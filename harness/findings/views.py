"""Plain-text views of findings for the terminal: one line per finding, and the full story of one."""

from __future__ import annotations

import time
from typing import Any

from harness.findings.compare import measured
from harness.findings.finding_model import Finding

__all__ = ["finding_detail", "finding_line", "list_header", "when"]


def when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts)) if ts else "-"


def list_header() -> str:
    return f"{'id':>4}  {'state':9} {'verdict':7} {'seen':>4}  {'last seen':16}  finding"


def finding_line(f: Finding) -> str:
    return (f"{f.id:>4}  {f.state.value:9} {f.verdict:7} {f.occurrences:>3}x  {when(f.last_seen):16}  "
            f"{f.key.scenario} / {f.key.check} @ {f.key.target}")


def finding_detail(f: Finding) -> list[str]:
    out = [f"finding #{f.id}: {f.title}",
           f"  state:     {f.state.value}",
           f"  scenario:  {f.key.scenario} ({f.scenario_file})",
           f"  target:    {f.key.target} ({f.target_file or 'the lab'})",
           f"  seen:      {f.occurrences} time(s), first {when(f.first_seen)} (run {f.first_run.name}), "
           f"last {when(f.last_seen)} (run {f.last_run.name})"]
    if f.diagnosis is not None:
        d = f.diagnosis
        out += ["", f"  probable cause ({d.confidence}, rule {d.rule}):", f"    {d.cause}",
                "  suggested fix:", f"    {d.fix}"]
        if d.facts:
            out += ["  facts:"] + [f"    - {x}" for x in d.facts]
    ev = f.evidence
    if ev.get("files"):
        out += ["", f"  evidence in {ev.get('run_dir', '')}:"] + [f"    {k:28} {v}" for k, v in ev["files"].items()]
    for party, lines in (ev.get("sip") or {}).items():
        out += [f"  SIP seen by {party} (last {len(lines)}):"] + [f"    {ln}" for ln in lines[-12:]]
    out += _metrics(ev.get("metrics") or {})
    if f.sightings:
        out += ["", "  measurements:"] + [f"    {when(s.at)}  run {s.run.name:28} {measured(_as_check(s))}"
                                          for s in f.sightings[-10:]]
    out += ["", "  history:"]
    for t in f.history:
        arrow = f"{t.from_state.value if t.from_state else '-'} -> {t.to_state.value}"
        out.append(f"    {when(t.at)}  {t.action.value:9} {arrow:22} {t.note}")
    return out


def _as_check(s: Any) -> dict[str, Any]:
    return {"value": s.value, "unit": s.unit, "verdict": s.verdict}


def _metrics(m: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for alias, per_party in (m.get("rtp") or {}).items():
        for party, st in (per_party or {}).items():
            if isinstance(st, dict):
                out.append(f"    RTP {alias}/{party}: rx {st.get('rx_packets')} pkts, lost {st.get('rx_lost')}, "
                           f"jitter {st.get('rx_jitter_ms')} ms, tx {st.get('tx_packets')} pkts to "
                           f"{st.get('remote_rtp')} ({st.get('codec')})")
    return ["", "  metrics:", *out] if out else []
