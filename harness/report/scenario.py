"""One scenario's section: checks, calls, RTP figures, the SIP ladder and each audio direction.

Files are taken from the scenario's own directory (``<run>/<out_dir>/``) by the names recorded in
``artifacts``: ``sip_log:<party>`` for the ladder, and for an ``audio`` entry keyed ``K`` (``<src>-><dst>``,
or ``<context>:<src>-><dst>`` for probes and PBX recordings) the received WAV ``received:audio:K``
(``received:K`` for a prefixed key, or from older runs). A name that is not a plain file name in that
directory is ignored, so a doctored results.json cannot pull other files into the report. The
reference audio is ``artifacts["reference:audio:K"]`` (or ``reference:K``) when the run recorded it;
when it did not, the report says the reference is not known (it renders from the stored results only,
never from today's scenario files).

Received WAVs are embedded as ``data:`` URIs up to :data:`EMBED_LIMIT` each and :data:`EMBED_BUDGET`
per report; beyond that they are linked relative to the report (the report still loads nothing).
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

from harness.report.audioviz import load_direction, spectrogram_img, waveform_svg
from harness.report.ladder import build_flow, ladder_html, party_log
from harness.report.markup import Markup, el, join
from harness.report.run_store import as_dict
from harness.report.widgets import badge, checks_table, fmt_clock, fmt_value

__all__ = ["EMBED_BUDGET", "EMBED_LIMIT", "EmbedBudget", "scenario_section"]

EMBED_LIMIT = 1_000_000  #: received WAVs up to this size are embedded; larger ones are linked
EMBED_BUDGET = 12_000_000  #: bytes of WAV embedded per report at most (a nightly has dozens of directions)


class EmbedBudget:
    """What is left of the report's budget for embedded audio (one per rendering)."""

    def __init__(self, total: int | None = None):
        self.left = EMBED_BUDGET if total is None else total

    def take(self, size: int) -> bool:
        if size > EMBED_LIMIT or size > self.left:
            return False
        self.left -= size
        return True


def _artifact(sdir: Path, name: Any) -> Path | None:
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        return None
    p = sdir / name
    return p if p.is_file() else None


def _received(sc: dict[str, Any], sdir: Path, key: str) -> Path | None:
    arts = as_dict(sc.get("artifacts"))
    for name in (f"received:audio:{key}", f"received:{key}"):
        if name in arts:
            return _artifact(sdir, arts[name])
    return None


def _reference(sc: dict[str, Any], sdir: Path, key: str) -> Path | None:
    """The reference the run recorded for direction ``key``; None when it recorded none (the report then
    says the reference is not known: it never looks at today's scenario file for an old run)."""
    arts = as_dict(sc.get("artifacts"))
    recorded = arts.get(f"reference:audio:{key}", arts.get(f"reference:{key}"))
    if isinstance(recorded, str) and recorded:
        p = Path(recorded) if Path(recorded).is_absolute() else sdir / recorded
        return p if p.is_file() else None
    return None


def _seconds(v: Any) -> str:
    return f"{v:.1f} s" if isinstance(v, int | float) else "—"


def _calls_table(sc: dict[str, Any]) -> Markup | None:
    calls = (sc.get("sip") or {}).get("calls") or {}
    if not calls:
        return None
    rows = []
    for alias, c in calls.items():
        if not isinstance(c, dict):
            continue
        rows.append(el("tr", el("td", str(alias)), el("td", f"{c.get('caller')} → {c.get('callee') or c.get('uri')}"),
                       el("td", str(c.get("final_code") or "—"), class_="num"),
                       el("td", fmt_value(c.get("invite_to_180_ms")), class_="num"),
                       el("td", fmt_value(c.get("setup_ms")), class_="num"),
                       el("td", fmt_value(c.get("duration_s")), class_="num"),
                       el("td", str(c.get("sip_call_id") or ""), class_="mono small")))
    head = ["call", "from → to", "final", "to 180 (ms)", "setup (ms)", "duration (s)", "Call-ID"]
    return el("table", el("thead", el("tr", *(el("th", h) for h in head))), el("tbody", rows), class_="t compact")


