"""The load UAC's flows, driven by the scheduler with a fake clock and literal SIP answers.

No socket and no gevent: ``send`` records datagrams, answers are built from what was sent (as a
proxy or UAS would echo Via/From/To/Call-ID/CSeq) and delivered by Call-ID, time moves by hand.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from harness.contracts.sipmsg import digest_authorization, parse, parse_challenge
from harness.contracts.target import Secret
from harness.load.plan import UacPlan
from harness.load.scheduler import Scheduler
from harness.load.txn import Flow
from harness.load.uac import Uac
from harness.load.wire import call_id_key, parse_request, reply_to

PLAN = UacPlan(host="127.0.0.1", port=41060, domain="lab.local", call_uri="sip:load-answer@lab.local",
               ring_uri="sip:load-ring@lab.local", hold_s=2.0, hold_jitter_pct=0.0, answer_timeout_s=10.0,
               cancel_after_s=0.5)
VIA = "127.0.0.1:40001"


class Bench:
    """A fake wire and clock around one Uac and its Scheduler."""

    def __init__(self, plan: UacPlan = PLAN):
        self.t = 0.0
        self.sent: list[bytes] = []
        self.reports: list[tuple[str, float, str | None]] = []
        self.counts: list[str] = []
        self.stopping = False
        self.sched = Scheduler()
        self.uac = Uac(plan, send=self.send, via=VIA, report=self.report, bind=self.sched.bind,
                       unbind=self.sched.unbind, now=lambda: self.t, count=self.counts.append,
                       stopping=lambda: self.stopping)

    def send(self, data: bytes) -> float:
        self.sent.append(data)
        return self.t

    def report(self, name: str, t_start: float, ms: float, error: str | None) -> None:
        self.reports.append((name, round(ms, 3), error))

    def at(self, t: float) -> None:
        """Move the clock to ``t`` and fire what is due."""
        self.t = t
        self.sched.tick(t)

    def answer(self, request: bytes, status: int, reason: str, *, t: float, to_tag: str = "uas1",
               extra: tuple[str, ...] = (), body: bytes = b"") -> bytes:
        self.t = t
        req = parse_request(request)
        assert req is not None
        data = reply_to(req, status, reason, to_tag if status > 100 else "", body=body, extra=extra)
        key = call_id_key(data)
        assert key is not None and self.sched.deliver(key, (t, data))
        return data

    def methods(self) -> list[str]:
        return [d.split(b" ", 1)[0].decode() for d in self.sent]


SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40300 RTP/AVP 0\r\n"
DIALOG = ("Contact: <sip:load-answer@127.0.0.1:41070>", "Record-Route: <sip:127.0.0.1:41060;lr>",
          "Record-Route: <sip:127.0.0.2:5060;lr>")


def test_call_through_a_record_routing_proxy() -> None:
    b = Bench()
    b.sched.start(b.uac.call())
    invite = b.sent[0]
    assert parse(invite).method == "INVITE" and parse(invite).uri == "sip:load-answer@lab.local"
    b.answer(invite, 100, "Trying", t=0.0002)
    b.answer(invite, 180, "Ringing", t=0.0011)
    b.answer(invite, 200, "OK", t=0.0023, extra=DIALOG, body=SDP)
    ack = parse(b.sent[1])
    assert ack.method == "ACK" and ack.uri == "sip:load-answer@127.0.0.1:41070"  # the remote target
    assert ack.all("Route") == ["<sip:127.0.0.2:5060;lr>", "<sip:127.0.0.1:41060;lr>"]  # RR reversed
    assert ack.tag("To") == "uas1" and ack.cseq == (1, "ACK") and ack.branch() != parse(invite).branch()
    assert b.reports == [("call:ringing", 1.1, None), ("call:setup", 2.3, None)]
    assert b.uac.up == 1
    b.at(1.0)
    assert len(b.sent) == 2  # still holding
    b.at(2.0023)
    bye = parse(b.sent[2])
    assert bye.method == "BYE" and bye.uri == ack.uri and bye.all("Route") == ack.all("Route")
    assert bye.cseq == (2, "BYE") and bye.tag("To") == "uas1"
    b.answer(b.sent[2], 200, "OK", t=2.0031)
    assert b.reports[-1] == ("BYE", 0.8, None)
    assert len(b.sched) == 0 and not b.sched.by_cid and b.uac.up == 0


def test_invite_retransmissions_follow_timer_a_and_time_out_at_timer_b() -> None:
    b = Bench()
    b.sched.start(b.uac.call())
    times = []
    while len(b.sched):
        due = b.sched.next_due()
        before = len(b.sent)
        b.at(due)
        if len(b.sent) > before:
            times.append(due)
    assert times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(d == b.sent[0] for d in b.sent)  # a retransmission is the same request
    assert b.reports == [("call:setup", 32000.0, "timeout")]
    assert b.counts.count("retransmits") == 6


def test_a_response_is_matched_by_branch_and_cseq_not_by_call_id_alone() -> None:
    b = Bench()
    b.sched.start(b.uac.call())
    invite = b.sent[0]
    other = invite.replace(b"branch=z9hG4bK", b"branch=z9hG4bKother")
    b.answer(other, 486, "Busy Here", t=0.001)  # same Call-ID, another transaction: ignored
    assert b.reports == [] and b.counts == ["stray_responses"]
    b.answer(invite, 486, "Busy Here", t=0.002)
    assert b.reports == [("call:setup", 2.0, "486")]
    ack = parse(b.sent[-1])
    assert ack.method == "ACK" and ack.branch() == parse(invite).branch() and ack.cseq == (1, "ACK")
    assert len(b.sched) == 0


def test_proxy_challenge_is_answered_with_digest_credentials() -> None:
    plan = replace(PLAN, from_user="1001", from_domain="lab.local", auth_user="1001",
                   password=Secret("lab-caller-pw"))
    b = Bench(plan)
    b.sched.start(b.uac.call())
    first = b.sent[0]
    assert parse(first).header("From").startswith("<sip:1001@lab.local>")
    b.answer(first, 407, "Proxy Authentication Required", t=0.001,
             extra=('Proxy-Authenticate: Digest realm="lab.local", nonce="abc", qop="auth"',))
    ack, second = parse(b.sent[1]), parse(b.sent[2])
    assert ack.method == "ACK" and ack.branch() == parse(first).branch()
    assert second.method == "INVITE" and second.cseq == (2, "INVITE") and second.branch() != ack.branch()
    auth = second.header("Proxy-Authorization")
    got = parse_challenge(auth)
    assert got["username"] == "1001" and got["uri"] == "sip:load-answer@lab.local" and got["realm"] == "lab.local"
    expected = digest_authorization('Digest realm="lab.local", nonce="abc", qop="auth"', "INVITE",
                                    "sip:load-answer@lab.local", "1001", "lab-caller-pw", cnonce=got["cnonce"])
    assert parse_challenge(expected)["response"] == got["response"]
    assert "lab-caller-pw" not in b.sent[2].decode()
    b.answer(b.sent[2], 200, "OK", t=0.004, extra=DIALOG, body=SDP)
    assert b.reports[-1] == ("call:setup", 4.0, None)  # measured from the first INVITE


def test_a_second_challenge_is_the_outcome() -> None:
    plan = replace(PLAN, auth_user="1001", password=Secret("x"))
    b = Bench(plan)
    b.sched.start(b.uac.call())
    challenge = ('Proxy-Authenticate: Digest realm="lab.local", nonce="abc"',)
    b.answer(b.sent[0], 407, "Proxy Authentication Required", t=0.001, extra=challenge)
    b.answer(b.sent[2], 407, "Proxy Authentication Required", t=0.002, extra=challenge)
    assert b.reports == [("call:setup", 2.0, "407")]


def test_retransmitted_2xx_is_acked_again() -> None:
    b = Bench()
    b.sched.start(b.uac.call())
    ok = b.answer(b.sent[0], 200, "OK", t=0.001, extra=DIALOG, body=SDP)
    assert b.methods() == ["INVITE", "ACK"]
    b.sched.deliver(call_id_key(ok) or b"", (0.5, ok))
    assert b.methods() == ["INVITE", "ACK", "ACK"] and b.sent[1] == b.sent[2]


def test_hold_reinvite_then_bye() -> None:
    b = Bench(replace(PLAN, reinvite=True))
    b.sched.start(b.uac.call())
    b.answer(b.sent[0], 200, "OK", t=0.001, extra=DIALOG, body=SDP)
    b.at(1.001)
    reinvite = parse(b.sent[2])
    assert reinvite.method == "INVITE" and reinvite.cseq == (2, "INVITE") and b"a=sendonly" in reinvite.body
    assert reinvite.uri == "sip:load-answer@127.0.0.1:41070" and reinvite.tag("To") == "uas1"
    b.answer(b.sent[2], 200, "OK", t=1.0015, body=SDP)
    assert parse(b.sent[3]).cseq == (2, "ACK")
    assert b.reports[-1] == ("call:reinvite", 0.5, None)
    b.at(2.001)
    assert parse(b.sent[4]).cseq == (3, "BYE")


def test_remote_bye_ends_the_call_without_ours() -> None:
    b = Bench()
    b.sched.start(b.uac.call())
    invite = parse(b.sent[0])
    b.answer(b.sent[0], 200, "OK", t=0.001, extra=DIALOG, body=SDP)
    cid = invite.call_id
    remote = (f"BYE sip:load@{VIA} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:41060;branch=z9hG4bKr\r\n"
              f"From: <sip:load-answer@lab.local>;tag=uas1\r\nTo: {invite.header('From')}\r\n"
              f"Call-ID: {cid}\r\nCSeq: 1 BYE\r\nContent-Length: 0\r\n\r\n").encode()
    b.sched.deliver(cid.encode(), (0.5, remote))
    reply = parse(b.sent[-1])
    assert reply.status == 200 and reply.cseq == (1, "BYE")
    assert len(b.sched) == 0 and "BYE" not in b.methods() and b.counts == ["remote_bye"]


def test_drain_hangs_up_held_calls_at_once() -> None:
    b = Bench(replace(PLAN, hold_s=60.0))
    b.sched.start(b.uac.call())
    b.answer(b.sent[0], 200, "OK", t=0.001, extra=DIALOG, body=SDP)
    b.stopping = True
    b.t = 0.2
    b.sched.wake_all()
    assert parse(b.sent[-1]).method == "BYE"


def test_cancel_flow() -> None:
    b = Bench()
    b.sched.start(b.uac.cancel())
    invite = b.sent[0]
    assert parse(invite).uri == "sip:load-ring@lab.local"
    b.answer(invite, 180, "Ringing", t=0.002)
    assert b.reports == [("call:ringing", 2.0, None)]
    b.at(0.502)
    cancel = parse(b.sent[1])
    assert cancel.method == "CANCEL" and cancel.uri == parse(invite).uri
    assert cancel.branch() == parse(invite).branch() and cancel.cseq == (1, "CANCEL")
    assert not cancel.tag("To")
    b.answer(invite, 487, "Request Terminated", t=0.5031)
    ack = parse(b.sent[2])
    assert ack.method == "ACK" and ack.branch() == parse(invite).branch() and ack.tag("To") == "uas1"
    b.answer(b.sent[1], 200, "OK", t=0.5035)
    assert b.reports[-1] == ("CANCEL", 1.5, None)
    assert len(b.sched) == 0


def test_cancel_that_is_answered_anyway_fails_and_hangs_up() -> None:
    b = Bench()
    b.sched.start(b.uac.cancel())
    b.answer(b.sent[0], 183, "Session Progress", t=0.001)
    b.at(0.501)
    b.answer(b.sent[0], 200, "OK", t=0.502, extra=DIALOG, body=SDP)
    b.answer(b.sent[1], 200, "OK", t=0.503)
    assert b.methods()[-2:] == ["ACK", "BYE"]
    b.answer(b.sent[-1], 200, "OK", t=0.504)
    assert b.reports[-1] == ("CANCEL", 2.0, "200")


def test_register_with_401_and_options() -> None:
    plan = replace(PLAN, from_user="1001", auth_user="1001", password=Secret("pw"), register_expires_s=90)
    b = Bench(plan)
    b.sched.start(b.uac.register())
    reg = parse(b.sent[0])
    assert reg.method == "REGISTER" and reg.uri == "sip:lab.local" and reg.header("Expires") == "90"
    assert reg.header("To") == "<sip:1001@lab.local>" and reg.header("Contact") == f"<sip:1001@{VIA}>"
    b.answer(b.sent[0], 401, "Unauthorized", t=0.001, extra=('WWW-Authenticate: Digest realm="lab.local", nonce="n"',))
    again = parse(b.sent[1])
    assert again.cseq == (2, "REGISTER") and again.header("Authorization").startswith("Digest ")
    b.answer(b.sent[1], 200, "OK", t=0.003)
    assert b.reports == [("REGISTER", 3.0, None)]
    b.sched.start(b.uac.options())
    opt = parse(b.sent[2])
    assert opt.method == "OPTIONS" and opt.uri == "sip:127.0.0.1:41060"
    b.answer(b.sent[2], 200, "OK", t=0.0034)
    assert b.reports[-1] == ("OPTIONS", 0.4, None)


def test_a_flow_that_raises_is_counted_not_fatal() -> None:
    errors: list[str] = []
    s = Scheduler(on_error=errors.append)

    def broken() -> Flow:
        yield 1.0
        raise ValueError("bug")

    s.start(broken())
    s.tick(1.0)
    assert s.errors == 1 and len(s) == 0 and re.search("ValueError: bug", errors[0])
    with pytest.raises(ValueError, match="unknown transaction kind"):
        Bench().uac.flow("subscribe")
