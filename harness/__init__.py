"""Telephony test harness for call-center PBXs."""

__version__ = "0.1.0"
