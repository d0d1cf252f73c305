"""The load engine's SIP bytes: literal responses read, requests built, routing keys found."""

from __future__ import annotations

from harness.contracts.sdp import first_audio
from harness.contracts.sipmsg import parse
from harness.load.wire import (
    build_request,
    call_id_key,
    offer_sdp,
    parse_request,
    parse_response,
    reply_to,
    split_header_values,
    uri_of,
)

OK_INVITE = (b"SIP/2.0 200 OK\r\n"
             b"Via: SIP/2.0/UDP 127.0.0.1:40001;branch=z9hG4bKabc123;rport=40001;received=127.0.0.1\r\n"
             b"Record-Route: <sip:127.0.0.1:41060;lr>, <sip:10.0.0.1;lr;x=\"a,b\">\r\n"
             b"Record-Route: <sip:192.0.2.1;lr>\r\n"
             b"From: <sip:load@load.invalid>;tag=f1\r\n"
             b"To: <sip:load-answer@lab.local>;tag=srv-9\r\n"
             b"Call-ID: c-42@harness-load\r\n"
             b"CSeq: 2 INVITE\r\n"
             b"Contact: \"Lab\" <sip:load-answer@127.0.0.1:41060>;expires=60\r\n"
             b"Content-Type: application/sdp\r\n"
             b"Content-Length: 72\r\n\r\n"
             b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40200 RTP/AVP 0\r\n")

COMPACT_407 = (b"SIP/2.0 407 Proxy Authentication Required\r\n"
               b"v: SIP/2.0/UDP 127.0.0.1:40001;branch=z9hG4bKxyz\r\n"
               b"f: <sip:1001@lab.local>;tag=a\r\n"
               b"t: <sip:load-answer@lab.local>;tag=b\r\n"
               b"i: compact-1\r\n"
               b"cseq: 1 invite\r\n"
               b'Proxy-Authenticate: Digest realm="lab.local", nonce="n1", qop="auth"\r\n'
               b"l: 0\r\n\r\n")


def test_response_matching_fields_and_dialog_parts() -> None:
    r = parse_response(OK_INVITE)
    assert r is not None
    assert (r.status, r.branch, r.cseq_num, r.cseq_method) == (200, "z9hG4bKabc123", 2, "INVITE")
    assert r.reason == "OK" and r.to_tag == "srv-9" and r.call_id == "c-42@harness-load"
    assert r.contact == "sip:load-answer@127.0.0.1:41060"
    assert r.record_route == ["<sip:127.0.0.1:41060;lr>", '<sip:10.0.0.1;lr;x="a,b">', "<sip:192.0.2.1;lr>"]
    m = first_audio(r.body)
    assert m is not None and (m.connectable, m.port, m.payloads[0]) == ("127.0.0.1", 40200, 0)
    assert call_id_key(OK_INVITE) == b"c-42@harness-load"


def test_compact_headers_and_challenge() -> None:
    r = parse_response(COMPACT_407)
    assert r is not None
    assert (r.status, r.branch, r.cseq_num, r.cseq_method) == (407, "z9hG4bKxyz", 1, "INVITE")
    assert r.challenge == ("Proxy-Authenticate", 'Digest realm="lab.local", nonce="n1", qop="auth"')
    assert r.to_tag == "b"
    assert call_id_key(COMPACT_407) == b"compact-1"


def test_a_request_is_not_a_response_and_garbage_has_no_key() -> None:
    assert parse_response(b"BYE sip:x SIP/2.0\r\nCall-ID: a\r\n\r\n") is None
    assert call_id_key(b"hello") is None


def test_built_request_parses_back_with_route_and_body() -> None:
    body = offer_sdp("127.0.0.1", 40100, 7, "sendonly")
    data = build_request("INVITE", "sip:load-answer@127.0.0.1:41060", via="127.0.0.1:40001", branch="z9hG4bKq",
                         from_="<sip:load@load.invalid>;tag=f1", to="<sip:load-answer@lab.local>;tag=srv-9",
                         call_id="c-42", cseq=3, contact="<sip:load@127.0.0.1:40001>",
                         routes=("<sip:127.0.0.1:41060;lr>",), body=body)
    m = parse(data)
    assert m.method == "INVITE" and m.uri == "sip:load-answer@127.0.0.1:41060"
    assert m.branch() == "z9hG4bKq" and m.cseq == (3, "INVITE") and m.tag("To") == "srv-9"
    assert m.all("Route") == ["<sip:127.0.0.1:41060;lr>"]
    assert m.header("Content-Length") == str(len(body)) and b"a=sendonly" in m.body
    media = first_audio(m.body)
    assert media is not None and (media.connectable, media.port, media.payloads[0]) == ("127.0.0.1", 40100, 0)


def test_reply_to_echoes_the_request_and_adds_a_to_tag() -> None:
    req = parse_request(b"BYE sip:load@127.0.0.1:40001 SIP/2.0\r\n"
                        b"Via: SIP/2.0/UDP 127.0.0.1:41060;branch=z9hG4bKk\r\n"
                        b"From: <sip:load-answer@lab.local>;tag=srv\r\nTo: <sip:load@load.invalid>\r\n"
                        b"Call-ID: c-1\r\nCSeq: 5 BYE\r\nMax-Forwards: 70\r\n\r\n")
    assert req is not None and req.method == "BYE" and req.cseq_method == "BYE"
    m = parse(reply_to(req, 200, "OK", "mine"))
    assert m.status == 200 and m.branch() == "z9hG4bKk" and m.cseq == (5, "BYE")
    assert m.tag("To") == "mine" and m.tag("From") == "srv" and not m.all("Max-Forwards")


def test_header_value_helpers() -> None:
    assert split_header_values('<sip:a>;x, "b, c" <sip:b>') == ["<sip:a>;x", '"b, c" <sip:b>']
    assert uri_of('"A" <sip:a@b;transport=udp>;tag=1') == "sip:a@b;transport=udp"
    assert uri_of("sip:a@b;tag=1") == "sip:a@b"
    assert first_audio(b"v=0\r\ns=-\r\n") is None
