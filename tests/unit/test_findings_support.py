"""Builders shared by the findings tests: literal pjsua SIP logs, results.json scenario entries, runs.

No tests here; the test modules import these so that each test reads as the situation it sets up.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from harness.contracts.checkname import CheckName
from harness.contracts.results import RunResult, ScenarioResult
from harness.contracts.verdict import CheckResult, Verdict

LAB_TARGET: dict[str, Any] = {
    "name": "lab", "host": "127.0.0.1", "port": 35060, "transport": "udp", "domain": "lab.local",
    "accounts": [{"name": "caller", "username": "1001"}, {"name": "agent1", "username": "2001"}],
    "numbers": {}, "source": "<lab>", "is_lab": True}


def sdp(addr: str, port: int, direction: str = "sendrecv") -> str:
    return textwrap.dedent(f"""\
        v=0
        o=- 1 2 IN IP4 {addr}
        s=pjmedia
        c=IN IP4 {addr}
        t=0 0
        m=audio {port} RTP/AVP 0 101
        a=rtpmap:0 PCMU/8000
        a=rtpmap:101 telephone-event/8000
        a={direction}
        """)


def request(method: str, uri: str, call_id: str, cseq: int, body: str = "", extra: str = "") -> str:
    head = (f"{method} {uri} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{cseq}\n"
            f"From: <sip:1001@lab.local>;tag=a\nTo: <sip:2001@lab.local>\nCall-ID: {call_id}\n"
            f"CSeq: {cseq} {method}\n{extra}")
    ctype = "Content-Type: application/sdp\n" if body else ""
    return f"{head}{ctype}Content-Length: {len(body)}\n\n{body}"


def response(code: int, reason: str, method: str, call_id: str, cseq: int, body: str = "", extra: str = "",
             ctype: str = "application/sdp") -> str:
    head = (f"SIP/2.0 {code} {reason}\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{cseq}\n"
            f"From: <sip:1001@lab.local>;tag=a\nTo: <sip:2001@lab.local>;tag=b\nCall-ID: {call_id}\n"
            f"CSeq: {cseq} {method}\n{extra}")
    ct = f"Content-Type: {ctype}\n" if body else ""
    return f"{head}{ct}Content-Length: {len(body)}\n\n{body}"


def sip_log(*messages: tuple[str, str], peer: str = "127.0.0.1:35060") -> str:
    """A pjsua level-4 log holding ``messages``: (TX|RX, message text) in order."""
    out = ["08:00:00.000         sip_endpoint.c  .Module \"mod-ua\" registered"]
    for i, (direction, text) in enumerate(messages):
        first = text.splitlines()[0]
        kind = "Response" if first.startswith("SIP/2.0") else "Request"
        label = first.split()[1] if kind == "Response" else first.split()[0]
        way = "to" if direction == "TX" else "from"
        out.append(f"08:00:{i:02d}.000           pjsua_core.c  ...{direction} {len(text)} bytes {kind} msg "
                   f"{label}/cseq=1 (tdta0x1) {way} UDP {peer}:")
        out.append(text.rstrip("\n"))
        out.append("")
        out.append("--end msg--")
    return "\n".join(out) + "\n"


def check(cid: CheckName, verdict: str, value: Any, threshold: Any = None, unit: str = "", op: str = "",
          detail: str = "", metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """A results.json check: its name text and its typed identity (``id``), as the runner writes them."""
    return {"name": str(cid), "id": cid.to_dict(), "verdict": verdict, "value": value, "threshold": threshold,
            "unit": unit, "op": op, "detail": detail, "metrics": metrics or {}}


def scenario(checks: list[dict[str, Any]], *, calls: dict[str, Any] | None = None,
             registrations: dict[str, Any] | None = None, rtp: dict[str, Any] | None = None,
             audio: dict[str, Any] | None = None, error: dict[str, Any] | None = None,
             parties: tuple[str, ...] = ("caller", "agent"), name: str = "connect") -> dict[str, Any]:
    arts = {}
    for p in parties:
        arts[f"log:{p}"] = f"{p}.log"
        arts[f"sip_log:{p}"] = f"{p}.sip.log"
    return {"name": name, "file": f"{name}.yaml", "verdict": "FAIL", "started": 1000.0, "duration_s": 5.0,
            "checks": checks, "sip": {"calls": calls or {}, "registrations": registrations or {}},
            "audio": audio or {}, "rtp": rtp or {}, "artifacts": arts, "error": error, "skipped_steps": [],
            "out_dir": name}


def main_call(**over: Any) -> dict[str, Any]:
    call = {"sip_call_id": "cid-1", "caller": "caller", "callee": "agent", "uri": "sip:2001@lab.local",
            "final_code": 200, "answered": True, "invite_to_provisional_ms": 3.0, "invite_to_180_ms": 5.0,
            "setup_ms": 8.0, "invite_to_ack_ms": 9.0, "duration_s": 3.0}
    call.update(over)
    return call


def rtp_stats(rx: int, tx: int, remote: str, **over: Any) -> dict[str, Any]:
    st = {"codec": "PCMU", "clock_rate": 8000, "remote_rtp": remote, "rx_packets": rx, "rx_lost": 0,
          "rx_jitter_ms": 0.3, "rx_jitter_max_ms": 0.6, "tx_packets": tx, "tx_lost": 0, "rtt_ms": 0.3,
          "jb_avg_delay_ms": 20.0, "jb_lost": 0, "jb_discard": 0, "streams": 1}
    st.update(over)
    return st


def write_logs(sdir: Path, logs: dict[str, str]) -> None:
    sdir.mkdir(parents=True, exist_ok=True)
    for party, text in logs.items():
        (sdir / f"{party}.sip.log").write_text(text)
        (sdir / f"{party}.log").write_text("party log\n")


def scenario_result(name: str, file: Path, checks: list[CheckResult], out_dir: str = "",
                    error: dict[str, Any] | None = None, **fields: Any) -> ScenarioResult:
    res = ScenarioResult(name=name, file=str(file), started=1000.0, duration_s=2.0, checks=checks,
                         out_dir=out_dir or name, error=error, **fields)
    res.finish()
    return res


def run_result(out_dir: Path, target: dict[str, Any] | None = None) -> RunResult:
    return RunResult(run_id=out_dir.name, out_dir=str(out_dir), target=dict(target or LAB_TARGET),
                     harness_version="test")


def reg_fail(party: str = "agent", code: int = 401) -> CheckResult:
    return CheckResult.of(CheckName("register", subject=party), Verdict.FAIL, code, 200, "SIP", "==",
                          f"{code} Unauthorized")


def reg_ok(party: str = "caller") -> CheckResult:
    return CheckResult.of(CheckName("register", subject=party), Verdict.PASS, 200, 200, "SIP", "==")


DIGEST = 'Digest username="2001", realm="lab.local", nonce="n1", response="6629fae49393a05397450978507c4ef1"'
_REASONS = {401: "Unauthorized", 403: "Forbidden", 200: "OK", 503: "Service Unavailable"}


def register_log_text(*codes: int) -> str:
    """A party's log of REGISTER attempts answered with ``codes`` (default: the wrong-password 401, 401)."""
    msgs: list[tuple[str, str]] = []
    for i, code in enumerate(codes or (401, 401)):
        extra = f"Authorization: {DIGEST}\n" if i else ""
        msgs.append(("TX", request("REGISTER", "sip:127.0.0.1:35060", "reg-1", 10 + i, extra=extra)))
        msgs.append(("RX", response(code, _REASONS[code], "REGISTER", "reg-1", 10 + i)))
    return sip_log(*msgs)
