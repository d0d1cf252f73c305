"""SIP parties: each a pjsua2 child process driven over a pipe (see ``child`` and ``protocol``)."""

from harness.sip.party import AutoPolicy, Party, RegResult

__all__ = ["AutoPolicy", "Party", "RegResult"]