def _rtp_table(sc: dict[str, Any]) -> Markup | None:
    rtp = sc.get("rtp") or {}
    rows = []
    for alias, parties in rtp.items():
        if not isinstance(parties, dict):
            continue
        for party, st in parties.items():
            if not isinstance(st, dict):
                continue
            rx, lost = st.get("rx_packets") or 0, st.get("rx_lost") or 0
            loss = 100.0 * lost / (rx + lost) if isinstance(rx, int) and isinstance(lost, int) and rx + lost else None
            rows.append(el("tr", el("td", str(alias)), el("td", str(party)), el("td", str(st.get("codec") or "—")),
                           el("td", fmt_value(rx), class_="num"), el("td", fmt_value(lost), class_="num"),
                           el("td", "—" if loss is None else f"{loss:.2f} %", class_="num"),
                           el("td", fmt_value(st.get("rx_jitter_ms")), class_="num"),
                           el("td", fmt_value(st.get("rtt_ms")), class_="num"),
                           el("td", fmt_value(st.get("jb_avg_delay_ms")), class_="num")))
    if not rows:
        return None
    head = ["call", "receiver", "codec", "rx packets", "lost", "loss", "jitter (ms)", "RTT (ms)", "jitter buffer (ms)"]
    return el("table", el("thead", el("tr", *(el("th", h) for h in head))), el("tbody", rows), class_="t compact")


def _health(sc: dict[str, Any]) -> Markup | None:
    """The harness's own health while the scenario ran: each party's clocks and the host's pressure."""
    h = sc.get("health")
    if not isinstance(h, dict) or not h:
        return None
    rows = []
    for party, p in as_dict(h.get("parties")).items():
        if isinstance(p, dict):
            rows.append(el("tr", el("td", str(party)), el("td", str(p.get("scheduling") or "—")),
                           el("td", fmt_value(p.get("media_late_max_ms")), class_="num"),
                           el("td", fmt_value(p.get("wake_late_max_ms")), class_="num")))
    limits = as_dict(h.get("limits"))
    host = as_dict(h.get("host"))
    worst = as_dict(host.get("worst_1s"))
    pills = [("CPU pressure", worst.get("cpu_some_pct")), ("memory stalls (all tasks)", worst.get("memory_full_pct")),
             ("I/O stalls (all tasks)", worst.get("io_full_pct")), ("CPU steal", worst.get("steal_pct"))]
    bad = [w for w in h.get("windows") or [] if isinstance(w, dict) and w.get("overloaded")]
    parts: list[Markup | None] = [
        el("p", el("b", "Harness host overloaded" if h.get("overloaded") else "The harness kept time"),
           f": limits media clock {fmt_value(limits.get('max_media_late_ms'), 'ms')} late, wake-up "
           f"{fmt_value(limits.get('max_wake_late_ms'), 'ms')} late, memory stalls "
           f"{fmt_value(limits.get('max_memory_full_pct'), '%')}, steal {fmt_value(limits.get('max_steal_pct'), '%')}"
           + (" · the lab PBX shares this host" if h.get("shared_host") else ""),
           class_="errbox" if h.get("overloaded") else "muted small"),
        el("table", el("thead", el("tr", *(el("th", t) for t in ("party", "scheduling", "media clock late, max (ms)",
                                                                  "wake-up late, max (ms)")))),
           el("tbody", rows), class_="t compact") if rows else None,
        el("div", *(el("span", el("small", k + " (worst second)"), " ", fmt_value(v, "%")) for k, v in pills),
           class_="pills"),
    ]
    for w in bad:
        reasons = "; ".join(str(r) for r in w.get("reasons") or [])
        names = ", ".join(str(c) for c in (w["turned"] if isinstance(w.get("turned"), list) else w.get("checks") or []))
        parts.append(el("p", f"{w.get('step')}: {reasons} — so these checks are ERROR, not the PBX's: {names}",
                        class_="small"))
    if h.get("unmeasured"):
        parts.append(el("p", "Not measured: " + ", ".join(str(u) for u in h["unmeasured"]), class_="muted small"))
    return el("div", join(parts), class_="health")


def _player(wav: Path | None, report_dir: Path, budget: EmbedBudget) -> Markup:
    if wav is None:
        return el("p", "No received recording.", class_="muted")
    size = wav.stat().st_size
    if budget.take(size):
        src = "data:audio/wav;base64," + base64.b64encode(wav.read_bytes()).decode("ascii")
        return el("audio", controls=True, preload="none", src=src, title=f"received audio ({wav.name})")
    rel = os.path.relpath(wav, report_dir)
    return el("p", el("a", f"received audio: {wav.name}", href=Path(rel).as_posix()),
              f" ({size / 1e6:.1f} MB, not embedded: open it beside the report)", class_="small")


def _metric_pills(a: dict[str, Any]) -> Markup:
    em = as_dict(a.get("emodel"))
    items = [("MOS-LQO", a.get("mos"), ""), ("E-model MOS", em.get("mos"), ""), ("delay", a.get("delay_ms"), "ms"),
             ("level", a.get("level_dbov"), "dBov"), ("dropouts", len(a.get("dropouts") or []), ""),
             ("noise", a.get("noise_floor_dbov"), "dBov"), ("match", a.get("reference_match"), "")]
    return el("div", *(el("span", el("small", k), " ", fmt_value(v, u)) for k, v, u in items), class_="pills")


