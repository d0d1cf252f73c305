"""A SIP ladder diagram (like sngrep's call flow) from the parties' stored message logs.

A party's log (``<party>.sip.log``) is read by :func:`harness.contracts.siplog.read_messages`, the one
reader of pjsua's message log, which masks credentials; :func:`party_log` adds what the ladder needs:
the party's own address (:func:`harness.contracts.siplog.published_address`), what each message is
(method or status, SDP, Call-ID, User-Agent/Server, through :mod:`harness.contracts.sipmsg`), and time
across midnight (the log has the time of day only, so each file is unwrapped on its own). The text
stays untrusted (it is whatever the PBX sent) and is escaped where it is shown.

Each party logs what it sent and received; merged by time, they give the whole flow through the
PBX: ``caller -> PBX -> agent``. A message between two parties of the scenario is in both logs
(TX at one, RX at the other); only the sending side is kept. Columns: the first party, then every
non-party address (the PBX, or several for a B2BUA chain), then the other parties.

The diagram is one SVG; each arrow links to the full message (masked, escaped) listed below it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.contracts.siplog import published_address, read_messages
from harness.contracts.sipmsg import SipParseError, parse
from harness.report.markup import Markup, el, join

__all__ = ["Arrow", "Flow", "SipEvent", "SipLog", "build_flow", "ladder_html", "party_log"]

MAX_MESSAGES = 300  #: beyond this the diagram is cut (a report, not a packet capture)
COL_W, ROW_H, LEFT, TOP = 190, 24, 118, 46
CHAR_PX = 6.7  #: width of one 11 px monospace character
GAP_S = 1.0  #: a pause at least this long between two messages is marked in the diagram
CALL_COLOURS = ("#1f6feb", "#8250df", "#bf3989", "#0a7f6f", "#b35900", "#57606a")


@dataclass(frozen=True)
class SipEvent:
    """One SIP message as one party sent (TX) or received (RX) it."""

    t: float  #: seconds since midnight (unwrapped across midnight within one file)
    clock: str  #: the log's time of day, ``HH:MM:SS.mmm``
    party: str
    direction: str  #: ``TX`` or ``RX``
    local: str  #: the party's own address, when the log says it ("" otherwise)
    remote: str  #: the other end's address as pjsua names it, e.g. ``127.0.0.1:5060``
    transport: str
    label: str  #: ``INVITE``, ``200 OK`` ...
    method: str  #: request method, or the CSeq method of a response
    status: int
    call_id: str
    has_sdp: bool
    agent: str  #: User-Agent or Server header ("" when none)
    text: str  #: the whole message, credentials masked


@dataclass
class SipLog:
    party: str
    local: str
    events: list[SipEvent]


def _describe(text: str) -> tuple[str, str, int, str, bool, str]:
    """label, method, status, call id, has SDP, user agent; tolerant of whatever arrived."""
    raw = text.replace("\r\n", "\n")
    try:
        msg = parse(raw.encode("utf-8", "replace"))
    except SipParseError:
        first = raw.split("\n", 1)[0].strip()
        return first[:60] or "(unreadable)", "", 0, "", False, ""
    has_sdp = "application/sdp" in msg.header("Content-Type").lower() and bool(msg.body.strip())
    agent = msg.header("User-Agent") or msg.header("Server")
    if msg.is_response:
        return f"{msg.status} {msg.reason}".strip(), msg.cseq[1], msg.status, msg.call_id, has_sdp, agent
    return msg.method, msg.method, 0, msg.call_id, has_sdp, agent


def party_log(path: Path, party: str) -> SipLog:
    """The messages of one ``<party>.sip.log`` as ladder events (a missing file gives none)."""
    local = published_address(path)
    events: list[SipEvent] = []
    offset, last_t = 0.0, -1.0
    for entry in read_messages(path, party):
        t = entry.seconds + offset
        if last_t - t > 43200:  # the clock went back by more than 12 h: midnight passed
            offset += 86400.0
            t += 86400.0
        last_t = t
        transport, _, remote = entry.peer.partition(" ")
        label, method, status, call_id, has_sdp, agent = _describe(entry.text)
        events.append(SipEvent(t=t, clock=entry.clock, party=party, direction=entry.direction, local=local,
                               remote=remote.strip(), transport=transport, label=label, method=method,
                               status=status, call_id=call_id, has_sdp=has_sdp, agent=agent, text=entry.text))
    return SipLog(party=party, local=local, events=events)


@dataclass(frozen=True)
class Arrow:
    src: str  #: column id
    dst: str
    event: SipEvent


@dataclass
class Flow:
    nodes: list[str]  #: column ids: party names and remote addresses
    titles: dict[str, list[str]]  #: column id -> heading lines (role, address, user agent)
    arrows: list[Arrow]
    total: int  #: messages before the cut to MAX_MESSAGES


def build_flow(logs: Iterable[SipLog], target: str = "") -> Flow:
    """Merge the parties' logs; ``target`` (``host:port``) names the PBX column when it matches."""
    logs = list(logs)
    by_addr = {lg.local: lg.party for lg in logs if lg.local}
    sent = {(e.party, e.remote, e.call_id, e.label) for lg in logs for e in lg.events if e.direction == "TX"}
    own = {lg.party: lg.local for lg in logs}
    events: list[SipEvent] = []
    for lg in logs:
        for e in lg.events:
            sender = by_addr.get(e.remote)
            if e.direction == "RX" and sender not in (None, e.party) and \
                    (sender, own[e.party], e.call_id, e.label) in sent:
                continue  # from another party, which logged it as sent already
            events.append(e)
    events.sort(key=lambda e: e.t)
    total = len(events)

    def node(addr: str) -> str:
        return by_addr.get(addr, addr)

    arrows = [Arrow(e.party, node(e.remote), e) if e.direction == "TX" else Arrow(node(e.remote), e.party, e)
              for e in events[:MAX_MESSAGES]]
    parties = [lg.party for lg in sorted(logs, key=lambda lg: lg.events[0].t if lg.events else float("inf"))]
    remotes: list[str] = []
    for a in arrows:
        for n in (a.src, a.dst):
            if n not in parties and n not in remotes:
                remotes.append(n)
    nodes = parties[:1] + remotes + parties[1:]
    agents: dict[str, str] = {}
    for a in arrows:
        if a.event.agent:
            agents.setdefault(a.src, a.event.agent)
    locals_ = {lg.party: lg.local for lg in logs}
    titles: dict[str, list[str]] = {}
    for n in nodes:
        if n in parties:
            head, addr = n, locals_.get(n, "")
        else:
            head, addr = ("PBX (target)" if target and n.endswith(target) else "PBX"), n
        titles[n] = [head, addr] + ([agents[n]] if n in agents else [])
    return Flow(nodes=nodes, titles=titles, arrows=arrows, total=total)


