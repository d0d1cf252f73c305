"""Toll-fraud classification from literal SIP answers (no sockets): only a refusal in the policy counts,
never the 487 after the harness's own CANCEL; the dial formats an attacker tries."""

from __future__ import annotations

import pytest

from harness.contracts.sipmsg import parse
from harness.probes.client import Exchange, Reply
from harness.probes.probe_uac import CallResult
from harness.probes.tollfraud import RefusalPolicy, classify, dial_strings, international, verdict_of

POLICY = RefusalPolicy()


def invite(ref: int, cseq: int, *statuses: str) -> Exchange:
    ex = Exchange(ref=ref, request=b"INVITE ...", call_id="c1", cseq=(cseq, "INVITE"))
    for i, st in enumerate(statuses):
        raw = f"SIP/2.0 {st}\r\nCall-ID: c1\r\nCSeq: {cseq} INVITE\r\nContent-Length: 0\r\n\r\n".encode()
        ex.replies.append(Reply(1.0 + i, parse(raw), raw))
    return ex


def call(*exchanges: Exchange, cancelled: bool = False, authenticated: bool = False,
         answered: bool = False) -> CallResult:
    c = CallResult(list(exchanges), authenticated=authenticated, cancelled=cancelled)
    if answered:
        final = exchanges[-1].final
        assert final is not None
        c.answer = final.msg
    return c


@pytest.mark.parametrize(("number", "expected"), [
    ("00441632960123", ["00441632960123", "+441632960123", "011441632960123", "900441632960123"]),
    ("+441632960123", ["00441632960123", "+441632960123", "011441632960123", "900441632960123"]),
    ("011441632960123", ["00441632960123", "+441632960123", "011441632960123", "900441632960123"]),
    ("01632960123", ["01632960123", "901632960123"]),  # national: as it is, and behind 9
    ("900441632960123", ["00441632960123", "+441632960123", "011441632960123", "900441632960123"]),
    ("90123456789", ["0123456789", "90123456789"]),  # a national number behind 9: with and without it
])
def test_dial_formats(number: str, expected: list[str]) -> None:
    assert [d for _, d in dial_strings(number)] == expected
    assert dial_strings(number, ("+",))[0][0] == "+"


def test_international_digits_and_unknown_format() -> None:
    assert international("+44 1632") is None and international("0044123") == "44123"
    with pytest.raises(ValueError, match="unknown dial format"):
        dial_strings("00441632960123", ("8",))


def test_the_487_after_our_own_cancel_is_not_a_refusal() -> None:
    kept = call(invite(1, 1, "100 Trying", "487 Request Terminated"), cancelled=True)
    o = classify(kept, POLICY, authenticated=False, waited_s=3.0)
    assert o.kind == "not_refused" and o.bad
    assert o.text.startswith("not refused within 3 s: the PBX took the call (100)") and "487 is no refusal" in o.text


def test_refusals_challenges_routes_and_silence() -> None:
    def kind(c: CallResult, auth: bool = False, policy: RefusalPolicy = POLICY) -> str:
        return classify(c, policy, authenticated=auth, waited_s=3.0).kind

    for code in ("403 Forbidden", "404 Not Found", "484 Address Incomplete", "488 Not Acceptable Here",
                 "503 Service Unavailable", "603 Decline"):
        assert kind(call(invite(1, 1, "100 Trying", code))) == "refused", code
    assert kind(call(invite(1, 1, "407 Proxy Authentication Required"))) == "refused"  # challenged, no credentials
    assert kind(call(invite(1, 1, "480 Temporarily Unavailable"))) == "not_refused"
    assert kind(call(invite(1, 1, "486 Busy Here"))) == "not_refused"
    assert kind(call(invite(1, 1, "487 Request Terminated"))) == "not_refused"  # not after our CANCEL, still no refusal
    assert kind(call(invite(1, 1, "183 Session Progress", "487 Request Terminated"), cancelled=True)) == "routed"
    assert kind(call(invite(1, 1, "200 OK"), answered=True)) == "routed"
    assert kind(call(invite(1, 1))) == "no_answer"
    assert kind(call(invite(1, 1, "100 Trying"))) == "not_refused"
    authed = call(invite(1, 1, "407 Proxy Authentication Required"), invite(2, 2, "407 Proxy Authentication Required"),
                  authenticated=True)
    assert kind(authed, auth=True) == "not_judged"  # the credentials were not accepted
    ok = call(invite(1, 1, "407 Proxy Authentication Required"), invite(2, 2, "403 Forbidden"), authenticated=True)
    o = classify(ok, POLICY, authenticated=True, waited_s=3.0)
    assert o.kind == "refused" and o.text == "407 challenge, then 403 Forbidden"
    lenient = RefusalPolicy.of([480, 404, 403])
    assert kind(call(invite(1, 1, "480 Temporarily Unavailable")), policy=lenient) == "refused"
    assert lenient.describe(authenticated=True) == "403/404/480"
    assert POLICY.describe(authenticated=False) == "401/407 challenge or 403/404/484/488/503/603"


def test_verdict_of_outcomes() -> None:
    def outs(*kinds: str) -> list:
        from harness.probes.tollfraud import Outcome

        return [Outcome(k, "") for k in kinds]

    assert verdict_of(outs("refused", "refused")) == "pass"
    assert verdict_of(outs("refused", "no_answer")) == "error"
    assert verdict_of(outs("no_answer", "routed")) == "fail"
    assert verdict_of(outs("not_judged", "not_refused")) == "fail"
    assert verdict_of([]) == "error"
