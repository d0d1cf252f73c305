"""Raw SIP transports for probes: one socket to the target over UDP, TCP or TLS.

A :class:`Channel` sends bytes and hands back whole SIP messages: a datagram over UDP, a message
framed by its Content-Length over TCP and TLS. Every destination passes the :class:`ProbeScope`
and every packet is paid from a :class:`PacketBudget`::

    with open_channel(scope, budget, "udp", 5060) as ch:
        ch.send(data)
        reply = ch.recv(1.0)          # bytes of one message, or None after 1 s

A connection that cannot be made raises :class:`ProbeConnectError` with a short ``reason``
(``refused``, ``timeout``, ``tls handshake failed: ...``) that a reachability check can report.
"""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import time
from types import TracebackType

from harness.contracts.errors import ProbeConnectError
from harness.probes.scope import PacketBudget, ProbeScope

__all__ = ["Channel", "open_channel", "split_stream"]

TRANSPORTS = ("udp", "tcp", "tls")
_CONTENT_LENGTH = re.compile(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)[ \t]*$", re.IGNORECASE | re.MULTILINE)
MAX_MESSAGE = 256 * 1024  # a reply bigger than this is not SIP we want to hold in memory


def split_stream(buffer: bytes) -> tuple[bytes | None, bytes]:
    """The first whole SIP message in a TCP/TLS byte stream, and what is left after it.

    Keep-alive CRLFs before a message are dropped. A message without Content-Length has no body
    (RFC 3261 makes the header mandatory on streams; a server that leaves it out gets read this way).
    """
    buffer = buffer.lstrip(b"\r\n")
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None, buffer
    head_end = end + 4
    m = _CONTENT_LENGTH.search(buffer[:end])
    length = int(m.group(1)) if m else 0
    if len(buffer) < head_end + length:
        return None, buffer
    return buffer[: head_end + length], buffer[head_end + length:]


class Channel:
    """One socket to the target. Use as a context manager, or call :meth:`close`."""

    def __init__(self, sock: socket.socket, transport: str, remote: tuple[str, int], budget: PacketBudget):
        self.sock, self.transport, self.remote, self.budget = sock, transport, remote, budget
        host, port = sock.getsockname()[:2]
        self.local: tuple[str, int] = (str(host), int(port))
        self._buffer = b""

    @property
    def via_transport(self) -> str:
        return self.transport.upper()

    def __enter__(self) -> Channel:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> None:
        """Send one message (one datagram over UDP); a local send error is a ProbeConnectError."""
        self.budget.spend()
        try:
            if self.transport == "udp":
                self.sock.send(data)
            else:
                self.sock.sendall(data)
        except OSError as exc:
            raise ProbeConnectError(self.transport, _where(self.remote), _reason(exc)) from None

    def recv(self, timeout: float) -> bytes | None:
        """One whole message, or None when nothing (complete) arrives within ``timeout`` seconds.

        Over UDP an ICMP "port unreachable" from an earlier send surfaces here: it is a
        ProbeConnectError with reason ``refused`` (nothing listens there).
        """
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            if self.transport != "udp":
                msg, self._buffer = split_stream(self._buffer)
                if msg is not None:
                    return msg
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65535)
            except (TimeoutError, ssl.SSLWantReadError):
                return None
            except ConnectionRefusedError:
                raise ProbeConnectError(self.transport, _where(self.remote), "refused") from None
            except OSError as exc:
                raise ProbeConnectError(self.transport, _where(self.remote), _reason(exc)) from None
            if self.transport == "udp":
                return data
            if not data:  # the server closed the connection
                if self._buffer.strip(b"\r\n"):
                    msg, self._buffer = self._buffer, b""
                    return msg
                raise ProbeConnectError(self.transport, _where(self.remote), "closed by the server")
            self._buffer += data
            if len(self._buffer) > MAX_MESSAGE:
                self._buffer = b""
                raise ProbeConnectError(self.transport, _where(self.remote), "reply larger than 256 KiB")


def open_channel(scope: ProbeScope, budget: PacketBudget, transport: str, port: int, *,
                 source: str | None = None, timeout: float = 2.0, tls: ssl.SSLContext | None = None,
                 server_name: str | None = None) -> Channel:
    """A channel to the target's address on ``port``; TCP and TLS connect (and handshake) here."""
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown transport {transport!r}")
    addr = scope.check(scope.address)
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    sock = socket.socket(family, kind)
    remote = (addr, port)
    try:
        if source is not None:
            sock.bind((source, 0))
        sock.settimeout(timeout)
        try:
            if transport != "udp":
                budget.spend()  # the SYN (and, for TLS, the handshake) count as one probe
            sock.connect(remote)
        except OSError as exc:
            raise ProbeConnectError(transport, _where(remote), _reason(exc)) from None
        if transport == "tls":
            ctx = tls or insecure_context()
            try:
                sock = ctx.wrap_socket(sock, server_hostname=server_name or scope.host)
            except (ssl.SSLError, OSError) as exc:
                raise ProbeConnectError(transport, _where(remote), f"tls handshake failed: {_reason(exc)}") from None
        return Channel(sock, transport, remote, budget)
    except BaseException:
        sock.close()
        raise


def insecure_context() -> ssl.SSLContext:
    """A client context that completes a handshake with any certificate (the checks judge it later)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _where(remote: tuple[str, int]) -> str:
    host, port = remote
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return "timeout"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return exc.verify_message or exc.reason or str(exc)  # "self-signed certificate", "certificate has expired"
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