def _fit(text: str, suffix: str, span_px: int) -> str:
    """``text`` + ``suffix`` cut with an ellipsis to what fits over ``span_px`` (11 px monospace)."""
    room = max(8, int(span_px / CHAR_PX) - 1)
    full = text + suffix
    if len(full) <= room:
        return full
    return text[: max(1, room - len(suffix) - 1)] + "…" + suffix


def _colour(call_ids: list[str], cid: str) -> str:
    if cid not in call_ids:
        call_ids.append(cid)
    return CALL_COLOURS[call_ids.index(cid) % len(CALL_COLOURS)]


def ladder_html(flow: Flow, anchor: str) -> Markup:
    """The SVG diagram plus the message list; ``anchor`` prefixes element ids (unique per scenario)."""
    if not flow.arrows:
        return el("p", "No SIP messages were logged for this scenario.", class_="muted")
    xs = {n: LEFT + COL_W * i + COL_W // 2 for i, n in enumerate(flow.nodes)}
    width = LEFT + COL_W * len(flow.nodes) + 10
    t0 = flow.arrows[0].event.t
    call_ids: list[str] = []
    rows: list[Markup] = []
    y = TOP
    prev = t0
    for i, arrow in enumerate(flow.arrows):
        e = arrow.event
        if e.t - prev >= GAP_S:  # a pause (talk time): say so instead of stretching the diagram
            rows.append(el("text", f"⋮ {e.t - prev:.2f} s later", x=6, y=y + 10, class_="gap"))
            y += ROW_H // 2 + 4
        prev = e.t
        y += ROW_H
        yy = y - ROW_H // 2 + 4
        a, b = xs[arrow.src], xs[arrow.dst]
        colour = _colour(call_ids, e.call_id)
        sgn = 1 if b >= a else -1
        tip = f"{b - 7 * sgn},{yy - 4} {b},{yy} {b - 7 * sgn},{yy + 4}"
        label = _fit(e.label, " (SDP)" if e.has_sdp else "", abs(b - a))
        rows.append(el(
            "a",
            el("title", f"{e.clock} {arrow.src} → {arrow.dst}: {e.label} (Call-ID {e.call_id})"),
            el("text", f"+{(e.t - t0):.3f}s", x=6, y=yy + 3, class_="lt"),
            el("line", x1=a, y1=yy, x2=b, y2=yy, stroke=colour, class_="arr"),
            el("polygon", points=tip, fill=colour),
            el("text", label, x=(a + b) / 2, y=yy - 4, fill=colour, class_="ll"),
            href=f"#{anchor}-m{i}", data_msg=f"{anchor}-m{i}", class_="msg"))
    height = y + 16
    parts: list[Markup] = []
    for n, x in xs.items():
        lines = flow.titles[n]
        parts.append(el("text", _fit(lines[0], "", COL_W), x=x, y=14, class_="lh"))
        for k, sub in enumerate(lines[1:3]):
            parts.append(el("text", _fit(sub, "", COL_W), x=x, y=27 + 11 * k, class_="ls"))
        parts.append(el("line", x1=x, y1=TOP - 6, x2=x, y2=height - 6, class_="life"))
    parts += rows
    svg = el("svg", *parts, xmlns="http://www.w3.org/2000/svg", width=width, height=height,
             viewBox=f"0 0 {width} {height}", class_="ladder", role="img",
             aria_label="SIP ladder diagram")
    items = []
    for i, arrow in enumerate(flow.arrows):
        e = arrow.event
        items.append(el("details", el("summary", el("span", f"#{i + 1}", class_="muted"), " ", e.clock, " ",
                                       el("b", arrow.src), " → ", el("b", arrow.dst), " ", e.label,
                                       el("span", f"  Call-ID {e.call_id}", class_="muted")),
                        el("pre", e.text), id=f"{anchor}-m{i}", class_="sipmsg"))
    note = None
    if flow.total > len(flow.arrows):
        note = el("p", f"First {len(flow.arrows)} of {flow.total} messages shown; the rest are in the party logs.",
                  class_="muted")
    legend = el("p", "Arrows are coloured by Call-ID; click one for the full message (credentials masked).",
                class_="muted small")
    return join([el("div", svg, class_="ladder-wrap"), legend, note,
                 el("details", el("summary", f"All {len(flow.arrows)} messages"), *items, class_="msglist")])
