"""pjsua2 for the party's child process, and only there, with the names the child gives its constants.

pjsua writes its logs to fd 1, which the parent reads as the protocol pipe, so the child's entry module
(:mod:`harness.sip.child.__main__`) moves the protocol to a private fd before anything imports pjsua2.
Importing this module anywhere else (the parent above all, which must never load pjsua2) is refused.
"""

from __future__ import annotations

import sys

_main = sys.modules.get("__main__")
if getattr(getattr(_main, "__spec__", None), "name", None) != "harness.sip.child.__main__":
    raise ImportError("pjsua2 is loaded only in a party's child process (python -m harness.sip.child)")

import pjsua2 as pj  # noqa: E402  (only after the check above)

__all__ = ["MEDIA_STATUS", "STATE_NAMES", "TRANSPORTS", "pj"]

STATE_NAMES = {
    pj.PJSIP_INV_STATE_NULL: "NULL",
    pj.PJSIP_INV_STATE_CALLING: "CALLING",
    pj.PJSIP_INV_STATE_INCOMING: "INCOMING",
    pj.PJSIP_INV_STATE_EARLY: "EARLY",
    pj.PJSIP_INV_STATE_CONNECTING: "CONNECTING",
    pj.PJSIP_INV_STATE_CONFIRMED: "CONFIRMED",
    pj.PJSIP_INV_STATE_DISCONNECTED: "DISCONNECTED",
}
MEDIA_STATUS = {
    pj.PJSUA_CALL_MEDIA_NONE: "none",
    pj.PJSUA_CALL_MEDIA_ACTIVE: "active",
    pj.PJSUA_CALL_MEDIA_LOCAL_HOLD: "local_hold",
    pj.PJSUA_CALL_MEDIA_REMOTE_HOLD: "remote_hold",
    pj.PJSUA_CALL_MEDIA_ERROR: "error",
}
TRANSPORTS = {"udp": pj.PJSIP_TRANSPORT_UDP, "tcp": pj.PJSIP_TRANSPORT_TCP, "tls": pj.PJSIP_TRANSPORT_TLS}
