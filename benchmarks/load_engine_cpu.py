"""The load engine's pure-Python cost per call, without sockets, Locust or a far end; prints a table.

    .venv/bin/python benchmarks/load_engine_cpu.py            # 30,000 calls, a few seconds
    .venv/bin/python benchmarks/load_engine_cpu.py --calls 100000

One :class:`~harness.load.uac.Uac` and its :class:`~harness.load.scheduler.Scheduler` place calls
(INVITE, 180, 200, ACK, BYE, 200, no hold) against literal SIPp-style responses built in the loop; the
time spent building those responses is measured apart and taken off. The parts below the total are
timed one by one with ``timeit``. This is the CPython share of what ``load_vs_sipp.py`` measures as
CPU per call; the rest there is system time (UDP) and Locust's statistics.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit

from harness.load.plan import UacPlan
from harness.load.recorder import Recorder
from harness.load.scheduler import Scheduler
from harness.load.uac import Uac
from harness.load.wire import build_request, call_id_key, parse_response

SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\n"


def _header(req: bytes, name: bytes) -> bytes:
    i = req.find(b"\r\n" + name + b": ")
    return req[i + 2:req.find(b"\r\n", i + 2)]


def respond(req: bytes, code: int, reason: bytes, body: bytes = b"") -> bytes:
    """What a SIPp UAS answers: the request's Via/From/To/Call-ID/CSeq, a To tag, a Contact."""
    to = _header(req, b"To") + (b";tag=1234SIPpTag01" if code > 100 and b"tag=" not in _header(req, b"To") else b"")
    lines = [b"SIP/2.0 %d %s" % (code, reason), _header(req, b"Via"), _header(req, b"From"), to,
             _header(req, b"Call-ID"), _header(req, b"CSeq"), b"Contact: <sip:127.0.0.1:5060;transport=UDP>"]
    if body:
        lines.append(b"Content-Type: application/sdp")
    lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def per_call_us(calls: int) -> float:
    plan = UacPlan(host="127.0.0.1", port=5060, domain="127.0.0.1", call_uri="sip:service@127.0.0.1:5060",
                   ring_uri="sip:ring@127.0.0.1:5060", hold_s=0, hold_jitter_pct=0, max_transactions=calls)
    sent: list[bytes] = []
    rec = Recorder()

    def send(data: bytes) -> float:
        sent.append(data)
        return time.perf_counter()

    def report(name: str, t_start: float, ms: float, error: str | None) -> None:
        if error is None:
            rec.sample(name, t_start, ms)
        else:
            rec.failure(name, t_start, ms, error)

    sched = Scheduler()
    uac = Uac(plan, send=send, via="127.0.0.1:40000", report=report, bind=sched.bind, unbind=sched.unbind)
    building = 0.0
    t_start = time.perf_counter()
    for _ in range(calls):
        sched.start(uac.call())
        invite = sent.pop()
        t = time.perf_counter()
        ringing, ok = respond(invite, 180, b"Ringing"), respond(invite, 200, b"OK", SDP)
        building += time.perf_counter() - t
        key = call_id_key(ringing)
        assert key is not None
        sched.deliver(key, (time.perf_counter(), ringing))
        sched.deliver(key, (time.perf_counter(), ok))
        sched.tick(time.perf_counter())
        bye = sent.pop()
        t = time.perf_counter()
        bye_ok = respond(bye, 200, b"OK")
        building += time.perf_counter() - t
        sched.deliver(key, (time.perf_counter(), bye_ok))
    elapsed = time.perf_counter() - t_start - building
    done = sum(h.count for (_, name), h in rec.hists.items() if name == "call:setup")
    if done != calls or len(sched):
        raise SystemExit(f"only {done} of {calls} calls completed; {len(sched)} still running")
    return elapsed / calls * 1e6


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=30000)
    args = ap.parse_args(argv)
    invite = build_request("INVITE", "sip:service@127.0.0.1:5060", via="127.0.0.1:40000",
                           branch="z9hG4bK0123456789abcdef", from_="<sip:load@load.invalid>;tag=abc",
                           to="<sip:service@127.0.0.1:5060>", call_id="0123@harness-load", cseq=1,
                           contact="<sip:load@127.0.0.1:40000>", body=SDP)
    ok = respond(invite, 200, b"OK", SDP)
    n = 100000

    def part(stmt: str) -> float:
        names = {"parse_response": parse_response, "build_request": build_request, "call_id_key": call_id_key,
                 "SDP": SDP, "ok": ok}
        return timeit.timeit(stmt, number=n, globals=names) / n * 1e6

    rows = [
        ("one call, INVITE to BYE's 200 (flows, scheduler, recorder)", per_call_us(args.calls)),
        ("  parse a response (status, branch, CSeq)", part("parse_response(ok)")),
        ("  the same, then a 2xx's To, Contact, Record-Route, body", part("parse_response(ok).to")),
        ("  build a request (INVITE with SDP)",
         part("build_request('INVITE', 'sip:s@127.0.0.1:5060', via='127.0.0.1:40000', branch='z9hG4bKx', "
              "from_='<sip:a@b>;tag=1', to='<sip:s@127.0.0.1>', call_id='c@h', cseq=1, body=SDP)")),
        ("  route a datagram by Call-ID", part("call_id_key(ok)")),
    ]
    print(f"load engine, pure Python per call ({args.calls} calls; Python {sys.version.split()[0]})")
    print(f"{'measure':60} {'us':>8}")
    for name, us in rows:
        print(f"{name:60} {us:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
