"""The page shell: one self-contained HTML document with inline CSS and a small inline script.

The document carries a Content-Security-Policy that forbids every network load (``default-src
'none'``; images and media only from ``data:`` URIs) and lets only *our* script run, pinned by its
SHA-256 hash: even if run data ever slipped through unescaped, an injected ``<script>`` would not
run and nothing could be fetched.
"""

from __future__ import annotations

import base64
import hashlib

from harness.report.markup import Markup, el, raw_trusted, void

__all__ = ["CSP", "SCRIPT", "document"]

CSS = """
:root{--fg:#1f2328;--muted:#656d76;--line:#d0d7de;--bg:#fff;--soft:#f6f8fa;--pass:#1a7f37;--fail:#cf222e;
--error:#8250df;--warn:#9a6700}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);
background:var(--bg)}
header{display:flex;align-items:center;gap:18px;padding:10px 24px;background:#24292f;color:#fff;position:sticky;top:0;
z-index:5;flex-wrap:wrap}
header .title{font-weight:600;font-size:16px}
header nav a{color:#d0d7de;margin-right:14px;text-decoration:none}
header nav a:hover{color:#fff}
header .tools{margin-left:auto;font-size:12px}
header .tools button{background:#32383f;color:#fff;border:1px solid #57606a;border-radius:5px;padding:3px 8px;
cursor:pointer}
main{padding:16px 24px 48px;max-width:1280px;margin:0 auto}
h1{font-size:22px;margin:4px 0 2px}
h2{font-size:18px;margin:26px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h3{font-size:15px;margin:18px 0 6px}
h4{font-size:14px;margin:12px 0 4px}
a{color:#0969da}
.muted{color:var(--muted)}.small{font-size:12px}.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace}
.ok{color:var(--pass)}.warn{color:var(--warn)}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff}
.badge.pass{background:var(--pass)}.badge.fail{background:var(--fail)}.badge.error{background:var(--error)}
.state{display:inline-block;padding:0 7px;border-radius:9px;font-size:11px;color:#fff}
.hero{display:flex;align-items:baseline;gap:14px;flex-wrap:wrap}
.hero .big{font-size:30px;font-weight:700;padding:2px 16px;border-radius:8px;color:#fff}
.big.pass{background:var(--pass)}.big.fail{background:var(--fail)}.big.error{background:var(--error)}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(280px,1fr));gap:12px;margin-top:14px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;border-top:5px solid var(--muted);
background:var(--bg)}
.card.pass{border-top-color:var(--pass)}.card.fail{border-top-color:var(--fail)}
.card.error{border-top-color:var(--error)}
.card .q{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.card .a{font-size:17px;font-weight:600;margin:3px 0 6px}
.card p{margin:4px 0}
ul.changes{margin:4px 0;padding-left:18px}
.trend{display:inline-block;min-width:54px;font-size:11px;font-weight:600;text-transform:uppercase}
.trend.worse{color:var(--fail)}.trend.better,.trend.stable{color:var(--pass)}.trend.unknown{color:var(--muted)}
.charts{display:flex;flex-wrap:wrap;gap:14px}
.cols{display:flex;flex-wrap:wrap;gap:24px}.cols>div{flex:1 1 420px}
svg.chart{background:var(--soft);border:1px solid var(--line);border-radius:6px;display:block}
figure.chartfig{margin:0}figure.chartfig figcaption{font-size:12px;font-weight:600;color:#424a53;margin:0 0 3px}
svg .grid{stroke:#d8dee4;stroke-width:1}
svg .thr{stroke:var(--fail);stroke-width:1.5;stroke-dasharray:6 4}
svg .ax{font-size:10px;fill:var(--muted)}
svg .leg{font-size:10px;font-weight:600}
svg .barl{font-size:10px;fill:#fff;font-weight:600}
svg rect.last{stroke:#24292f;stroke-width:1.5}
table.t{border-collapse:collapse;width:100%;margin:4px 0 8px}
table.t th{text-align:left;font-size:12px;color:var(--muted);border-bottom:2px solid var(--line);padding:4px 8px}
table.t td{border-bottom:1px solid #eaeef2;padding:4px 8px;vertical-align:top}
table.compact td{padding:3px 8px}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.detail{color:#424a53;font-size:13px;max-width:560px;overflow-wrap:anywhere}
td.bad{color:var(--fail);font-weight:600}td.warn{color:var(--warn);font-weight:600}
tr.row-fail td{background:#fff5f5}tr.row-error td{background:#fbf7ff}
body.only-failures tr.row-pass{display:none}
section.scenario{margin-top:34px}
.errbox{border:1px solid var(--fail);background:#fff5f5;border-radius:6px;padding:8px 12px}
.errbox pre{margin:6px 0 0;max-height:220px;overflow:auto}
pre{white-space:pre-wrap;overflow-wrap:anywhere;font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace;
background:var(--soft);padding:8px;border-radius:6px}
.ladder-wrap{overflow-x:auto;border:1px solid var(--line);border-radius:6px;background:#fff}
svg.ladder text{font:11px ui-monospace,"DejaVu Sans Mono",monospace}
svg.ladder .lh{font-weight:700;text-anchor:middle;font-family:system-ui,sans-serif;font-size:12px}
svg.ladder .ls{fill:var(--muted);text-anchor:middle;font-size:10px}
svg.ladder .life{stroke:#afb8c1;stroke-dasharray:3 3}
svg.ladder .arr{stroke-width:1.6}
svg.ladder .ll{text-anchor:middle}
svg.ladder .lt{fill:var(--muted);font-size:10px}
svg.ladder .gap{fill:var(--muted);font-size:10px;font-style:italic}
svg.ladder a.msg:hover text.ll{font-weight:700;text-decoration:underline}
details.sipmsg summary{font:12px ui-monospace,"DejaVu Sans Mono",monospace;cursor:pointer}
details.sipmsg:target,details.sipmsg.hl{outline:2px solid #0969da;border-radius:4px}
.msglist>summary{cursor:pointer;color:#0969da}
.direction{border:1px solid var(--line);border-radius:8px;padding:6px 12px 10px;margin:10px 0}
.pills{display:flex;flex-wrap:wrap;gap:6px;margin:4px 0 8px}
.pills span{background:var(--soft);border:1px solid var(--line);border-radius:12px;padding:1px 9px;font-size:12px}
.pills small{color:var(--muted)}
svg.wave .lane{fill:#f6f8fa;stroke:#d0d7de}
svg.wave .wf0{fill:#6e7781}svg.wave .wf1{fill:#0969da}
svg.wave .drop{fill:rgba(207,34,46,.28);stroke:var(--fail);stroke-width:1}
svg.wave .jump{stroke:#bf8700;stroke-width:1.5;stroke-dasharray:3 2}
svg.wave .lanel{font-size:10px;fill:#24292f;font-weight:600}
svg.wave .na{font-size:11px;fill:var(--muted);text-anchor:middle}
svg.wave .tick{stroke:#8c959f}svg.wave .tickl{font-size:9px;fill:var(--muted)}
.specs{display:flex;flex-direction:column;gap:4px}
figure{margin:4px 0}figcaption{font-size:11px;color:var(--muted)}
img.spec{display:block;border-radius:3px;image-rendering:auto;max-width:100%;height:auto}
audio{width:380px;max-width:100%;margin-top:6px}
ol.timeline{margin:6px 0;padding-left:20px}ol.timeline .note{color:#424a53;font-size:12px}
.problems{border:1px solid var(--warn);background:#fff8c5;border-radius:6px;padding:6px 12px}
footer{color:var(--muted);font-size:12px;margin-top:40px}
@media print{header{position:static}details{display:block}}
"""

