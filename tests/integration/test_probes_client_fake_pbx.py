"""The raw SIP client and its flows against a scripted fake PBX on loopback that answers with
literal SIP text: matching, retransmission, CANCEL on ringing, ACK + BYE through the route set,
TCP framing, the packet budget, and an ICMP-refused UDP port.

They open sockets and a thread (hence here and not in tests/unit) but need no lab."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.contracts.sipmsg import SipMessage, parse
from harness.contracts.target import Target
from harness.probes import ProbeBudgetError, ProbeSession
from harness.probes.probe_uac import place_call, register

Handler = Callable[[SipMessage, int], list[bytes]]


def answer(req: SipMessage, status: str, extra: str = "", to_tag: str = "pbx1", body: bytes = b"") -> bytes:
    """A response echoing the request's transaction headers (as a real server does)."""
    to = req.header("To") + ("" if ";tag=" in req.header("To") else f";tag={to_tag}")
    head = (f"SIP/2.0 {status}\r\nVia: {req.header('Via')}\r\nFrom: {req.header('From')}\r\nTo: {to}\r\n"
            f"Call-ID: {req.call_id}\r\nCSeq: {req.header('CSeq')}\r\n{extra}Content-Length: {len(body)}\r\n\r\n")
    return head.encode() + body


class FakePbx:
    """A UDP or TCP SIP responder on 127.0.0.1 driven by a handler(request, nth-time-seen)."""

    def __init__(self, handler: Handler, transport: str = "udp"):
        self.handler, self.transport = handler, transport
        self.received: list[SipMessage] = []
        kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
        self.sock = socket.socket(socket.AF_INET, kind)
        self.sock.bind(("127.0.0.1", 0))
        if transport == "tcp":
            self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _count(self, msg: SipMessage) -> int:
        return sum(1 for m in self.received if m.call_id == msg.call_id and m.cseq == msg.cseq)

    def _loop(self) -> None:
        conn: socket.socket | None = None
        while not self.stop.is_set():
            try:
                if self.transport == "udp":
                    data, peer = self.sock.recvfrom(65535)
                else:
                    if conn is None:
                        conn, _ = self.sock.accept()
                        conn.settimeout(0.2)
                    data = conn.recv(65535)
                    if not data:  # the client closed the connection
                        conn.close()
                        conn = None
                        continue
            except (TimeoutError, OSError):
                continue
            msg = parse(data)
            self.received.append(msg)
            replies = self.handler(msg, self._count(msg))
            if self.transport == "udp":
                for r in replies:
                    self.sock.sendto(r, peer)
            elif conn is not None and replies:
                conn.sendall(b"".join(replies))  # several messages in one write: the client must frame them
        if conn is not None:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def pbx_factory() -> Iterator[Callable[..., FakePbx]]:
    made: list[FakePbx] = []

    def make(handler: Handler, transport: str = "udp") -> FakePbx:
        made.append(FakePbx(handler, transport))
        return made[-1]

    yield make
    for p in made:
        p.close()


def session(tmp_path: Path, port: int, transport: str = "udp", packets: int = 40) -> ProbeSession:
    t = Target.from_mapping({"name": "fake", "pbx": {"host": "127.0.0.1", "port": port, "transport": transport,
                                                     "domain": "pbx.test"},
                             "accounts": {"caller": {"username": "1001", "password": "pw-1001-secret"}}}, "<test>")
    return ProbeSession(t, tmp_path / "ev.txt", packets=packets, timeout=2.0)


def test_options_is_answered_and_strays_are_not_counted(tmp_path: Path, pbx_factory: Callable[..., FakePbx]) -> None:
    def handler(req: SipMessage, n: int) -> list[bytes]:
        stray = answer(req, "200 OK").replace(req.call_id.encode(), b"someone-else")
        return [stray, answer(req, "100 Trying"), answer(req, "200 OK", "Server: FakePBX 1.2.3\r\n")]

    pbx = pbx_factory(handler)
    with session(tmp_path, pbx.port) as ps:
        probe = ps.probe()
        ex = probe.request("OPTIONS", probe.server_uri(), from_user="probe")
    assert ex.statuses == [100, 200] and ex.status == 200 and ex.sent == 1
    assert ex.rtt_ms is not None and ex.final_ms is not None and ex.rtt_ms <= ex.final_ms
    assert ex.final is not None and ex.final.msg.header("Server") == "FakePBX 1.2.3"
    assert [r.msg.call_id for r in probe.stray] == ["someone-else"]
    assert "#1 RX UDP" in (tmp_path / "ev.txt").read_text()


def test_udp_retransmits_until_answered(tmp_path: Path, pbx_factory: Callable[..., FakePbx]) -> None:
    pbx = pbx_factory(lambda req, n: [] if n == 1 else [answer(req, "200 OK")])  # the first one is "lost"
    with session(tmp_path, pbx.port) as ps:
        ex = ps.probe().request("OPTIONS", "sip:127.0.0.1", from_user="probe")
    assert ex.status == 200 and ex.sent == 2 and ex.final_ms is not None and ex.final_ms >= 450