def _direction(sc: dict[str, Any], sdir: Path, key: str, a: dict[str, Any], report_dir: Path,
               budget: EmbedBudget) -> Markup:
    received = _received(sc, sdir, key)
    audio = load_direction(received, _reference(sc, sdir, key), a)
    context, _, direction = key.rpartition(":")
    src, _, dst = direction.partition("->")
    specs = spectrogram_img(audio)
    skipped = a.get("skipped") if isinstance(a.get("skipped"), dict) else {}
    return el(
        "div",
        el("h4", f"{src} → {dst} ", badge(a.get("verdict")),
           el("span", f" heard by {dst}" + (f" · {context}" if context else ""), class_="muted small")),
        _metric_pills(a),
        waveform_svg(audio, a, label_ref=f"reference ({src} played)", label_rec=f"received (at {dst})"),
        el("div", *(el("figure", img, el("figcaption", f"{name} spectrogram, 0–{audio.rate // 2} Hz"))
                    for name, img in specs), class_="specs") if specs else None,
        el("p", "; ".join(audio.problems), class_="muted small") if audio.problems else None,
        el("p", "Not measured: " + "; ".join(f"{k} ({v})" for k, v in skipped.items()), class_="muted small")
        if skipped else None,
        _player(received, report_dir, budget),
        class_="direction")


def scenario_section(sc: dict[str, Any], run_dir: Path, anchor: str, report_dir: Path,
                     target_addr: str = "", budget: EmbedBudget | None = None) -> Markup:
    """The section for one scenario record of results.json; ``anchor`` is its element id."""
    sdir = run_dir / str(sc.get("out_dir") or "")
    if not str(sc.get("out_dir") or "") or Path(str(sc.get("out_dir"))).name != str(sc.get("out_dir")):
        sdir = run_dir / "__missing__"
    err = sc.get("error") if isinstance(sc.get("error"), dict) else None
    checks = [c for c in sc.get("checks", []) if isinstance(c, dict)]
    arts = sc.get("artifacts") or {}
    logs = []
    for key, name in sorted(arts.items()):
        if str(key).startswith("sip_log:"):
            p = _artifact(sdir, name)
            if p is not None:
                logs.append(party_log(p, str(key).split(":", 1)[1]))
    audio = sc.get("audio") if isinstance(sc.get("audio"), dict) else {}
    bad = sum(1 for c in checks if c.get("verdict") != "PASS")
    parts: list[Markup | None] = [
        el("h2", badge(sc.get("verdict")), " ", str(sc.get("name"))),
        el("p", f"{sc.get('file') or ''} · started {fmt_clock(sc.get('started'))} · "
                f"{_seconds(sc.get('duration_s'))} · {len(checks)} checks, {bad} not passed", class_="muted"),
    ]
    if err:
        parts.append(el("div", el("b", f"Stopped at step {err.get('step')}"),
                        f" (line {err['line']})" if err.get("line") else "", ": ", str(err.get("message") or ""),
                        el("pre", str(err["log_tail"])) if err.get("log_tail") else None, class_="errbox"))
    for a in sc.get("attempts") or []:
        if isinstance(a, dict):
            why = "; ".join(str(r) for r in a.get("why_run_again") or []) or "its host was overloaded"
            parts.append(el("p", el("b", f"Run again: attempt {a.get('attempt')} was not judged"),
                            f" ({a.get('verdict')}, {_seconds(a.get('duration_s'))}): the harness's host was "
                            f"overloaded while it was measured ({why}). Its files are kept in {a.get('out_dir')}/; "
                            "the verdict above is the last attempt's.", class_="small"))
    if sc.get("skipped_steps"):
        parts.append(el("p", "Steps not run: " + ", ".join(str(s) for s in sc["skipped_steps"]), class_="muted"))
    parts += [el("h3", "Checks"), checks_table(checks, severity=any(
        isinstance(c.get("metrics"), dict) and c["metrics"].get("severity") for c in checks))]
    calls, rtp = _calls_table(sc), _rtp_table(sc)
    if calls is not None:
        parts += [el("h3", "Calls"), calls]
    if rtp is not None:
        parts += [el("h3", "RTP (receiving side)"), rtp]
    health = _health(sc)
    if health is not None:
        parts += [el("h3", "Harness health"), health]
    if logs:
        parts += [el("h3", "SIP ladder"), ladder_html(build_flow(logs, target_addr), anchor)]
    if audio:
        parts.append(el("h3", "Audio"))
        budget = budget or EmbedBudget()
        parts += [_direction(sc, sdir, str(k), a, report_dir, budget) for k, a in audio.items() if isinstance(a, dict)]
    return el("section", join(parts), id=anchor, class_="scenario",
              data_verdict=str(sc.get("verdict") or "ERROR"))