#: Our whole script. It only works on the page itself: open the message an arrow points at, filter
#: the checks tables to failures, open or close every collapsible part.
SCRIPT = """
document.addEventListener('click',function(ev){
  var a=ev.target.closest&&ev.target.closest('a.msg');
  if(a){var id=a.getAttribute('data-msg');var d=document.getElementById(id);
    if(d){ev.preventDefault();var p=d.parentElement.closest('details');if(p){p.open=true;}d.open=true;
      document.querySelectorAll('details.hl').forEach(function(x){x.classList.remove('hl');});
      d.classList.add('hl');d.scrollIntoView({block:'center'});}}
  var b=ev.target.closest&&ev.target.closest('button[data-act]');
  if(b){var act=b.getAttribute('data-act');
    if(act==='failures'){document.body.classList.toggle('only-failures');
      b.textContent=document.body.classList.contains('only-failures')?'Show all checks':'Only failures';}
    if(act==='expand'||act==='collapse'){document.querySelectorAll('details').forEach(function(x){
      x.open=(act==='expand');});}}
});
"""


def _hash(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


CSP = ("default-src 'none'; img-src data:; media-src data:; style-src 'unsafe-inline'; "
       f"script-src 'sha256-{_hash(SCRIPT)}'; base-uri 'none'; form-action 'none'")


def document(title: str, nav: list[tuple[str, str]], body: Markup, footer: str) -> Markup:
    """The whole HTML document around ``body``; ``nav`` is (label, element id) pairs."""
    head = el("head",
              void("meta", charset="utf-8"),
              void("meta", http_equiv="Content-Security-Policy", content=CSP),
              void("meta", name="viewport", content="width=device-width, initial-scale=1"),
              void("meta", name="color-scheme", content="light"),
              el("title", title),
              el("style", raw_trusted(CSS)))
    header = el("header",
                el("span", title, class_="title"),
                el("nav", *(el("a", label, href=f"#{target}") for label, target in nav)),
                el("span", el("button", "Only failures", type="button", data_act="failures"), " ",
                   el("button", "Expand all", type="button", data_act="expand"), " ",
                   el("button", "Collapse all", type="button", data_act="collapse"), class_="tools"))
    return Markup("<!DOCTYPE html>\n" + el(
        "html", head,
        el("body", header, el("main", body, el("footer", footer)), el("script", raw_trusted(SCRIPT))),
        lang="en") + "\n")