def test_register_answers_the_challenge_and_masks_it(tmp_path: Path, pbx_factory: Callable[..., FakePbx]) -> None:
    def handler(req: SipMessage, n: int) -> list[bytes]:
        if req.header("Authorization"):
            return [answer(req, "200 OK", "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n")]
        return [answer(req, "401 Unauthorized",
                       'WWW-Authenticate: Digest realm="pbx.test", nonce="abc", qop="auth"\r\n')]

    pbx = pbx_factory(handler)
    with session(tmp_path, pbx.port) as ps:
        reg = register(ps.probe(), "1001", "pw-1001-secret")
    assert reg.challenged and reg.code == 200 and len(reg.exchanges) == 2
    assert reg.total_ms is not None and reg.total_ms >= reg.exchanges[1].final_ms  # type: ignore[operator]
    sent = pbx.received[1]
    assert sent.cseq == (2, "REGISTER") and sent.call_id == pbx.received[0].call_id
    assert 'username="1001"' in sent.header("Authorization") and 'uri="sip:pbx.test"' in sent.header("Authorization")
    text = (tmp_path / "ev.txt").read_text()
    assert 'response="***"' in text and "pw-1001-secret" not in text


def test_ringing_probe_call_is_cancelled(tmp_path: Path, pbx_factory: Callable[..., FakePbx]) -> None:
    invites: list[SipMessage] = []

    def handler(req: SipMessage, n: int) -> list[bytes]:
        if req.method == "INVITE":
            invites.append(req)
            return [answer(req, "100 Trying"), answer(req, "180 Ringing")] if n == 1 else []
        if req.method == "CANCEL":
            inv = invites[-1]
            return [answer(req, "200 OK"), answer(inv, "487 Request Terminated")]
        return []

    pbx = pbx_factory(handler)
    with session(tmp_path, pbx.port) as ps:
        call = place_call(ps.probe(), "sip:00441632960123@pbx.test", from_user="anonymous", from_domain="x.invalid")
    assert call.rang and call.cancelled and not call.answered and call.final == 487
    deadline = time.monotonic() + 2.0  # the fake PBX's thread may still be reading the ACK
    while "ACK" not in [m.method for m in pbx.received] and time.monotonic() < deadline:
        time.sleep(0.01)
    # retransmissions on a busy machine (INVITE, CANCEL) are fine: the order of first sightings matters
    received = [m for i, m in enumerate(pbx.received) if m.method not in [p.method for p in pbx.received[:i]]]
    methods = [m.method for m in received]
    assert methods == ["INVITE", "CANCEL", "ACK"]
    cancel = received[1]
    assert cancel.branch() == invites[0].branch() and cancel.cseq == (1, "CANCEL") and cancel.uri == invites[0].uri
    assert "ringing" in call.outcome()


def test_answered_probe_call_is_acked_and_hung_up_through_the_route_set(
        tmp_path: Path, pbx_factory: Callable[..., FakePbx]) -> None:
    def handler(req: SipMessage, n: int) -> list[bytes]:
        if req.method == "INVITE" and req.header("Proxy-Authorization"):
            return [answer(req, "200 OK", "Record-Route: <sip:127.0.0.1;lr;ftag=x>\r\n"
                           "Contact: <sip:2001@127.0.0.1:40000>\r\nContent-Type: application/sdp\r\n",
                           body=b"v=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:k\r\n")]
        if req.method == "INVITE":
            return [answer(req, "407 Proxy Authentication Required",
                           'Proxy-Authenticate: Digest realm="pbx.test", nonce="n2"\r\n')]
        if req.method == "BYE":
            return [answer(req, "200 OK")]
        return []

    pbx = pbx_factory(handler)
    with session(tmp_path, pbx.port) as ps:
        call = place_call(ps.probe(), "sip:2001@pbx.test", from_user="1001", auth=("1001", "pw-1001-secret"),
                          cancel_on_ring=False)
    assert call.challenged and call.authenticated and call.answered and call.codes == [407, 200]
    by_method = {m.method: m for m in pbx.received}
    assert [m.method for m in pbx.received] == ["INVITE", "ACK", "INVITE", "ACK", "BYE"]
    ack2, bye = pbx.received[3], by_method["BYE"]
    assert ack2.uri == "sip:2001@127.0.0.1:40000" and ack2.header("Route") == "<sip:127.0.0.1;lr;ftag=x>"
    assert bye.uri == ack2.uri and bye.cseq == (3, "BYE") and ";tag=pbx1" in bye.header("To")
    assert call.answer is not None and b"RTP/SAVP" in call.answer.body


def test_tcp_frames_messages_written_together(tmp_path: Path, pbx_factory: Callable[..., FakePbx]) -> None:
    pbx = pbx_factory(lambda req, n: [answer(req, "100 Trying"), answer(req, "200 OK")], "tcp")
    with session(tmp_path, pbx.port, "tcp") as ps:
        probe = ps.probe("tcp")
        ex = probe.request("OPTIONS", probe.server_uri(), from_user="probe")
    assert ex.statuses == [100, 200] and ex.sent == 1
    assert pbx.received[0].header("Via").startswith("SIP/2.0/TCP ")


def test_budget_stops_a_runaway_probe(tmp_path: Path, pbx_factory: Callable[..., FakePbx]) -> None:
    pbx = pbx_factory(lambda req, n: [answer(req, "200 OK")])
    with session(tmp_path, pbx.port, packets=3) as ps, pytest.raises(ProbeBudgetError):
        probe = ps.probe()
        for _ in range(4):
            probe.request("OPTIONS", "sip:127.0.0.1", from_user="probe")
    assert len(pbx.received) == 3


def test_closed_udp_port_reports_refused(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    with session(tmp_path, port) as ps:
        ex = ps.probe().request("OPTIONS", "sip:127.0.0.1", from_user="probe", timeout=1.0)
    assert ex.error == "refused" and ex.status is None
