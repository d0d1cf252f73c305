"""SIP text: parsing real-looking messages, building requests, and RFC 2617 digest answers."""

from __future__ import annotations

import pytest

from harness.contracts.sipmsg import SipParseError, build_request, digest_authorization, parse, parse_challenge

RESPONSE = (b"SIP/2.0 401 Unauthorized\r\n"
            b"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKabc;rport=5062\r\n"
            b"From: <sip:1001@lab.local>;tag=aa11\r\n"
            b"To: <sip:1001@lab.local>;tag=srv22\r\n"
            b"i: call-1@h\r\n"
            b"CSeq: 7 REGISTER\r\n"
            b'WWW-Authenticate: Digest realm="lab.local", nonce="abc123",\r\n qop="auth"\r\n'
            b"Content-Length: 0\r\n\r\n")


def test_parse_response_with_compact_and_folded_headers() -> None:
    m = parse(RESPONSE)
    assert m.is_response and m.status == 401 and m.reason == "Unauthorized"
    assert m.call_id == "call-1@h" and m.cseq == (7, "REGISTER")
    assert m.tag("To") == "srv22" and m.tag("From") == "aa11" and m.branch() == "z9hG4bKabc"
    ch = parse_challenge(m.header("www-authenticate"))
    assert ch == {"scheme": "Digest", "realm": "lab.local", "nonce": "abc123", "qop": "auth"}


def test_parse_request_and_errors() -> None:
    m = parse(build_request("OPTIONS", "sip:127.0.0.1", [("Call-ID", "x"), ("Content-Length", "99")], b"hi"))
    assert m.method == "OPTIONS" and m.uri == "sip:127.0.0.1" and m.body == b"hi"
    assert m.all("Content-Length") == ["2"]
    with pytest.raises(SipParseError):
        parse(b"HTTP/1.1 200 OK\r\n\r\n")
    with pytest.raises(SipParseError):
        parse(b"OPTIONS sip:x SIP/2.0\r\nno colon here\r\n\r\n")


def test_digest_matches_rfc2617_example() -> None:
    # RFC 2617 section 3.5 (HTTP example; the computation is the same for SIP)
    challenge = ('Digest realm="testrealm@host.com", qop="auth,auth-int", '
                 'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"')
    value = digest_authorization(challenge, "GET", "/dir/index.html", "Mufasa", "Circle Of Life",
                                 nc=1, cnonce="0a4f113b")
    assert 'response="6629fae49393a05397450978507c4ef1"' in value
    assert 'opaque="5ccc069c403ebaf9f0171e9517f40e41"' in value and "qop=auth" in value


def test_digest_without_qop_and_unsupported() -> None:
    v = digest_authorization('Digest realm="r", nonce="n"', "REGISTER", "sip:r", "u", "p")
    assert "qop" not in v and v.startswith("Digest username=\"u\"")
    with pytest.raises(SipParseError):
        digest_authorization('Basic realm="r"', "REGISTER", "sip:r", "u", "p")
